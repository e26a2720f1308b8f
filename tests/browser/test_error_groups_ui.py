"""Triage from the browser: the overview's top error groups lead to a group, whose jobs are retried at
once; the group's count and the queue's failed count drop."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, ROOT, LiveSite, confirm_in_page, wait_until_listed

pytestmark = pytest.mark.browser
QUEUE = "bull:browser-errors"


@pytest.fixture(scope="module")
def failures(live_site: LiveSite) -> dict[str, Any]:
    """Real Node BullMQ failures on queue browser-errors: 6 timeouts, 3 TypeErrors from one function."""
    jobs = [{"id": f"t-{i}", "kind": "timeout", "n": 1000 + 13 * i, "host": i + 1} for i in range(6)]
    jobs += [{"id": f"y-{i}", "kind": "type"} for i in range(3)]
    result = subprocess.run(
        ["node", "error_worker.mjs", live_site.redis_url, "browser-errors"],
        cwd=ROOT / "tests" / "interop",
        input=json.dumps({"jobs": jobs}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_overview_to_group_to_retry(page: Any, live_site: LiveSite, failures: dict[str, Any]) -> None:
    assert len(failures["failed"]) == 9
    wait_until_listed(page, live_site, QUEUE)
    section = page.locator("#top-errors")
    link = section.locator(f'tr.error-group[data-queue="{QUEUE}"] a.group-link', has_text="TypeError")
    link.click()
    page.wait_for_url("**/queues/default/bull:browser-errors/errors/**")

    group = page.locator("tr.error-group", has_text="TypeError")
    assert group.locator(".group-count").inner_text() == "3"
    assert group.locator("details.sample-trace").get_attribute("open") is not None  # opened by the link
    assert "chargeCustomer" in group.locator("pre.trace").inner_text()
    assert (
        page.locator("tr.error-group", has_text="Timeout after").locator(".group-count").inner_text() == "6"
    )
    page.screenshot(path=str(ARTIFACTS / "error-groups.png"), full_page=True)

    group.locator("button", has_text="Retry all").click()
    confirm_in_page(page)
    page.wait_for_selector(".toast-ok", state="visible")
    assert "3 retried, 0 skipped" in page.locator(".toast-ok").first.inner_text()
    assert "Queue browser-errors: retry the 3 failed jobs of this group" in page.confirmations[-1]
    # The groups are read again after the action: the TypeError group is gone, the timeouts remain.
    page.wait_for_function(
        """() => ![...document.querySelectorAll('tr.error-group')]
                   .some(row => row.textContent.includes('TypeError'))"""
    )
    assert page.locator("tr.error-group").count() == 1
    assert page.dialogs == []

    page.goto(f"{live_site.url}/queues/default/{QUEUE}/?state=failed")
    failed = page.locator(f'nav.tabs [data-queue="{QUEUE}"][data-state="failed"]').inner_text().strip()
    assert failed == "6"
