"""The standalone site run as a subprocess (DEBUG off, its own SQLite and static root), for the browser
tests and the benchmarks: environment, management commands, and waiting for daphne to answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Debian's Chromium (never a downloaded browser), as the browser tests and the benchmarks launch it.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


def manage(env: dict[str, str], *args: str) -> None:
    """Run a management command of the site."""
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def prepare(env: dict[str, str], username: str, password: str) -> None:
    """Migrate, collect static files and create a superuser."""
    manage(env, "migrate", "--noinput")
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


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Poll the login page until daphne answers (or fail when it exits or takes too long)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/accounts/login/", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"daphne did not answer within {seconds:.0f} s")
