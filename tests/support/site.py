"""A project served as a subprocess (DEBUG off, its own SQLite), for the browser tests and the benchmarks:
environment, management commands, and waiting for daphne to answer.

Two projects: the standalone site (config/, `site_env`) and the host project of the tests
(tests/host_project/, `host_env`), which embeds the app the way another Django project would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def site_env(tmp: Path, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment of the standalone site as a deployment would set it, with DEBUG off."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "throwaway-site-secret",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "DJANGO_STATIC_ROOT": str(tmp / "static"),
        "REDIS_URL": redis_url,
        "PYTHONWARNINGS": "ignore",
        **extra,
    }


def host_env(tmp: Path, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment of the host project (tests.host_project) with a file database and the given Redis."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.host_project.settings",
        "HOST_PROJECT_DATABASE": str(tmp / "db.sqlite3"),
        "HOST_PROJECT_REDIS_URL": redis_url,
        "PYTHONWARNINGS": "ignore",
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> None:
    """Run a management command of the project the environment names."""
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def prepare(env: dict[str, str], username: str, password: str, collect_static: bool = True) -> None:
    """Migrate, collect static files (the standalone site serves them from STATIC_ROOT) and create a
    superuser."""
    manage(env, "migrate", "--noinput")
    if collect_static:
        manage(env, "collectstatic", "--noinput")
    manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": password},
        "createsuperuser",
        "--noinput",
        "--username",
        username,
        "--email",
        f"{username}@example.com",
    )


def wait_until_up(
    url: str, process: subprocess.Popen[bytes], seconds: float = 30, login_path: str = "/accounts/login/"
) -> None:
    """Poll the login page until daphne answers (or fail when it exits or takes too long)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + login_path, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"daphne did not answer within {seconds:.0f} s")
