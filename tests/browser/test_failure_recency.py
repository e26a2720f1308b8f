"""The 3 a.m. operator in Chromium, at 1400 px and on a 390 px phone: the overview says when each queue last
failed as text (relative · exact, no hover needed), a failed list shows when each job failed, a queue opens
on its failures, and a job page's breadcrumb follows a retry made elsewhere over the websocket."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, LiveSite, run_worker, wait_until_listed
from tests.browser.test_live import open_live
from tests.browser.test_phone import inside_screen, sideways_overflow

pytestmark = pytest.mark.browser

QUEUE = "browser-recency"
# "3 min ago · 03:18:31" (or "just now · …", "12 s ago · …"): relative, then the exact time of day.
STAMP = re.compile(r"^(just now|\d+ (s|min|h|d) ago) · \d\d:\d\d:\d\d$")
WIDTHS = [
    pytest.param({"width": 1400, "height": 900}, id="1400px"),
    pytest.param({"width": 390, "height": 844}, id="390px"),
]


@pytest.fixture(scope="module")
def failed_jobs(live_site: LiveSite) -> list[str]:
    summary = run_worker(live_site.redis_url, QUEUE, "--produce", "6", "--fail-every", "2")
    return sorted(summary["failed"])


@pytest.mark.parametrize("viewport", WIDTHS)
def test_overview_shows_the_last_failure_as_text_and_sorts(
    page: Any, live_site: LiveSite, failed_jobs: list[str], viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size(viewport)
    wait_until_listed(page, live_site, f"bull:{QUEUE}")
    page.goto(f"{live_site.url}/queues/?q={QUEUE}")
    row = f'tr.queue-row[data-queue="bull:{QUEUE}"]'
    last = page.locator(f"{row} td.last-failed .stamp")
    expect(last).to_be_visible()
    expect(last).to_have_text(STAMP)  # what is on screen, not a title
    if viewport["width"] <= 390:
        # Once the page has settled (a live push may swap the row in just after it is first shown).
        try:
            page.wait_for_function(
                """(selector) => {
                    const box = document.querySelector(selector)?.getBoundingClientRect();
                    return box && box.left >= 0 && box.right <= window.innerWidth;
                }""",
                arg=f"{row} td.last-failed",
                timeout=10000,
            )
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "recency-overview-390-outside.png"), full_page=True)
        assert inside_screen(page, f"{row} td.last-failed")
    hour = page.locator(f"{row} td.failed-hour")
    expect(hour).to_be_visible()
    expect(hour).to_contain_text(str(len(failed_jobs)))
    assert sideways_overflow(page) <= 1, page.overflowing
    page.screenshot(path=str(ARTIFACTS / f"recency-overview-{viewport['width']}.png"), full_page=True)
    if viewport["width"] > 390:
        page.click("th.sortable a[data-sort='failed_hour']")
        page.wait_for_url(re.compile(r"sort=-failed_hour"))
        assert f"q={QUEUE}" in page.url
        expect(page.locator("th[aria-sort='descending'] a[data-sort='failed_hour']")).to_be_visible()
        page.click("a.failing-toggle")
        page.wait_for_url(re.compile(r"failing=1"))
        assert "sort=-failed_hour" in page.url and f"q={QUEUE}" in page.url
        expect(page.locator(row)).to_be_visible()
    assert page.dialogs == []


@pytest.mark.parametrize("viewport", WIDTHS)
def test_a_queue_opens_on_its_failures_with_the_failed_at_time_shown(
    page: Any, live_site: LiveSite, failed_jobs: list[str], viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size(viewport)
    page.goto(f"{live_site.url}/queues/?q={QUEUE}")
    page.click(f'tr.queue-row[data-queue="bull:{QUEUE}"] td:first-child a')  # the name: no state
    page.wait_for_selector("tr.job-row")
    expect(page.locator("nav.tabs a.tab.active")).to_contain_text("failed")
    ids = page.locator("tr.job-row").evaluate_all("rows => rows.map(row => row.dataset.jobId)")
    assert sorted(ids) == failed_jobs
    card = f'tr.job-row[data-job-id="{failed_jobs[0]}"]'
    when = page.locator(f"{card} td.finished-at .stamp")
    expect(when).to_be_visible()
    expect(when).to_have_text(STAMP)
    if viewport["width"] <= 390:
        assert inside_screen(page, f"{card} td.finished-at")
    assert sideways_overflow(page) <= 1, page.overflowing
    page.screenshot(path=str(ARTIFACTS / f"recency-failed-{viewport['width']}.png"), full_page=True)


def retry_elsewhere(redis_url: str, job_id: str) -> None:
    """Retry a failed job with the Python bullmq package, as another operator or a script would."""

    async def retry() -> None:
        from bullmq import Queue

        queue = Queue(QUEUE, {"connection": redis_url})
        try:
            job = await queue.getJob(job_id)
            await job.retry("failed")
        finally:
            await queue.close()

    # Playwright's sync API runs an event loop on this thread: run this one on its own.
    thread = threading.Thread(target=lambda: asyncio.run(retry()))
    thread.start()
    thread.join(timeout=30)


@pytest.mark.parametrize("viewport", WIDTHS)
def test_the_breadcrumb_and_tabs_follow_a_retry_without_reload(
    page: Any, live_site: LiveSite, failed_jobs: list[str], viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    job_id = failed_jobs[0] if viewport["width"] > 390 else failed_jobs[1]
    page.set_viewport_size(viewport)
    open_live(page, f"{live_site.url}/queues/default/bull:{QUEUE}/job/?id={job_id}")
    crumb = page.locator("nav.breadcrumbs #job-crumb")
    expect(crumb).to_have_text("failed")
    queue_page = page.context.new_page()
    queue_page.set_viewport_size(viewport)
    open_live(queue_page, f"{live_site.url}/queues/default/bull:{QUEUE}/?state=failed")
    failed_tab = queue_page.locator("nav.tabs a.tab", has_text="failed").locator(".count")
    failed_before = int(failed_tab.inner_text())

    retry_elsewhere(live_site.redis_url, job_id)

    expect(crumb).to_have_text("waiting", timeout=15000)
    assert crumb.get_attribute("href").endswith("?state=waiting")
    expect(page.locator("#job-state")).to_have_text("waiting")
    expect(failed_tab).to_have_text(str(failed_before - 1), timeout=15000)
    assert page.evaluate("window.__sameDocument") is True
    assert queue_page.evaluate("window.__sameDocument") is True
