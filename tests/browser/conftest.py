"""A real daphne serving the standalone site (or the host project) on a throwaway Redis; Debian's Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from queues.throwaway_redis import ThrowawayRedis, free_port
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.node import run_node
from tests.support.site import host_env, prepare, site_env, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@dataclass(frozen=True)
class LiveSite:
    """The running site: its base URL, a staff login and the Redis it reads."""

    url: str
    username: str
    password: str
    redis_url: str


@contextmanager
def daphne(tmp: Path, env: dict[str, str], application: str, login_path: str) -> Iterator[str]:
    """daphne on a free port serving an ASGI application; its base URL once the login page answers."""
    port = free_port()
    with (tmp / "daphne.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), application],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, process, login_path=login_path)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def require_chromium() -> None:
    """Fail (not skip) without Debian's Chromium."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is required for browser tests: apt-get install chromium")


@pytest.fixture(scope="session")
def live_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """daphne on a free port, serving config.asgi against Node-built queues."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("site")
    with ThrowawayRedis() as redis_server:
        built = run_node("build_state.mjs", redis_server.url)
        (tmp / "queues.json").write_text(json.dumps(built))
        # Queues made during a test appear on the overview at the next discovery SCAN (opening a
        # queue's URL never adds it to what others are shown).
        env = site_env(tmp, redis_server.url, DASHBOARD_DISCOVERY_INTERVAL="0.5")
        prepare(env, "oncall", "browser-pw")
        with daphne(tmp, env, "config.asgi:application", "/accounts/login/") as url:
            yield LiveSite(url, "oncall", "browser-pw", redis_server.url)


@pytest.fixture(scope="session")
def host_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """daphne serving the host project (tests/host_project/asgi.py: Django's own ASGI handler, the app at
    /ops/queues/) on an empty throwaway Redis; a test makes its queues before its first page load."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("host")
    with ThrowawayRedis() as redis_server:
        env = host_env(tmp, redis_server.url)
        prepare(env, "host-oncall", "host-browser-pw", collect_static=False)
        with daphne(tmp, env, "tests.host_project.asgi:application", "/sign-in/") as url:
            yield LiveSite(url, "host-oncall", "host-browser-pw", redis_server.url)


def run_worker(redis_url: str, queue: str, *options: str) -> dict[str, Any]:
    """Run tests/interop/worker.mjs (a real Node BullMQ producer and worker) until the queue is idle."""
    result = subprocess.run(
        ["node", "worker.mjs", redis_url, queue, *options, "--until-idle", "--max-ms", "15000"],
        cwd=ROOT / "tests" / "interop",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (never a downloaded browser).

    Module-scoped: Playwright's sync API keeps an event loop running on this thread while it is
    open, which asyncio tests that run afterwards must not inherit.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, live_site: LiveSite) -> Iterator[object]:
    """A logged-in page. The dashboard asks in its own dialog (answer it with `confirm_in_page`, which
    records what it said in page.confirmations); any browser dialog (window.confirm, an injected alert)
    is recorded in page.dialogs and dismissed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.dialogs = []
    page.confirmations = []

    def on_dialog(dialog: Any) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(live_site.url + "/accounts/login/?next=/queues/")
    page.fill("input[name=username]", live_site.username)
    page.fill("input[name=password]", live_site.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/queues/")
    yield page
    context.close()


def wait_until_listed(page: Any, live_site: LiveSite, queue_key: str, seconds: float = 20) -> None:
    """Reload the overview until discovery lists a queue made during the test."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        page.goto(f"{live_site.url}/queues/")
        if page.locator(f'tr.queue-row[data-queue="{queue_key}"]').count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{queue_key} was not listed on the overview within {seconds} s")
        page.wait_for_timeout(300)


CONFIRM = "dialog#bullmq-confirm"


def confirm_in_page(page: Any, accept: bool = True) -> str:
    """Answer the dashboard's confirm dialog (wait for it, and for an estimate it fetches); its title and
    sentence, also appended to page.confirmations."""
    page.wait_for_selector(f"{CONFIRM}[open]")
    ok = page.locator(f"{CONFIRM} [data-confirm-ok]")
    page.wait_for_function(f"() => !document.querySelector('{CONFIRM} [data-confirm-ok]').disabled")
    said = (
        page.locator(f"{CONFIRM} h2").inner_text()
        + "\n"
        + page.locator(f"{CONFIRM} .confirm-text").inner_text()
    )
    page.confirmations.append(said)
    if accept:
        ok.click()
    else:
        page.locator(f"{CONFIRM} [data-confirm-cancel]").click()
    page.wait_for_selector(CONFIRM, state="hidden")
    return said


@pytest.fixture(scope="session")
def node_flow(live_site: LiveSite) -> None:
    """The three-level flow of tests/interop/flow_state.mjs, built once a session on the live site's Redis
    (it makes fixed job ids, so a second run would wait for jobs that are already done)."""
    from tests.support.node import run_node

    run_node("flow_state.mjs", live_site.redis_url)
