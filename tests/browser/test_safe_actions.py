"""The 3 a.m. operator: destructive and bulk actions ask in the page's own dialog, which names the queue, the
state, the age and how many jobs; Clean never preselects a live state; an action that touched nothing says
why; Pause can be undone from its toast; Escape closes dialogs and menus; on a phone the queue's actions
sit behind one menu and nothing scrolls sideways."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, CONFIRM, ROOT, LiveSite, confirm_in_page, run_worker
from tests.browser.test_phone import sideways_overflow

pytestmark = pytest.mark.browser

SIZES = {"wide": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}


def add_waiting(redis_url: str, queue: str, job_ids: list[str]) -> None:
    """Waiting jobs added by another process (Playwright's sync API keeps an event loop on this thread)."""
    code = (
        "import asyncio, sys; from tests.support.builders import add_jobs; "
        "asyncio.run(add_jobs(sys.argv[1], sys.argv[2], [('w', {}, {'jobId': i}) for i in sys.argv[3:]]))"
    )
    subprocess.run([sys.executable, "-c", code, redis_url, queue, *job_ids], cwd=ROOT, check=True, timeout=60)


@pytest.fixture
def made(request: pytest.FixtureRequest, live_site: LiveSite) -> Iterator[tuple[str, redis.Redis]]:
    """A queue of its own for each test (and size): 3 completed and 3 failed jobs, all just finished,
    and 2 waiting ones; with a Redis client to check what changed."""
    name = "browser-safe-" + request.node.name.split("[")[0].removeprefix("test_")[:24]
    if "[" in request.node.name:
        name += "-" + request.node.name.split("[")[1].rstrip("]")
    run_worker(live_site.redis_url, name, "--produce", "6", "--fail-every", "2")
    add_waiting(live_site.redis_url, name, ["w-1", "{failed}"])
    client = redis.Redis.from_url(live_site.redis_url, decode_responses=True)
    try:
        yield name, client
    finally:
        client.close()


def open_queue(page: Any, live_site: LiveSite, name: str, size: str, state: str = "waiting") -> None:
    page.set_viewport_size(SIZES[size])
    page.goto(f"{live_site.url}/queues/default/bull:{name}/?state={state}")
    page.wait_for_selector("#queue-actions")


def show_actions(page: Any, size: str) -> None:
    """On a phone the queue's actions are behind the Actions button: open it."""
    toggle = page.locator("#queue-actions [data-actions-toggle]")
    if size == "phone":
        expect(page.locator("#queue-actions-items")).to_be_hidden()
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
    else:
        expect(toggle).to_be_hidden()
    expect(page.locator("#queue-actions-items")).to_be_visible()


def focused(page: Any, selector: str) -> bool:
    return bool(page.evaluate(f"() => document.activeElement === document.querySelector('{selector}')"))


@pytest.mark.parametrize("size", ["wide", "phone"])
def test_clean_defaults_to_completed_and_cancel_changes_nothing(
    page: Any, live_site: LiveSite, made: tuple[str, redis.Redis], size: str
) -> None:
    name, client = made
    open_queue(page, live_site, name, size, state="waiting")
    show_actions(page, size)
    page.locator("#queue-actions details.menu summary", has_text="Clean").click()
    form = page.locator("#queue-actions details.menu[open] form")
    # On the waiting tab, Clean preselects completed: never a live state.
    assert form.locator("select[name=state]").input_value() == "completed"
    assert form.locator("select[name=grace]").input_value() == "3600000"
    if size == "phone":
        assert sideways_overflow(page) <= 1, page.overflowing

    form.locator("button[type=submit]").click()
    said = confirm_in_page(page, accept=False)
    assert f"Clean {name}?" in said
    assert f"About 0 completed jobs of {name}, older than 1 hour, will be removed" in said
    assert "estimate" in said
    assert focused(page, "#queue-actions details.menu[open] form button[type=submit]")

    form.locator("select[name=grace]").select_option("0")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(f"{CONFIRM}[open]")
    expect(page.locator(f"{CONFIRM} .confirm-text")).to_contain_text(
        f"About 3 completed jobs of {name}, of any age, will be removed"
    )
    if size == "phone":
        assert sideways_overflow(page) <= 1, page.overflowing
    page.screenshot(path=str(ARTIFACTS / f"safe-clean-dialog-{size}.png"))
    page.keyboard.press("Escape")  # cancels, like the Cancel button
    expect(page.locator(CONFIRM)).to_be_hidden()
    assert focused(page, "#queue-actions details.menu[open] form button[type=submit]")
    assert client.zcard(f"bull:{name}:completed") == 3
    assert client.llen(f"bull:{name}:wait") == 2
    assert page.dialogs == []


def test_clean_that_removes_nothing_says_why(
    page: Any, live_site: LiveSite, made: tuple[str, redis.Redis]
) -> None:
    name, client = made
    open_queue(page, live_site, name, "wide", state="completed")
    page.locator("#queue-actions details.menu summary", has_text="Clean").click()
    form = page.locator("#queue-actions details.menu[open] form")
    form.locator("button[type=submit]").click()
    confirm_in_page(page)
    toast = page.locator("#bullmq-toasts .toast").first
    expect(toast).to_contain_text(
        f"Removed 0 completed jobs older than 1 hour from {name}: its 3 completed jobs are all newer."
    )
    assert client.zcard(f"bull:{name}:completed") == 3

    page.locator("#queue-actions details.menu summary", has_text="Clean").click()
    form.locator("select[name=grace]").select_option("0")
    form.locator("button[type=submit]").click()
    assert "About 3 completed jobs" in confirm_in_page(page)
    expect(page.locator("#bullmq-toasts .toast").first).to_contain_text(
        f"Removed 3 completed jobs from {name}."
    )
    assert client.zcard(f"bull:{name}:completed") == 0


@pytest.mark.parametrize("size", ["wide", "phone"])
def test_pause_is_undone_from_its_toast(
    page: Any, live_site: LiveSite, made: tuple[str, redis.Redis], size: str
) -> None:
    name, client = made
    open_queue(page, live_site, name, size)
    show_actions(page, size)
    page.locator("#queue-actions button", has_text="Pause").click()
    toast = page.locator("#bullmq-toasts .toast", has_text="paused").first
    expect(toast).to_contain_text(f"Queue {name} paused.")
    assert client.hget(f"bull:{name}:meta", "paused") == "1"
    page.screenshot(path=str(ARTIFACTS / f"safe-pause-undo-{size}.png"))

    toast.locator("button[data-undo]", has_text="Undo").click()
    expect(page.locator("#bullmq-toasts .toast", has_text="resumed").first).to_contain_text(
        f"Queue {name} resumed."
    )
    assert client.hget(f"bull:{name}:meta", "paused") is None
    expect(page.locator("#bullmq-toasts .toast", has_text="paused")).to_have_count(0)  # its toast went

    page.goto(f"{live_site.url}/queues/audit/?queue=bull:{name}")
    rows = page.locator("tr.audit-row", has_text=name)
    actions = [row.locator("td.mono").first.inner_text() for row in rows.all()[:2]]
    assert actions == ["resume", "pause"]
    assert page.dialogs == []


def test_bulk_confirms_give_counts_and_idle_actions_hide(
    page: Any, live_site: LiveSite, made: tuple[str, redis.Redis]
) -> None:
    name, client = made
    open_queue(page, live_site, name, "wide", state="failed")
    promote_all = page.locator('#queue-actions [data-queue-action="promote_all"]')
    retry_all = page.locator('#queue-actions [data-queue-action="retry_all"]')
    expect(promote_all).to_be_hidden()  # 0 delayed
    expect(retry_all).to_be_visible()

    # Drain names the queue and each count; cancel changes nothing.
    page.locator('#queue-actions [data-queue-action="drain"]').click()
    said = confirm_in_page(page, accept=False)
    assert f"Drain {name}?" in said
    assert f"Queue {name}: removes 2 waiting, 0 prioritized and 0 delayed jobs, of any age." in said
    assert focused(page, '#queue-actions [data-queue-action="drain"]')
    assert client.llen(f"bull:{name}:wait") == 2

    # A selection: the dialog counts it, and the button that sent it is the action taken.
    first_two = page.locator("tr.job-row input[name=ids]")
    first_two.nth(0).check()
    first_two.nth(1).check()
    page.locator("#bulk-form button", has_text="Remove").click()
    assert f"Queue {name}: remove 2 selected failed jobs with their logs." in confirm_in_page(page)
    expect(page.locator("#bullmq-toasts .toast").first).to_contain_text("2 removed")
    assert client.zcard(f"bull:{name}:failed") == 1

    # Retry all says how many now; at 0 failed it is no longer offered, until failures come back.
    expect(page.locator('nav.tabs .count[data-state="failed"]')).to_have_text("1")
    retry_all.click()
    assert f"Queue {name}: all 1 failed jobs, of any age, move back to waiting." in confirm_in_page(page)
    expect(page.locator('nav.tabs .count[data-state="failed"]')).to_have_text("0")
    expect(retry_all).to_be_hidden()
    assert client.zcard(f"bull:{name}:failed") == 0
    run_worker(live_site.redis_url, name)  # the retried job fails again
    expect(page.locator('nav.tabs .count[data-state="failed"]')).to_have_text("1", timeout=15000)
    expect(retry_all).to_be_visible()
    assert page.dialogs == []


@pytest.mark.parametrize("size", ["wide", "phone"])
def test_escape_closes_menus_and_dialogs(
    page: Any, live_site: LiveSite, made: tuple[str, redis.Redis], size: str
) -> None:
    name, client = made
    open_queue(page, live_site, name, size)
    show_actions(page, size)
    for label in ("Clean", "Add job", "Obliterate"):
        summary = page.locator("#queue-actions details.menu summary", has_text=label)
        summary.click()
        expect(page.locator("#queue-actions details.menu[open]")).to_have_count(1)
        page.keyboard.press("Escape")
        expect(page.locator("#queue-actions details.menu[open]")).to_have_count(0)
        assert page.evaluate("() => document.activeElement.tagName") == "SUMMARY"
        assert label in page.evaluate("() => document.activeElement.textContent")

    # Obliterate asks again in the dialog, naming the queue and its jobs; Escape sends nothing.
    page.locator("#queue-actions details.menu summary", has_text="Obliterate").click()
    page.fill("#queue-actions details.menu[open] input[name=confirm]", name)
    page.locator("#queue-actions details.menu[open] button[type=submit]").click()
    page.wait_for_selector(f"{CONFIRM}[open]")
    text = page.locator(f"{CONFIRM} .confirm-text").inner_text()
    assert f"Deletes queue {name} and all 8 of its jobs" in text
    if size == "phone":
        assert sideways_overflow(page) <= 1, page.overflowing
    page.keyboard.press("Escape")
    expect(page.locator(CONFIRM)).to_be_hidden()
    assert client.exists(f"bull:{name}:meta")

    # A job id that reads like a count in the sentence is shown as it is.
    page.locator('tr.job-row[data-job-id="{failed}"] button', has_text="Remove").click()
    said = confirm_in_page(page, accept=False)
    assert f"Queue {name}: remove the waiting job {{failed}} with its logs." in said
    assert client.llen(f"bull:{name}:wait") == 2

    if size == "phone":  # Escape also folds the phone's Actions menu, back onto its button
        # From inside the menu, as an operator would be (the dismissed dialog leaves focus on the row).
        page.locator("#queue-actions details.menu summary", has_text="Obliterate").focus()
        page.keyboard.press("Escape")  # the Obliterate menu
        page.keyboard.press("Escape")
        expect(page.locator("#queue-actions-items")).to_be_hidden()
        expect(page.locator("#queue-actions [data-actions-toggle]")).to_be_focused(timeout=15000)


def test_phone_queue_page_starts_with_the_list(
    page: Any, live_site: LiveSite, made: tuple[str, redis.Redis]
) -> None:
    name, _client = made
    open_queue(page, live_site, name, "phone", state="failed")
    page.locator("tr.job-row").first.wait_for()
    assert sideways_overflow(page) <= 1, page.overflowing
    expect(page.locator("#queue-actions [data-actions-toggle]")).to_be_visible()
    expect(page.locator('#queue-actions [data-queue-action="drain"]')).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "safe-phone-queue.png"))
    tab = page.locator("nav.tabs a.tab.active").bounding_box()
    row = page.locator("tr.job-row").first.bounding_box()
    assert tab is not None and row is not None
    assert tab["y"] + tab["height"] <= SIZES["phone"]["height"]
    assert row["y"] + 60 <= SIZES["phone"]["height"], row  # the first job's id and name show unscrolled
    page.locator("#queue-actions [data-actions-toggle]").click()
    assert sideways_overflow(page) <= 1, page.overflowing
    page.screenshot(path=str(ARTIFACTS / "safe-phone-queue-menu.png"), full_page=True)
