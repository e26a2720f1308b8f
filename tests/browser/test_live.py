"""Live pages in Chromium: counters, a job's progress and logs move without reload; a lost socket degrades."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import LiveSite, wait_until_listed
from tests.support.node import INTEROP

pytestmark = pytest.mark.browser

SOCKET_OPEN = """() => {
  const socket = document.querySelector("[data-live-socket]");
  const wrapper = socket && socket["htmx-internal-data"] && socket["htmx-internal-data"].webSocket;
  return !!(wrapper && wrapper.socket && wrapper.socket.readyState === 1);
}"""


class NodeScript:
    """tests/interop/live_worker.mjs in the background, driven over stdin/stdout."""

    def __init__(self, url: str, queue_name: str) -> None:
        node = shutil.which("node")
        if node is None or not (INTEROP / "node_modules" / "bullmq").is_dir():
            pytest.fail("node and tests/interop/node_modules are required: npm ci --prefix tests/interop")
        self.process = subprocess.Popen(
            [node, "live_worker.mjs", url, queue_name],
            cwd=INTEROP,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def step(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for the script to report a step."""
        while True:
            try:
                message = json.loads(self.lines.get(timeout=timeout))
            except queue.Empty:
                raise AssertionError(f"live_worker.mjs did not reach {name!r}") from None
            if message.get("step") == name:
                return dict(message)

    def send(self, word: str) -> None:
        """Give the script its next command."""
        assert self.process.stdin is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        """Wait for the script to end (or end it)."""
        try:
            _out, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _out, err = self.process.communicate()
        self.reader.join(timeout=5)
        assert self.process.returncode == 0, err


@pytest.fixture
def node_script(live_site: LiveSite, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Starts live_worker.mjs on a queue of this test; waits until it has added its jobs."""
    scripts: list[NodeScript] = []

    def start(queue_name: str) -> NodeScript:
        script = NodeScript(live_site.redis_url, queue_name)
        scripts.append(script)
        script.step("added")
        return script

    yield start
    for script in scripts:
        script.close()


def open_live(page: Any, url: str) -> None:
    """Load a page and wait until its socket is open."""
    page.goto(url)
    page.wait_for_function(SOCKET_OPEN, timeout=15000)
    page.evaluate("window.__sameDocument = true")


def test_counters_progress_and_logs_move_without_reload(
    page: Any, live_site: LiveSite, node_script: Any
) -> None:
    from playwright.sync_api import expect

    name = "live-browser"
    worker = node_script(name)
    wait_until_listed(page, live_site, f"bull:{name}")
    open_live(page, f"{live_site.url}/queues/")

    def cell(state: str) -> Any:
        return page.locator(f'td.count[data-queue="bull:{name}"][data-state="{state}"]')

    expect(cell("waiting")).to_have_text("2")
    job_page = page.context.new_page()
    open_live(job_page, f"{live_site.url}/queues/default/bull:{name}/job/?id=ok-1")
    expect(job_page.locator("#job-state")).to_have_text("waiting")

    worker.send("go")
    worker.step("halfway")
    expect(cell("failed")).to_have_text("1", timeout=15000)
    expect(cell("active")).to_have_text("1", timeout=15000)
    expect(job_page.locator("#job-state")).to_have_text("active", timeout=15000)
    expect(job_page.locator("#job-progress progress")).to_have_attribute("value", "50", timeout=15000)
    expect(job_page.locator("#log-pager ol.logs li")).to_have_text(["halfway there"], timeout=15000)
    expect(job_page.locator("#job-log-count")).to_have_text("(1 line)")

    worker.send("release")
    worker.step("done")
    expect(job_page.locator("#job-state")).to_have_text("completed", timeout=15000)
    expect(job_page.locator("#job-progress progress")).to_have_attribute("value", "100", timeout=15000)
    lines = job_page.locator("#log-pager ol.logs li")
    expect(lines).to_have_text(["halfway there", "all done"], timeout=15000)
    expect(cell("completed")).to_have_text("1", timeout=15000)
    expect(cell("active")).to_have_text("0", timeout=15000)
    assert cell("completed").get_attribute("id").startswith("count-")
    assert page.evaluate("window.__sameDocument") is True
    assert job_page.evaluate("window.__sameDocument") is True
    assert page.dialogs == []


def test_a_lost_socket_shows_a_banner_polls_and_reconnects(
    page: Any, live_site: LiveSite, node_script: Any
) -> None:
    from playwright.sync_api import expect

    name = "live-fallback"
    worker = node_script(name)
    wait_until_listed(page, live_site, f"bull:{name}")
    open_live(page, f"{live_site.url}/queues/")
    failed = page.locator(f'td.count[data-queue="bull:{name}"][data-state="failed"]')
    completed = page.locator(f'td.count[data-queue="bull:{name}"][data-state="completed"]')
    expect(page.locator("#live-paused")).to_be_hidden()

    # The server goes away: the socket closes and new ones fail until it is back.
    page.evaluate(
        """() => {
          htmx.config.wsReconnectDelay = () => 300;  // the extension's backoff, shortened for the test
          window.__createWebSocket = htmx.createWebSocket;
          // Same origin (the site's CSP blocks any other, and a blocked socket throws), no such route.
          const gone = location.origin.replace(/^http/, "ws") + "/queues/ws/gone/";
          htmx.createWebSocket = () => new WebSocket(gone);
          document.querySelector("[data-live-socket]")["htmx-internal-data"].webSocket.socket.close(4000);
        }"""
    )
    expect(page.locator("#live-paused")).to_be_visible(timeout=10000)
    worker.send("go")
    worker.step("halfway")
    # No socket: the page polls its live parts instead.
    expect(failed).to_have_text("1", timeout=20000)

    page.evaluate("() => { htmx.createWebSocket = window.__createWebSocket; }")
    page.wait_for_function(SOCKET_OPEN, timeout=20000)
    expect(page.locator("#live-paused")).to_be_hidden(timeout=10000)
    worker.send("release")
    worker.step("done")
    expect(completed).to_have_text("1", timeout=15000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.dialogs == []


def test_new_jobs_wait_behind_a_marker_while_the_reader_is_busy(
    page: Any, live_site: LiveSite, node_script: Any
) -> None:
    from playwright.sync_api import expect

    name = "live-marker"
    worker = node_script(name)
    open_live(page, f"{live_site.url}/queues/default/bull:{name}/?state=active")
    expect(page.locator("#job-list tr.job-row")).to_have_count(0)
    # The reader has selected some text: new rows must not move the page under it.
    page.evaluate(
        """() => {
          const range = document.createRange();
          range.selectNodeContents(document.querySelector("h1"));
          getSelection().removeAllRanges();
          getSelection().addRange(range);
        }"""
    )
    worker.send("go")
    worker.step("halfway")
    marker = page.locator("#live-new-jobs button")
    expect(marker).to_have_text("2 new jobs — show", timeout=15000)
    expect(page.locator('nav.tabs .count[data-state="active"]')).to_have_text("1", timeout=15000)
    expect(page.locator("#job-list tr.job-row")).to_have_count(0)

    page.evaluate("() => getSelection().removeAllRanges()")
    expect(page.locator("#job-list tr.job-row")).to_have_count(1, timeout=15000)
    expect(page.locator("#live-new-jobs")).to_be_hidden()
    worker.send("release")
    worker.step("done")
    assert page.dialogs == []
