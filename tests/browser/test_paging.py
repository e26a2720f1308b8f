"""Paging a long list in Chromium: htmx swaps, shareable URLs, history, and the refresh after an action."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.conftest import LiveSite, run_worker

pytestmark = pytest.mark.browser
QUEUE = "browser-paging"


@pytest.fixture(scope="module")
def completed(live_site: LiveSite) -> int:
    """Thirty jobs completed by a real Node worker on queue browser-paging."""
    run_worker(live_site.redis_url, QUEUE, "--produce", "30")
    return 30


def page_ids(page, live_site: LiveSite, number: int) -> list[str]:
    """The ids of a page of 10 completed jobs, as the JSON API lists them."""
    api = f"{live_site.url}/queues/api/queues/default/bull:{QUEUE}/jobs/"
    query = f"?state=completed&per_page=10&page={number}"
    return [job["id"] for job in json.loads(page.request.get(api + query).text())["jobs"]]


def shown_ids(page) -> list[str]:
    return page.locator("tr.job-row").evaluate_all("rows => rows.map(row => row.dataset.jobId)")


def current_page(page) -> str:
    return page.locator("nav.pagination .page.current").inner_text().strip()


def wait_for_page(page, number: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelector('nav.pagination .page.current').textContent.trim() === n",
        arg=str(number),
    )


def test_paging_swaps_the_list_keeps_urls_and_survives_a_refresh(
    page, live_site: LiveSite, completed: int
) -> None:
    page.goto(f"{live_site.url}/queues/default/bull:{QUEUE}/?state=completed&per_page=10")
    assert shown_ids(page) == page_ids(page, live_site, 1)
    page.evaluate("() => { document.querySelector('nav.tabs').dataset.kept = '1'; }")

    for number in (2, 3):
        page.click(f'nav.pagination a.page:text-is("{number}")')
        page.wait_for_url(re.compile(f"page={number}"))
        wait_for_page(page, number)
        assert shown_ids(page) == page_ids(page, live_site, number)
    # Only the list was swapped: the tabs are the same element.
    assert page.evaluate("() => document.querySelector('nav.tabs').dataset.kept") == "1"

    retried = shown_ids(page)[0]
    page.locator(f'tr.job-row[data-job-id="{retried}"] button', has_text="Retry").click()
    page.wait_for_selector(".toast-ok", state="visible")
    # The refresh after the action re-reads the page shown (its URL came with the last list swap).
    page.wait_for_function(f"() => !document.querySelector('tr.job-row[data-job-id=\"{retried}\"]')")
    assert current_page(page) == "3"
    assert shown_ids(page) == page_ids(page, live_site, 3)

    page.go_back()  # history restore asks for the whole page again
    wait_for_page(page, 2)
    assert shown_ids(page) == page_ids(page, live_site, 2)
    assert page.dialogs == []
