"""From a job's page to its whole flow in Chromium: a flow across two queues and prefixes that Node
BullMQ built and processed (tests/interop/flow_state.mjs)."""

from __future__ import annotations

import pytest

from dashboard.converters import QueueKeyConverter
from tests.browser.conftest import ARTIFACTS, LiveSite

pytestmark = pytest.mark.browser


def test_the_job_page_opens_the_whole_flow_with_the_job_highlighted(
    page, live_site: LiveSite, node_flow: None
) -> None:
    queue = QueueKeyConverter().to_url("{shard-b}:flow-mid")
    page.goto(f"{live_site.url}/queues/default/{queue}/job/?id=mid-1")
    page.click('a:text-is("View whole flow")')
    page.wait_for_selector("ul.flow-tree")
    current = page.locator("li.flow-current > .flow-line")
    assert current.count() == 1 and "#mid-1" in current.inner_text()
    assert page.locator("ul.flow-tree li.flow-node").count() == 7
    # nested: the root's item holds the middle jobs, each holding its leaves
    root = page.locator("ul.flow-tree > li.flow-node")
    assert root.count() == 1 and "#root-1" in root.locator("> .flow-line").inner_text()
    assert root.locator("> ul > li.flow-node").count() == 2
    assert page.locator(".flow-line .badge.state-failed").count() == 3
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "flow-tree.png"), full_page=True)
    page.locator("ul.flow-tree a", has_text="#leaf-ok").click()
    page.wait_for_selector(".job-header")
    assert "leaf-ok" in page.locator("h1").first.inner_text()
