"""An on-call walk through the pages in Chromium: overview, a failed job, its stack trace."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_overview_to_failed_job_stack_trace(page) -> None:
    failed_cell = page.locator('td.count[data-queue="bull:interop-main"][data-state="failed"]')
    assert failed_cell.inner_text().strip() == "4"
    assert page.locator('[data-queue="bull:interop-paused"][data-state="paused-flag"]').is_visible()
    shot(page, "overview")

    page.click('a:text-is("interop-main")')
    page.wait_for_url(re.compile(r"/queues/default/bull:interop-main/$"))
    page.click('nav.tabs a.tab:has-text("failed")')
    # htmx swapped the list in place and pushed the shareable URL
    page.wait_for_url(re.compile(r"state=failed"))
    page.wait_for_selector('#job-list[data-list-state="failed"]')
    assert page.locator("tr.job-row").count() == 4
    assert page.locator("td.reason", has_text="SMTP timeout").count() == 3
    shot(page, "queue-failed")

    page.locator("tr.job-row", has_text="SMTP timeout").first.locator("td.id a").click()
    page.wait_for_selector("#stacktraces")
    # Node wrote the same trace for each of the three attempts: shown once, with its count.
    traces = page.locator("ol.traces > li")
    assert traces.count() == 1
    assert traces.first.get_attribute("data-trace-count") == "3"
    assert "SMTP timeout" in traces.first.inner_text()
    assert page.locator(".badge.state-failed").first.inner_text() == "failed"
    shot(page, "job-failed")
    assert page.dialogs == []


def test_hostile_job_renders_as_text_and_runs_nothing(page) -> None:
    page.goto(page.url.split("/queues/")[0] + "/queues/default/bull:interop-main/?state=waiting")
    name_cell = page.locator("td.name", has_text="<img src=x onerror=alert(1)>")
    assert name_cell.count() == 1
    name_cell.locator("xpath=..").locator("td.id a").click()
    page.wait_for_selector(".job-header")
    assert "<img src=x onerror=alert(1)>" in page.locator("h1").first.inner_text()
    assert "<script>window.__pwned=1</script>" in page.locator("pre.json").first.inner_text()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0
    assert page.dialogs == []


def test_theme_toggle_and_dark_mode(page) -> None:
    page.emulate_media(color_scheme="dark")
    page.reload()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.click("#theme-toggle")
    assert page.evaluate("document.documentElement.dataset.bullmqTheme") in {"dark", "light"}
    shot(page, "overview-dark")
    assert background != "rgb(255, 255, 255)"
    # The OS preference picks the dark tokens; a forced theme overrides it either way.
    assert background == "rgb(15, 18, 22)"
    for theme, colour in (("light", "rgb(245, 246, 248)"), ("dark", "rgb(15, 18, 22)")):
        page.evaluate("(theme) => { document.documentElement.dataset.bullmqTheme = theme; }", theme)
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == colour
    page.emulate_media(color_scheme="light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 22)"
