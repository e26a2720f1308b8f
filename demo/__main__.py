"""`python -m demo` (the `make demo` target): live BullMQ traffic and the dashboard on daphne.

Redis: $REDIS_URL when that database holds nothing but the demo's own queues, else a throwaway
redis-server (or valkey-server) in a temporary directory. Django: a temporary SQLite database unless
$DATABASE_URL is set, migrated, with superuser `demo` (password $DEMO_PASSWORD or a fresh random one).
Ctrl-C or SIGTERM stops everything this started and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

import redis
from redis.exceptions import RedisError

from demo.traffic import DEMO_QUEUES, run_traffic
from queues.connections import redacted_url
from queues.throwaway_redis import ThrowawayRedis

logger = logging.getLogger("demo")

REPO_ROOT = Path(__file__).resolve().parent.parent
USERNAME = "demo"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# Runs inside `manage.py shell`; the password arrives in the environment so `ps` never shows it.
ENSURE_SUPERUSER = """
import os
from django.contrib.auth import get_user_model
User = get_user_model()
user, _ = User._default_manager.get_or_create(**{User.USERNAME_FIELD: os.environ["DEMO_USERNAME"]})
user.email = user.email or "demo@example.com"
user.is_staff = user.is_superuser = user.is_active = True
user.set_password(os.environ["DEMO_PASSWORD"])
user.save()
"""


class DemoError(Exception):
    """A problem the user has to fix; printed as one message, without a traceback."""


def is_demo_key(key: bytes) -> bool:
    """Whether a Redis key belongs to one of the demo's queues."""
    return any(key.startswith(f"{prefix}:{name}:".encode()) for prefix, name in DEMO_QUEUES)


def foreign_keys(redis_url: str, limit: int = 5) -> list[str]:
    """Up to `limit` keys in redis_url's database that are not the demo's (SCAN, never KEYS)."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
    try:
        if not client.dbsize():
            return []
        found: list[str] = []
        for key in client.scan_iter(count=1000):
            if not is_demo_key(key):
                found.append(key.decode(errors="replace"))
                if len(found) >= limit:
                    break
        return found
    except RedisError as exc:
        raise DemoError(f"cannot use REDIS_URL={redacted_url(redis_url)}: {exc}") from exc
    finally:
        client.close()


def choose_redis() -> tuple[str, ThrowawayRedis | None]:
    """The Redis URL to use, and the throwaway server started for it (None for $REDIS_URL)."""
    explicit = os.environ.get("REDIS_URL", "").strip()
    if explicit:
        strangers = foreign_keys(explicit)
        if strangers:
            raise DemoError(
                f"REDIS_URL={redacted_url(explicit)} holds keys that are not the demo's "
                f"(e.g. {', '.join(strangers)}). The demo adds, fails and deletes jobs there, "
                "so it refuses. Unset REDIS_URL to get a throwaway redis-server, or point it at "
                "an empty database such as redis://127.0.0.1:6379/15."
            )
        return explicit, None
    server = ThrowawayRedis(own_session=True)
    try:
        server.start()
    except RuntimeError as exc:
        stop_redis(server)
        raise DemoError(str(exc)) from exc
    except BaseException:
        stop_redis(server)
        raise
    return server.url, server


def stop_redis(server: ThrowawayRedis) -> None:
    """Stop the throwaway server and delete its directory."""
    server.stop()


def port_from_environment() -> int:
    """$PORT (default 8000), checked to be free now so daphne does not fail later."""
    raw = os.environ.get("PORT", "8000")
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise DemoError(f"PORT={raw!r} is not a TCP port number")
    port = int(raw)
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DemoError(f"port {port} is busy ({exc.strerror}); set PORT=8001 or so") from exc
    return port


DEMO_ALERTS = {
    "INTERVAL": 15,
    "RULES": [
        {
            "QUEUES": ["*"],
            "BACKLOG": 2000,
            "OLDEST_WAITING": "10m",
            "STALLED": 1,
            "WINDOW": "10m",
            "FOR": "1m",
        },
        {"QUEUES": ["*:webhooks"], "FAILURE_RATE": 0.2, "MIN_FINISHED": 20},
        {"QUEUES": ["*:email", "*:billing"], "NO_WORKERS": "2m"},
    ],
}


def site_environment(redis_url: str, scratch: Path) -> dict[str, str]:
    """Environment of manage.py and daphne: the chosen Redis, DEBUG on, the demo's database."""
    env = dict(os.environ)
    env.update(REDIS_URL=redis_url, DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="1")
    env.setdefault("DATABASE_URL", f"sqlite:///{scratch / 'demo.sqlite3'}")
    env.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
    # Alert rules like the seeds' deployments keep (backlog, latency, failure rate of the webhooks, stalls,
    # workers gone): the banners, the audit log and the scrape show them firing and resolving.
    env.setdefault("DASHBOARD_ALERTS", json.dumps(DEMO_ALERTS))
    return env


