"""The fix next to a health reason in Chromium: it survives the panel's live pushes (which carry no
one's buttons), a reason that appears in a push loads this user's fix, and the fix works."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.browser.conftest import LiveSite
from tests.support.builders import add_jobs, pause
from tests.support.node import INTEROP

pytestmark = pytest.mark.browser

QUEUE = "hb-paused"
SOCKET_OPEN = """() => {
  const socket = document.querySelector("[data-live-socket]");
  const wrapper = socket && socket["htmx-internal-data"] && socket["htmx-internal-data"].webSocket;
  return !!(wrapper && wrapper.socket && wrapper.socket.readyState === 1);
}"""


@pytest.fixture
def paused_queue(live_site: LiveSite) -> Iterator[subprocess.Popen[str]]:
    """health_causes.mjs: `hb-paused` paused with 3 waiting jobs and a Node BullMQ 6 worker connected."""
    node = shutil.which("node")
    assert node, "Node 20 is required for the browser tests"
    process = subprocess.Popen(
        [node, "health_causes.mjs", live_site.redis_url, "paused", QUEUE],
        cwd=INTEROP,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert json.loads(process.stdout.readline())["step"] == "ready"
    yield process
    process.communicate("close\n", timeout=20)  # also closes its pipes


def test_the_fix_survives_pushes_and_a_reason_that_appears_loads_its_fix(
    page: Any, live_site: LiveSite, paused_queue: subprocess.Popen[str]
) -> None:
    page.goto(f"{live_site.url}/queues/default/bull:{QUEUE}/")
    page.wait_for_function(SOCKET_OPEN, timeout=15000)
    panel = page.locator("section.health-panel")
    resume = panel.locator('[data-fix="resume"]')
    resume.wait_for()
    # A push re-renders the panel (one more job waits) without anyone's buttons: the page's own fix
    # stays (hx-preserve).
    page.evaluate("document.querySelector('section.health-panel').dataset.before = '1'")
    off_loop(_add(live_site.redis_url, "p-4"))
    page.wait_for_selector("section.health-panel:not([data-before]) :text('4 jobs waiting')", timeout=15000)
    assert resume.count() == 1 and resume.is_visible()

    resume.click()
    page.wait_for_selector("#bullmq-toasts :text('resumed')")
    page.wait_for_selector('section.health-panel[data-health="idle"]', timeout=15000)
    assert panel.locator('[data-fix="resume"]').count() == 0

    # Paused again by someone else: the reason arrives in a push, and its fix loads this user's button.
    off_loop(pause(live_site.redis_url, QUEUE))
    off_loop(_add(live_site.redis_url, "p-late"))
    page.wait_for_selector('section.health-panel[data-health="stuck"] [data-fix="resume"]', timeout=15000)
    assert page.dialogs == []


def off_loop(work: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine of the Python `bullmq` package beside Playwright's own event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result(timeout=30)


async def _add(url: str, job_id: str) -> None:
    await add_jobs(url, QUEUE, [("work", {"late": True}, {"jobId": job_id})])
