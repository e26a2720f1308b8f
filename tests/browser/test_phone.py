"""On a phone (390 px wide, the width an on-call operator is paged on): the overview, a failed list and a
job page read without sideways scrolling, rows are cards with id, name, age and reason, the counts that
matter come first, and the actions are big enough for a thumb."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, LiveSite, run_worker

pytestmark = pytest.mark.browser

QUEUE = "browser-phone"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def failed_jobs(live_site: LiveSite) -> list[str]:
    summary = run_worker(live_site.redis_url, QUEUE, "--produce", "6", "--fail-every", "2")
    return sorted(summary["failed"])


@pytest.fixture
def phone(page: Any) -> Any:
    page.set_viewport_size(PHONE)
    return page


def sideways_overflow(page: Any) -> int:
    """How many pixels the page, or any scroll box in it, would scroll sideways (the worst one is
    named in the assertion message through `page.overflowing`)."""
    worst, page.overflowing = page.evaluate(
        """() => {
          let worst = document.documentElement.scrollWidth - window.innerWidth, what = "page";
          for (const el of document.querySelectorAll('.bullmq-dashboard *')) {
            const style = getComputedStyle(el);
            const over = el.scrollWidth - el.clientWidth;
            if (/(auto|scroll)/.test(style.overflowX) && el.clientWidth > 0 && over > worst) {
              worst = over;
              what = el.tagName + "." + el.className;
            }
          }
          return [worst, what];
        }"""
    )
    return int(worst)


def inside_screen(page: Any, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_overview_reads_without_sideways_scrolling(
    phone: Any, live_site: LiveSite, failed_jobs: list[str]
) -> None:
    phone.goto(f"{live_site.url}/queues/?q={QUEUE}")
    row = phone.locator(f'tr.queue-row[data-queue="bull:{QUEUE}"]')
    row.wait_for()
    assert sideways_overflow(phone) <= 1, phone.overflowing
    phone.screenshot(path=str(ARTIFACTS / "phone-overview.png"), full_page=True)
    # The failed count comes first after the name, with its label, and fits on the screen.
    shown = phone.evaluate(
        """(key) => [...document.querySelectorAll(`tr.queue-row[data-queue="${key}"] td.count`)]
              .filter(td => td.offsetParent !== null)
              .map(td => ({state: td.dataset.state,
                            text: getComputedStyle(td, '::before').content + td.innerText,
                            r: td.getBoundingClientRect()}))
              .sort((a, b) => a.r.top - b.r.top || a.r.left - b.r.left)""",
        f"bull:{QUEUE}",
    )
    assert shown[0]["state"] == "failed" and "failed" in shown[0]["text"].lower() and "3" in shown[0]["text"]
    assert inside_screen(phone, f'tr.queue-row[data-queue="bull:{QUEUE}"] td.count[data-state="failed"]')


def test_failed_list_is_cards_with_thumb_sized_actions(
    phone: Any, live_site: LiveSite, failed_jobs: list[str]
) -> None:
    phone.goto(f"{live_site.url}/queues/default/bull:{QUEUE}/?state=failed")
    phone.locator("tr.job-row").first.wait_for()
    assert sideways_overflow(phone) <= 1, phone.overflowing
    phone.screenshot(path=str(ARTIFACTS / "phone-failed.png"), full_page=True)
    card = f'tr.job-row[data-job-id="{failed_jobs[0]}"]'
    # Its age, and when it failed as text (relative · exact time: a phone has no hover).
    for part in ("td.id a", "td.name", "td.created time.rel", "td.finished-at .stamp", "td.reason"):
        assert phone.locator(f"{card} {part}").is_visible(), part
        assert inside_screen(phone, f"{card} {part}"), part
    for hidden in ("td.attempts", "td.duration"):  # the card keeps to what triage needs
        assert not phone.locator(f"{card} {hidden}").is_visible(), hidden
    retry = phone.locator(f"{card} button", has_text="Retry")
    box = retry.bounding_box()
    assert box is not None and box["height"] >= 40 and box["x"] + box["width"] <= PHONE["width"]
    retry.click()
    phone.wait_for_selector(".toast-ok", state="visible")
    assert inside_screen(phone, ".toast-ok")


def test_job_page_reads_without_sideways_scrolling(
    phone: Any, live_site: LiveSite, failed_jobs: list[str]
) -> None:
    phone.goto(f"{live_site.url}/queues/default/bull:{QUEUE}/job/?id={failed_jobs[-1]}")
    phone.wait_for_selector("#job-actions")
    assert sideways_overflow(phone) <= 1, phone.overflowing
    phone.screenshot(path=str(ARTIFACTS / "phone-job.png"), full_page=True)
    assert inside_screen(phone, '#job-actions [data-key-action="retry"]')


@pytest.mark.parametrize("page_path", ["errors/", "search/?q=s-&state=failed", "schedulers/", "workers/"])
def test_the_triage_pages_read_without_sideways_scrolling(
    phone: Any, live_site: LiveSite, failed_jobs: list[str], page_path: str
) -> None:
    phone.goto(f"{live_site.url}/queues/default/bull:{QUEUE}/{page_path}")
    phone.wait_for_selector("nav.subnav")
    phone.wait_for_load_state("networkidle")
    assert sideways_overflow(phone) <= 1, phone.overflowing
    phone.screenshot(path=str(ARTIFACTS / f"phone-{page_path.split('/')[0]}.png"), full_page=True)


def test_queue_actions_menu_and_confirm_dialog_fit_the_screen(
    phone: Any, live_site: LiveSite, failed_jobs: list[str]
) -> None:
    phone.goto(f"{live_site.url}/queues/default/bull:{QUEUE}/?state=failed")
    toggle = phone.locator("#queue-actions [data-actions-toggle]")
    toggle.wait_for()
    assert not phone.locator("#queue-actions-items").is_visible()  # the actions wait behind one button
    toggle.click()
    phone.locator("#queue-actions details.menu summary", has_text="Clean").click()
    assert sideways_overflow(phone) <= 1, phone.overflowing
    assert inside_screen(phone, "#queue-actions details.menu[open] form")
    phone.locator("#queue-actions details.menu[open] button[type=submit]").click()
    phone.wait_for_selector("dialog#bullmq-confirm[open] [data-confirm-ok]:not([disabled])")
    assert sideways_overflow(phone) <= 1, phone.overflowing
    assert inside_screen(phone, "dialog#bullmq-confirm")
    phone.screenshot(path=str(ARTIFACTS / "phone-confirm.png"))
    phone.locator("dialog#bullmq-confirm [data-confirm-cancel]").click()
    assert phone.dialogs == []
