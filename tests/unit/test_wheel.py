"""The wheel holds the reusable app and its Redis layer, with their templates, static files, Lua
scripts and migrations, and nothing else (no tests, no standalone site, no demo)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("bullmq_dashboard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_holds_only_the_app_and_the_redis_layer(wheel_names: list[str]) -> None:
    tops = {name.split("/", 1)[0] for name in wheel_names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"dashboard", "queues"}


def test_the_wheel_holds_templates_static_files_scripts_migrations_and_catalogs(
    wheel_names: list[str],
) -> None:
    names = set(wheel_names)
    for expected in (
        "dashboard/templates/bullmq_dashboard/layout.html",
        "dashboard/templates/bullmq_dashboard/partials/job_row.html",
        "dashboard/static/bullmq_dashboard/dashboard.css",
        "dashboard/static/bullmq_dashboard/vendor/htmx.min.js",
        "dashboard/migrations/0001_initial.py",
        "dashboard/locale/de/LC_MESSAGES/django.mo",
        "dashboard/locale/de/LC_MESSAGES/django.po",
        "queues/lua/job_detail.lua",
        "queues/lua/includes/job_state.lua",
        "dashboard/py.typed",
    ):
        assert expected in names, expected
    # Every template is under the app's namespace: none can replace a host project's own.
    templates = [name for name in names if "/templates/" in name]
    assert all(name.startswith("dashboard/templates/bullmq_dashboard/") for name in templates)
    assert not any(name.startswith(("tests/", "config/", "demo/", "bench/")) for name in names)
