"""An operator fixes failures from the UI: retry one failed job, remove another; the counts follow."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS, LiveSite, confirm_in_page, run_worker

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def failed_jobs(live_site: LiveSite) -> list[str]:
    """Six jobs run by a real Node worker on queue browser-actions; s-0, s-2 and s-4 failed."""
    summary = run_worker(live_site.redis_url, "browser-actions", "--produce", "6", "--fail-every", "2")
    return sorted(summary["failed"])


def count(page, state: str) -> str:
    return (
        page.locator(f'nav.tabs [data-queue="bull:browser-actions"][data-state="{state}"]')
        .inner_text()
        .strip()
    )


def test_retry_and_remove_from_the_ui(page, live_site: LiveSite, failed_jobs: list[str]) -> None:
    assert failed_jobs == ["s-0", "s-2", "s-4"]
    page.goto(live_site.url + "/queues/default/bull:browser-actions/?state=failed")
    assert count(page, "failed") == "3"
    assert count(page, "waiting") == "0"

    page.locator('tr.job-row[data-job-id="s-0"] button', has_text="Retry").click()
    page.wait_for_selector(".toast-ok", state="visible")
    assert "moved from failed to waiting" in page.locator(".toast-ok").first.inner_text()
    page.wait_for_function(
        """() => document.querySelector('nav.tabs [data-state="failed"]').textContent.trim() === "2" """
    )
    assert count(page, "waiting") == "1"
    assert page.locator('tr.job-row[data-job-id="s-0"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "actions-retried.png"), full_page=True)

    page.locator('tr.job-row[data-job-id="s-2"] td.id a').click()
    page.wait_for_selector("#job-actions")
    page.locator("#job-actions button", has_text="Remove").click()
    confirm_in_page(page)
    page.wait_for_url(re.compile(r"/queues/default/bull:browser-actions/$"))
    said = page.confirmations[-1]
    assert "browser-actions" in said and "failed job s-2" in said and "cannot be undone" in said
    assert count(page, "failed") == "1"
    assert page.dialogs == []

    page.goto(live_site.url + "/queues/audit/")
    rows = page.locator("tr.audit-row")
    assert rows.first.locator("td.mono").first.inner_text() == "remove"
    assert "retry" in page.locator("table.audit-table").inner_text()
