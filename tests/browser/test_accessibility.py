"""axe-core (npm, tests/interop/node_modules) finds no WCAG 2.1 A/AA violation on the pages an on-call
operator uses: the overview, a failed list, a failed job, a flow parent and the audit page, in the light
and the dark theme, on a desk and on a phone."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from dashboard.converters import QueueKeyConverter
from tests.browser.conftest import LiveSite, run_worker
from tests.support.node import INTEROP

pytestmark = pytest.mark.browser

QUEUE = "browser-a11y"
AXE = INTEROP / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def pages(live_site: LiveSite, node_flow: None) -> dict[str, str]:
    """The pages to check: failures from a real Node worker and a flow Node BullMQ built."""
    summary = run_worker(live_site.redis_url, QUEUE, "--produce", "6", "--fail-every", "2")
    failed = sorted(summary["failed"])[0]
    return {
        "overview": "/queues/",
        "failed list": f"/queues/default/bull:{QUEUE}/?state=failed",
        "failed job": f"/queues/default/bull:{QUEUE}/job/?id={failed}",
        "flow parent": "/queues/default/bull:flow-top/job/?id=root-1",
        "flow tree": f"/queues/default/{QueueKeyConverter().to_url('{shard-b}:flow-mid')}/job/flow/?id=mid-1",
        "audit": "/queues/audit/",
    }


def violations(page: Any) -> list[str]:
    """axe's WCAG 2.1 A/AA violations of the page, one line each (rule, impact, the first targets)."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async (tags) => {
          const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
          return result.violations.map(v => `${v.id} (${v.impact}): ${v.nodes.length} x ` +
            v.nodes.slice(0, 3)
              .map(n => n.target.join(" ") + JSON.stringify(n.any.map(a => a.data)))
              .join(" | "));
        }""",
        TAGS,
    )
    return list(found)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [1400, 390])
def test_no_wcag_violations(
    browser: Any, live_site: LiveSite, pages: dict[str, str], theme: str, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    context.add_init_script(f"localStorage.setItem('bullmq-dashboard-theme', '{theme}')")
    page = context.new_page()
    try:
        page.goto(live_site.url + "/accounts/login/?next=/queues/")
        page.fill("input[name=username]", live_site.username)
        page.fill("input[name=password]", live_site.password)
        page.click("button[type=submit]")
        page.wait_for_url("**/queues/")
        found: dict[str, list[str]] = {}
        for name, path in pages.items():
            page.goto(live_site.url + path)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.dataset.bullmqTheme || 'light'") == theme
            problems = violations(page)
            if problems:
                found[name] = problems
        assert found == {}, "\n".join(
            f"{name}: {problem}" for name, items in found.items() for problem in items
        )
    finally:
        context.close()


def test_skip_link_named_landmarks_and_headings_in_order(
    page: Any, live_site: LiveSite, pages: dict[str, str]
) -> None:
    for name, path in pages.items():
        page.goto(live_site.url + path)
        page.wait_for_load_state("networkidle")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.classList.contains('skip-link')"), name
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "bullmq-main", name
        unnamed = page.evaluate(
            "[...document.querySelectorAll('.bullmq-dashboard nav')]"
            ".filter(n => !n.getAttribute('aria-label')).map(n => n.className)"
        )
        assert unnamed == [], name
        levels = page.evaluate(
            "[...document.querySelectorAll('.bullmq-dashboard #bullmq-main :is(h1,h2,h3,h4,h5,h6)')]"
            ".filter(h => h.offsetParent !== null).map(h => Number(h.tagName[1]))"
        )
        assert levels and levels[0] == 1, (name, levels)
        jumps = [(a, b) for a, b in pairwise(levels) if b > a + 1]
        assert jumps == [], (name, levels)
