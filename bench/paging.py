"""Paging as an operator sees it: click "next page" in Chromium, time until the next page is on screen.

Bull Board's UI fetches JSON and renders it in the browser (React); ours fetches the list as HTML and
htmx swaps it in. Request times alone compare a JSON answer with an HTML one; this compares what both
cost the person paging: from the click to the next page's first job in the DOM and one frame after.
Both dashboards show 25 jobs a page (Bull Board's `jobsPerPage` setting, kept in localStorage, is set to
25) and run in one Chromium, clicked in turn.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from bench.measure import summary
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

# The page is loaded and htmx has processed it (its links would otherwise navigate).
READY = (
    "() => document.readyState === 'complete' && !!window.htmx && !document.querySelector('.htmx-request')"
)
# Between two clicks, outside the measured time: let the last swap settle.
SETTLE_MS = 200
# Click, then resolve once the expected element is in the document and a frame has been drawn.
CLICK_AND_WAIT = """async ([link, expected]) => {
  const target = document.querySelector(link);
  if (!target) throw new Error("no link " + link);
  return await new Promise((resolve, reject) => {
    const started = performance.now();
    const done = () => requestAnimationFrame(() => resolve(performance.now() - started));
    const observer = new MutationObserver(() => {
      if (document.querySelector(expected)) { observer.disconnect(); done(); }
    });
    observer.observe(document.body, { childList: true, subtree: true });
    setTimeout(() => { observer.disconnect(); reject(new Error("timeout waiting for " + expected)); }, 30000);
    target.click();
  });
}"""


async def _ours(browser: Browser, base: str, cookies: dict[str, str], first: int) -> Page:
    context = await browser.new_context()
    await context.add_cookies([{"name": k, "value": v, "url": base} for k, v in cookies.items()])
    page = await context.new_page()
    await page.goto(f"{base}/queues/default/bull:jobs/?state=completed&per_page=25&page={first}")
    await page.wait_for_function(READY)
    return page


async def _board(browser: Browser, base: str, first: int) -> Page:
    context = await browser.new_context()
    settings = json.dumps({"state": {"jobsPerPage": 25}, "version": 2})
    await context.add_init_script(f"localStorage.setItem('board-settings', {json.dumps(settings)})")
    page = await context.new_page()
    await page.goto(f"{base}/queue/jobs?status=completed&page={first}")
    await page.wait_for_selector("a[href^='/queue/jobs/']")
    return page


async def _paging(
    ours_base: str, cookies: dict[str, str], board_base: str, first: int, first_ids: dict[int, str]
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"ours": [], "bullboard": []}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ours = await _ours(browser, ours_base, cookies, first)
            board = await _board(browser, board_base, first)
            for page in sorted(first_ids):
                job_id = first_ids[page]
                link = f'nav.pagination a.page[href$="&page={page}"]'
                expected = f'tr.job-row[data-job-id="{job_id}"]'
                times["ours"].append(await ours.evaluate(CLICK_AND_WAIT, [link, expected]))
                await ours.wait_for_function(READY)
                board_expected = f'a[href^="/queue/jobs/{job_id}?"]'
                times["bullboard"].append(
                    await board.evaluate(CLICK_AND_WAIT, ['a[aria-label="Next page"]', board_expected])
                )
                await asyncio.sleep(SETTLE_MS / 1000)
        finally:
            await browser.close()
    return times


def measure(
    ours_base: str, cookies: dict[str, str], board_base: str, first: int, first_ids: dict[int, str]
) -> dict[str, Any]:
    """Click "next page" from page `first` on, once per entry of `first_ids` (page -> its first job id)."""
    times = asyncio.run(_paging(ours_base, cookies, board_base, first, first_ids))
    pages = f"{min(first_ids)}-{max(first_ids)}"
    return {
        label: {"pages": pages, **summary([ms / 1000 for ms in values])} for label, values in times.items()
    }
