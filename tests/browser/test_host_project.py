"""The app inside the host project (tests/host_project/) in Chromium: the host's sign-in, the dashboard at
/ops/queues/ inside the host's base template, a queue page, a count moved over the websocket at
/ops/queues/ws/, a Retry with CSRF, and sign-out through the host's logout view."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, ROOT, LiveSite, run_worker

pytestmark = [pytest.mark.browser, pytest.mark.host_only]

QUEUE = "host-actions"
SOCKET_OPEN = """() => {
  const socket = document.querySelector("[data-live-socket]");
  const wrapper = socket && socket["htmx-internal-data"] && socket["htmx-internal-data"].webSocket;
  return !!(wrapper && wrapper.socket && wrapper.socket.readyState === 1);
}"""


@pytest.fixture
def host_page(browser: Any, host_site: LiveSite) -> Iterator[Any]:
    """A fresh Chromium page (nobody signed in); browser dialogs recorded and dismissed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()


def add_jobs_elsewhere(redis_url: str, job_ids: list[str]) -> None:
    """Add waiting jobs from another process, as a producer would (Playwright's sync API keeps an event
    loop on this thread, so the async builders run in a subprocess)."""
    code = (
        "import asyncio, sys; from tests.support.builders import add_jobs; "
        "asyncio.run(add_jobs(sys.argv[1], sys.argv[2], [('live', {}, {'jobId': i}) for i in sys.argv[3:]]))"
    )
    subprocess.run([sys.executable, "-c", code, redis_url, QUEUE, *job_ids], cwd=ROOT, check=True, timeout=60)


def cell(page: Any, state: str) -> Any:
    return page.locator(f'td.count[data-queue="bull:{QUEUE}"][data-state="{state}"]')


def tab_count(page: Any, state: str) -> Any:
    return page.locator(f'nav.tabs [data-queue="bull:{QUEUE}"][data-state="{state}"]')


def test_the_dashboard_inside_the_host_project(host_page: Any, host_site: LiveSite) -> None:
    page, url = host_page, host_site.url
    # Six jobs run by a Node worker before the first page load: s-0, s-2 and s-4 failed.
    summary = run_worker(host_site.redis_url, QUEUE, "--produce", "6", "--fail-every", "2")
    assert sorted(summary["failed"]) == ["s-0", "s-2", "s-4"]

    # The host's sign-in page, reached from the dashboard.
    page.goto(url + "/ops/queues/")
    page.wait_for_url(re.compile(r"/sign-in/\?next=/ops/queues/$"))
    expect(page.locator("h1.host-title")).to_have_text("Sign in to Example Ops")
    page.fill("input[name=username]", host_site.username)
    page.fill("input[name=password]", host_site.password)
    page.click("form.host-login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/ops/queues/$"))

    # The overview inside the host's base template: its nav, then the dashboard in its content block.
    expect(page.locator("#host-nav")).to_be_visible()
    expect(page.locator("#host-nav .host-user")).to_have_text(host_site.username)
    expect(page.locator(".host-content > .bullmq-dashboard")).to_have_count(1)
    expect(page.locator("footer.host-footer")).to_be_visible()
    assert page.title() == "Queues · BullMQ dashboard — Example Ops"
    expect(cell(page, "completed")).to_have_text("3")
    expect(cell(page, "failed")).to_have_text("3")
    page.screenshot(path=str(ARTIFACTS / "host-project-overview.png"), full_page=True)

    # The dashboard's scripts keep to .bullmq-dashboard: the host's own theme button, filter box and
    # time element (same ids and classes as the dashboard's) are left as the host wrote them.
    expect(page.locator("button.host-theme")).to_have_text("Host theme")
    expect(page.locator("time.host-time")).to_have_text("deploy day")
    page.locator("button.host-theme").click()
    assert page.evaluate("document.documentElement.dataset.bullmqTheme") is None
    page.locator("input.host-filter").fill("no such link")
    expect(page.locator("#host-nav a.host-home")).to_be_visible()
    assert "q=" not in page.url
    page.locator("input.host-filter").fill("")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.closest('.bullmq-dashboard') !== null")
    page.locator(".bullmq-dashboard #theme-toggle").click()
    assert page.evaluate("document.documentElement.dataset.bullmqTheme") == "dark"
    page.locator(".bullmq-dashboard #theme-toggle").click()
    page.locator(".bullmq-dashboard #theme-toggle").click()

    # A count moves over the websocket at /ops/queues/ws/ (told the rows the page shows).
    socket = page.locator("[data-live-socket]").get_attribute("ws-connect") or ""
    assert socket.startswith("/ops/queues/ws/?rows=") and socket.endswith("&lang=en-us"), socket
    page.wait_for_function(SOCKET_OPEN, timeout=15000)
    expect(cell(page, "waiting")).to_have_text("0")
    add_jobs_elsewhere(host_site.redis_url, ["live-0", "live-1"])
    expect(cell(page, "waiting")).to_have_text("2", timeout=15000)
    assert page.url.endswith("/ops/queues/")  # no reload, no navigation

    # A queue page, and a Retry (a POST with the CSRF token, checked by the host's CsrfViewMiddleware).
    cell(page, "failed").locator("a").click()
    page.wait_for_url(re.compile(rf"/ops/queues/default/bull:{QUEUE}/\?state=failed"))
    expect(page.locator("#host-nav")).to_be_visible()
    expect(tab_count(page, "failed")).to_have_text("3")
    page.locator('tr.job-row[data-job-id="s-0"] button', has_text="Retry").click()
    page.wait_for_selector(".toast-ok", state="visible")
    assert "moved from failed to waiting" in page.locator(".toast-ok").first.inner_text()
    expect(tab_count(page, "failed")).to_have_text("2")
    expect(page.locator('tr.job-row[data-job-id="s-0"]')).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "host-project-queue.png"), full_page=True)
    # The toast went to the dashboard's own toasts, not to the host's element with the id "toasts"; an
    # htmx error page replaces the dashboard's content, not the host's element with the id "content".
    expect(page.locator("aside.host-notifications")).to_have_text("Host notifications")
    page.evaluate("htmx.ajax('GET', '/ops/queues/default/bull:no-such-queue/', {target: '#job-list'})")
    expect(page.locator(".bullmq-dashboard #bullmq-content > .error-page")).to_have_attribute(
        "data-status", "404"
    )
    expect(page.locator("div.host-own-content")).to_have_text("Host content")
    page.goto(url + f"/ops/queues/default/bull:{QUEUE}/?state=failed")

    # Sign out through the dashboard's Log out button: it posts to the host's logout view.
    assert page.locator("form.logout").get_attribute("action") == "/sign-out/"
    page.locator("form.logout button").click()
    page.wait_for_url(re.compile(r"/sign-in/$"))
    page.goto(url + "/ops/queues/")
    page.wait_for_url(re.compile(r"/sign-in/\?next=/ops/queues/$"))
    assert page.dialogs == []
