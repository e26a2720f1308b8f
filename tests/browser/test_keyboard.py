"""An operator triages with the keys: j/k move through the failed jobs, x selects, r retries, ? shows the
keys, / jumps to the search box; keys typed into a field are text, not commands."""

from __future__ import annotations

import pytest

from tests.browser.conftest import LiveSite, run_worker

pytestmark = pytest.mark.browser

QUEUE = "browser-keys"


@pytest.fixture(scope="module")
def failed_jobs(live_site: LiveSite) -> list[str]:
    """Six jobs run by a real Node worker; s-0, s-2 and s-4 failed."""
    summary = run_worker(live_site.redis_url, QUEUE, "--produce", "6", "--fail-every", "2")
    return sorted(summary["failed"])


def current(page) -> str | None:
    return page.evaluate(
        "() => { const r = document.querySelector('.bullmq-dashboard tr.key-current');"
        " return r ? r.dataset.jobId : null; }"
    )


def test_rows_are_moved_through_selected_and_retried_with_keys(
    page, live_site: LiveSite, failed_jobs: list[str]
) -> None:
    assert failed_jobs == ["s-0", "s-2", "s-4"]
    page.goto(f"{live_site.url}/queues/default/bull:{QUEUE}/?state=failed")
    order = page.eval_on_selector_all("tr.job-row", "rows => rows.map(r => r.dataset.jobId)")
    assert sorted(order) == failed_jobs
    assert current(page) is None

    page.keyboard.press("j")
    assert current(page) == order[0]
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")  # stays on the last row
    assert current(page) == order[2]
    page.keyboard.press("k")
    assert current(page) == order[1]

    page.keyboard.press("x")
    box = page.locator(f'tr.job-row[data-job-id="{order[1]}"] input[name=ids]')
    assert box.is_checked()
    assert "1 selected" in page.locator("[data-selected-count]").inner_text()
    page.keyboard.press("x")
    assert not box.is_checked()

    page.keyboard.press("r")
    page.wait_for_selector(".toast-ok", state="visible")
    assert "moved from failed to waiting" in page.locator(".toast-ok").first.inner_text()
    page.wait_for_function(
        """() => document.querySelector('nav.tabs [data-state="failed"]').textContent.trim() === "2" """
    )
    assert page.locator(f'tr.job-row[data-job-id="{order[1]}"]').count() == 0
    # The retried row is gone: no other row became current, so a second r retries nothing.
    assert current(page) is None
    page.keyboard.press("r")
    page.wait_for_timeout(300)
    assert page.locator(".toast-ok").count() == 1 and page.locator("tr.job-row").count() == 2
    page.keyboard.press("j")  # the keys go on from where the retried row was
    assert current(page) == order[2]

    page.keyboard.press("?")
    assert page.locator("dialog#key-help").evaluate("d => d.open")
    page.keyboard.press("Escape")
    assert not page.locator("dialog#key-help").evaluate("d => d.open")

    page.keyboard.press("/")
    focused = page.evaluate("() => document.activeElement.matches('[data-search-box], input.filter')")
    assert focused
    page.keyboard.type("jkxr")  # typed into the box: no row moves, nothing is retried
    assert page.evaluate("() => document.activeElement.value").endswith("jkxr")
    assert page.locator("tr.job-row").count() == 2 and page.locator(".toast-ok").count() == 1


def test_r_on_a_job_page_retries_that_job(page, live_site: LiveSite, failed_jobs: list[str]) -> None:
    page.goto(f"{live_site.url}/queues/default/bull:{QUEUE}/job/?id=s-4")
    page.wait_for_selector("#job-actions")
    page.keyboard.press("r")
    page.wait_for_selector(".toast-ok", state="visible")
    assert "moved from failed to waiting" in page.locator(".toast-ok").first.inner_text()


def test_focus_stays_on_the_opened_tab_after_the_swap(
    page, live_site: LiveSite, failed_jobs: list[str]
) -> None:
    page.goto(f"{live_site.url}/queues/default/bull:{QUEUE}/?state=completed")
    page.locator("nav.tabs a.tab", has_text="failed").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('nav.tabs a.tab.active').textContent.includes('failed')"
    )
    # htmx settles after the swap; then the same tab in the new content has the focus, not <body>
    page.wait_for_function(
        "() => document.activeElement.matches('nav.tabs a.tab.active') && document.activeElement.isConnected",
        timeout=5000,
    )
