"""The job page at 3 a.m., in Chromium at 1400 px and on a 390 px phone: a 200-character unbroken failed
reason and its trace wrap (nothing scrolls sideways), the copy button puts the id on the clipboard, the
log filter hides the lines that do not match, and the top bar opens a job by its id."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, LiveSite
from tests.browser.test_phone import sideways_overflow
from tests.support.builders import add_jobs, process

pytestmark = pytest.mark.browser

QUEUE = "browser-reading"
JOB_ID = "long-reason"
REASON = "R" * 200
WIDTHS = [1400, 390]


def in_thread(work: Any) -> None:
    """Run a coroutine function to the end on its own loop (Playwright's sync API holds this thread's)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def failed_job(live_site: LiveSite) -> str:
    """A job that failed twice with a 200-character unbroken reason, after writing three log lines."""

    async def build() -> None:
        await add_jobs(live_site.redis_url, QUEUE, [("unbroken", {"n": 1}, {"jobId": JOB_ID, "attempts": 2})])

        async def fail(job: Any, token: str) -> None:
            if job.attemptsMade == 0:
                await job.log("alpha: connecting")
                await job.log("beta: handshake")
                await job.log("gamma: alpha again")
            raise ValueError(REASON)

        await process(live_site.redis_url, QUEUE, fail, until=1)

    in_thread(build)
    return JOB_ID


@pytest.fixture
def reader(browser: Any, live_site: LiveSite, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A logged-in page of the given width whose context may read and write the clipboard."""
    width = getattr(request, "param", 1400)
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_site.url)
    page = context.new_page()
    page.goto(live_site.url + "/accounts/login/?next=/queues/")
    page.fill("input[name=username]", live_site.username)
    page.fill("input[name=password]", live_site.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/queues/")
    yield page
    context.close()


def job_url(live_site: LiveSite) -> str:
    return f"{live_site.url}/queues/default/bull:{QUEUE}/job/?id={JOB_ID}"


@pytest.mark.parametrize("reader", WIDTHS, indirect=True, ids=[f"{w}px" for w in WIDTHS])
def test_a_long_unbroken_reason_and_trace_wrap_without_sideways_scroll(
    failed_job: str, reader: Any, live_site: LiveSite
) -> None:
    reader.goto(job_url(live_site))
    reader.wait_for_selector("#failed-reason")
    assert REASON in reader.locator("#failed-reason").inner_text()
    # Open the (collapsed) trace too: its last line is the same unbroken reason.
    reader.locator("details.trace-group > summary").first.click()
    reader.wait_for_selector("#trace-1", state="visible")
    assert sideways_overflow(reader) <= 1, reader.overflowing
    width = reader.viewport_size["width"]
    for selector in ("#failed-reason", "#trace-1"):
        box = reader.locator(selector).bounding_box()
        assert box is not None and box["x"] + box["width"] <= width, selector
    # Both attempts failed alike: one trace, shown once with its count.
    assert reader.locator("ol.traces > li").count() == 1
    assert reader.locator("[data-trace-repeat]").inner_text() == "the same trace \u00d72"
    ARTIFACTS.mkdir(exist_ok=True)
    reader.screenshot(path=str(ARTIFACTS / f"job-reading-{width}.png"), full_page=True)


@pytest.mark.parametrize("reader", WIDTHS, indirect=True, ids=[f"{w}px" for w in WIDTHS])
def test_the_copy_button_puts_the_id_on_the_clipboard(
    failed_job: str, reader: Any, live_site: LiveSite
) -> None:
    reader.goto(job_url(live_site))
    reader.evaluate("() => navigator.clipboard.writeText('something else')")
    button = reader.locator(".job-header button.copy-button")
    button.click()
    reader.wait_for_function(
        "() => document.querySelector('.job-header button.copy-button').dataset.copyState"
    )
    assert button.get_attribute("data-copy-state") == "done"
    assert reader.evaluate("() => navigator.clipboard.readText()") == JOB_ID


@pytest.mark.parametrize("reader", WIDTHS, indirect=True, ids=[f"{w}px" for w in WIDTHS])
def test_the_log_filter_hides_lines_that_do_not_match(
    failed_job: str, reader: Any, live_site: LiveSite
) -> None:
    reader.goto(job_url(live_site))
    lines = reader.locator("#log-lines > li")
    assert lines.count() == 3
    reader.fill("input[data-log-filter]", "ALPHA")
    reader.wait_for_function("() => document.querySelectorAll('#log-lines > li[hidden]').length === 1")
    visible = [line.inner_text() for line in lines.all() if line.is_visible()]
    assert visible == ["alpha: connecting", "gamma: alpha again"]
    assert "2 of 3" in reader.locator("[data-log-filter-count]").inner_text()
    reader.fill("input[data-log-filter]", "")
    reader.wait_for_function("() => document.querySelectorAll('#log-lines > li[hidden]').length === 0")


@pytest.mark.parametrize("reader", WIDTHS, indirect=True, ids=[f"{w}px" for w in WIDTHS])
def test_the_top_bar_opens_a_job_by_its_id(failed_job: str, reader: Any, live_site: LiveSite) -> None:
    reader.goto(f"{live_site.url}/queues/")
    reader.fill("form.job-lookup input[name=id]", JOB_ID)
    reader.press("form.job-lookup input[name=id]", "Enter")
    reader.wait_for_url("**/job/?id=long-reason")
    assert reader.locator("#failed-reason").is_visible()
    assert sideways_overflow(reader) <= 1, reader.overflowing
