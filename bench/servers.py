"""The processes a scenario needs: its own Redis filled by Node BullMQ, our site on daphne, Bull Board."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from queues.throwaway_redis import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
USERNAME = "bench"
PASSWORD = "bench-password-not-secret"


def node() -> str:
    """The node binary."""
    found = shutil.which("node")
    if found is None:
        raise RuntimeError("node is not installed (the benchmark needs Node 20)")
    if not (BENCH / "node_modules" / "bullmq").is_dir():
        raise RuntimeError("bench/node_modules is missing: run `npm ci --prefix bench` (make bench does)")
    return found


def build_data(redis_url: str, spec: dict[str, Any], log: Path) -> dict[str, Any]:
    """Fill the Redis with Node BullMQ (bench/build.mjs) and return what it built."""
    with log.open("ab") as err:
        result = subprocess.run(
            [node(), str(BENCH / "build.mjs"), redis_url, json.dumps(spec)],
            cwd=BENCH,
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=1800,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"build.mjs exited {result.returncode}; see {log}")
    return dict(json.loads(result.stdout.decode().strip().splitlines()[-1]))


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass(frozen=True)
class SiteDatabase:
    """A migrated SQLite database with a staff user, shared by every daphne of one run."""

    workdir: Path

    @property
    def url(self) -> str:
        """DATABASE_URL of the site."""
        return f"sqlite:///{self.workdir / 'db.sqlite3'}"

    def env(self, redis_url: str) -> dict[str, str]:
        """The standalone site's environment as a deployment sets it (DEBUG off)."""
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench",
            "DATABASE_URL": self.url,
            "DJANGO_STATIC_ROOT": str(self.workdir / "static"),
            "REDIS_URL": redis_url,
            "PYTHONWARNINGS": "ignore",
        }

    def prepare(self) -> None:
        """Migrate, collect the static files (pages in Chromium load htmx) and create the staff user."""
        env = self.env("redis://127.0.0.1:1/0")
        self._manage(env, "migrate", "--noinput")
        self._manage(env, "collectstatic", "--noinput")
        self._manage(
            {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
            "createsuperuser",
            "--noinput",
            "--username",
            USERNAME,
            "--email",
            "bench@example.com",
        )

    def _manage(self, env: dict[str, str], *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
        )


class Server:
    """A child process serving HTTP on a free loopback port; stopped on exit."""

    name = "server"

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> tuple[list[str], dict[str, str] | None, Path]:
        """argv, environment and working directory."""
        raise NotImplementedError

    def ready_path(self) -> str:
        """A path that answers once the server is up."""
        return "/"

    @property
    def pid(self) -> int:
        """The server's process id (the process that serves, not a wrapper)."""
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Self:
        argv, env, cwd = self.command()
        with self.log.open("ab") as err:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(self.base + self.ready_path(), timeout=5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within 60 s; see {self.log}")

    def stop(self) -> None:
        """Terminate the process (and wait for it)."""
        if self.process is not None:
            stop_process(self.process, grace=15)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class OurSite(Server):
    """The standalone site (config.asgi) on daphne, reading one Redis."""

    name = "daphne"

    def __init__(self, log: Path, database: SiteDatabase, redis_url: str) -> None:
        super().__init__(log)
        self.database = database
        self.redis_url = redis_url

    def command(self) -> tuple[list[str], dict[str, str] | None, Path]:
        """python -m daphne on the site's ASGI application."""
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
        return [*argv, "config.asgi:application"], self.database.env(self.redis_url), ROOT

    def ready_path(self) -> str:
        """The login page needs no session."""
        return "/accounts/login/"


class BullBoard(Server):
    """Bull Board's Express server (bench/bullboard.mjs) over the given queues."""

    name = "bull-board"

    def __init__(self, log: Path, redis_url: str, names_file: Path, mode: str = "per-queue") -> None:
        super().__init__(log)
        self.redis_url = redis_url
        self.names_file = names_file
        self.mode = mode

    def command(self) -> tuple[list[str], dict[str, str] | None, Path]:
        """node bullboard.mjs <redis> <port> <names> <mode>."""
        argv = [node(), str(BENCH / "bullboard.mjs"), self.redis_url, str(self.port)]
        return [*argv, str(self.names_file), self.mode], None, BENCH
