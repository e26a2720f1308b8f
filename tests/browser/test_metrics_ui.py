"""Throughput in Chromium: a queue whose real Node BullMQ workers record metrics has a chart on its metrics
page (a canvas drawn by the vendored uPlot, with the totals as text beside it), which survives a window
switch (an htmx swap) and a theme change, and its overview row has a sparkline; no CSP violation."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, ROOT, LiveSite, wait_until_listed
from tests.browser.test_accessibility import violations
from tests.browser.test_phone import sideways_overflow

pytestmark = pytest.mark.browser
NAME = "browser-metered"
QUEUE = f"bull:{NAME}"
BATCHES = json.dumps(
    [
        {"minutesAgo": 7, "complete": 4, "fail": 1},
        {"minutesAgo": 3, "complete": 6, "fail": 2},
        {"minutesAgo": 0, "complete": 1, "fail": 0},
    ]
)
VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.fixture(scope="module")
def metered(live_site: LiveSite) -> dict[str, Any]:
    """Node BullMQ 6 workers that record metrics, with jobs over several minutes."""
    result = subprocess.run(
        ["node", "metrics_worker.mjs", live_site.redis_url, NAME, "--metrics", "10080", "--batches", BATCHES],
        cwd=ROOT / "tests" / "interop",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_metrics_chart_and_sparkline(page: Any, live_site: LiveSite, metered: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    page.add_init_script(VIOLATIONS)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    wait_until_listed(page, live_site, QUEUE)

    # The overview: a sparkline canvas in the queue's row, and its last hour as text.
    row = page.locator(f'tr.queue-row[data-queue="{QUEUE}"]')
    row.locator(".sparkline").scroll_into_view_if_needed()  # drawn once it is in view
    expect(row.locator("td.spark .sparkline canvas")).to_have_count(1)
    # The minute still counting (the last batch, one completed job) is not a whole minute yet, unless the
    # minute ended since the batch ran: then it counts too.
    expect(row.locator("td.spark .spark-text")).to_have_text(re.compile(r"^1[01] completed, 3 failed$"))

    # The queue page links its metrics; the metrics page draws the hour.
    page.goto(f"{live_site.url}/queues/default/{QUEUE}/")
    page.locator("nav.subnav a", has_text="Metrics").click()
    page.wait_for_url(f"**/queues/default/{QUEUE}/metrics/")
    chart = page.locator("[data-throughput-chart]")
    expect(chart.locator("canvas")).to_have_count(1)
    assert re.match(
        r"Last hour: 1[01] completed, 3 failed\.", page.locator("[data-chart-summary]").inner_text()
    )
    assert "Source: BullMQ metrics" in page.locator("[data-chart-source]").inner_text()
    # The text alternative: the numbers as a table, and the canvas hidden from assistive technology.
    page.locator("details.chart-numbers summary").click()
    cells = page.locator("details.chart-numbers tbody tr td.num").all_inner_texts()
    assert sum(int(cell) for cell in cells if cell.isdigit()) in (13, 14)
    assert (
        chart.get_attribute("role") == "img"
        and chart.get_attribute("aria-labelledby") == "throughput-summary"
    )
    page.screenshot(path=str(ARTIFACTS / "metrics-hour.png"), full_page=True)

    # A window switch swaps the body in (htmx) and draws its chart.
    page.locator(".window-switch a[data-window='day']").click()
    expect(page.locator("#metrics-body[data-window='day'] [data-throughput-chart] canvas")).to_have_count(1)
    assert page.url.endswith("?window=day")
    assert re.match(
        r"Last 24 hours: 1[01] completed, 3 failed\.", page.locator("[data-chart-summary]").inner_text()
    )

    # A theme change draws it again in the theme's colours.
    before = page.evaluate("document.querySelector('[data-throughput-chart] canvas').toDataURL()")
    page.click("#theme-toggle")
    page.wait_for_function(
        "before => document.querySelector('[data-throughput-chart] canvas').toDataURL() !== before",
        arg=before,
    )
    expect(page.locator("[data-throughput-chart] canvas")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "metrics-day-dark.png"), full_page=True)

    assert page.evaluate("window.__csp") == []
    assert [error for error in errors if "charts.js" in error or "uPlot" in error] == []


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("width", [1400, 390])
def test_metrics_page_is_accessible_and_fits(
    browser: Any, live_site: LiveSite, metered: dict[str, Any], theme: str, width: int
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
        for path in (f"/queues/default/{QUEUE}/metrics/", f"/queues/?q={NAME}"):
            page.goto(live_site.url + path)
            page.wait_for_load_state("networkidle")
            page.locator("[data-throughput-chart] canvas, .sparkline canvas").first.wait_for()
            assert violations(page) == [], path
            assert sideways_overflow(page) <= 1, (path, page.overflowing)
            shot = "metrics" if "metrics" in path else "overview-sparklines"
            page.screenshot(path=str(ARTIFACTS / f"{shot}-{width}-{theme}.png"), full_page=True)
    finally:
        context.close()