def prepare_database(env: dict[str, str], password: str) -> None:
    """Apply migrations and make sure superuser `demo` exists with this password."""
    manage = [sys.executable, "manage.py"]
    migrate = [*manage, "migrate", "--noinput", "-v", "0"]
    shell = [*manage, "shell", "--no-imports", "-c", ENSURE_SUPERUSER]
    secret_env = {**env, "DEMO_USERNAME": USERNAME, "DEMO_PASSWORD": password}
    # Own sessions keep Ctrl-C's traceback out of the terminal; subprocess.run kills the child
    # when our KeyboardInterrupt arrives.
    for command, command_env in ((migrate, env), (shell, secret_env)):
        subprocess.run(command, cwd=REPO_ROOT, env=command_env, check=True, start_new_session=True)


def banner(port: int, password: str, redis_url: str, throwaway: bool) -> str:
    """What the user needs to open the dashboard."""
    where = "throwaway, deleted on exit" if throwaway else "from REDIS_URL"
    return "\n".join(
        (
            "",
            "  BullMQ dashboard demo is running",
            f"    Dashboard  http://127.0.0.1:{port}/queues/",
            f"    Login      {USERNAME} / {password}",
            f"    Redis      {redacted_url(redis_url)} ({where})",
            "  Ctrl-C stops everything.",
            "",
        )
    )


async def _listening(port: int, process: asyncio.subprocess.Process, stop: asyncio.Event) -> bool:
    """Wait until the port accepts connections; False if the process exits or stop comes first."""
    for _ in range(600):
        if process.returncode is not None or stop.is_set():
            return False
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return True
        await asyncio.sleep(0.1)
    return False


async def _terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the process, SIGKILL it if it is still there after 10 s."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def serve(redis_url: str, env: dict[str, str], port: int, ready_message: str) -> int:
    """Run the traffic and daphne until a stop signal or a failure; the process exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    traffic = asyncio.create_task(run_traffic(redis_url, stop), name="demo traffic")
    daphne_command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    # A session of its own keeps Ctrl-C away from daphne, so it shuts down when we say so.
    daphne = await asyncio.create_subprocess_exec(
        *daphne_command, "config.asgi:application", cwd=REPO_ROOT, env=env, start_new_session=True
    )
    stopped = asyncio.create_task(stop.wait())
    exited = asyncio.create_task(daphne.wait())
    try:
        if await _listening(port, daphne, stop):
            print(ready_message, flush=True)
        await asyncio.wait({stopped, exited, traffic}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            return 0
        if exited.done():
            print(f"demo: daphne exited with code {daphne.returncode}", file=sys.stderr)
        return 1
    finally:
        stop.set()
        await _terminate(daphne)
        await asyncio.gather(traffic, stopped, exited, return_exceptions=True)
        if traffic.done() and not traffic.cancelled() and traffic.exception() is not None:
            logger.error("traffic failed", exc_info=traffic.exception())


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so cleanup runs before serve() takes over."""
    raise KeyboardInterrupt


def main() -> int:
    """Entry point of `python -m demo`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for sig in STOP_SIGNALS[1:]:
        signal.signal(sig, _interrupt)
    server: ThrowawayRedis | None = None
    try:
        port = port_from_environment()
        redis_url, server = choose_redis()
        os.environ["REDIS_URL"] = redis_url
        password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(12)
        with tempfile.TemporaryDirectory(prefix="bullmq-demo-") as scratch:
            env = site_environment(redis_url, Path(scratch))
            prepare_database(env, password)
            ready = banner(port, password, redis_url, throwaway=server is not None)
            return asyncio.run(serve(redis_url, env, port, ready))
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"demo: {' '.join(exc.cmd[1:3])} failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if server is not None:
            stop_redis(server)


if __name__ == "__main__":
    sys.exit(main())
