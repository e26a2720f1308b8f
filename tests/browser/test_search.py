"""An operator searches failed jobs by their failed reason, sees the step bound and goes on, selects two
results and retries them; a running search can be cancelled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from queues.throwaway_redis import ThrowawayRedis
from tests.browser.conftest import ARTIFACTS, LiveSite, confirm_in_page, daphne, require_chromium, run_worker
from tests.support.site import prepare, site_env

pytestmark = pytest.mark.browser

QUEUE = "browser-search"


@pytest.fixture(scope="module")
def search_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """The standalone site with a search bound of 3 jobs a step, over a queue a real Node worker ran:
    s-0 … s-7, of which s-0, s-2, s-4 and s-6 failed ("refused by the Node worker: s-N")."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("search-site")
    with ThrowawayRedis() as redis_server:
        summary = run_worker(redis_server.url, QUEUE, "--produce", "8", "--fail-every", "2")
        assert sorted(summary["failed"]) == ["s-0", "s-2", "s-4", "s-6"]
        env = site_env(tmp, redis_server.url, DASHBOARD_SEARCH_MAX_SCAN="3", DASHBOARD_LIVE="0")
        prepare(env, "searcher", "search-pw")
        with daphne(tmp, env, "config.asgi:application", "/accounts/login/") as url:
            yield LiveSite(url, "searcher", "search-pw", redis_server.url)


@pytest.fixture
def search_page(browser: Any, search_site: LiveSite) -> Iterator[Any]:
    """A logged-in page on the search site; browser dialogs recorded (the dashboard asks in its own)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.confirmations = []
    page.dialogs = []

    def on_dialog(dialog: Any) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(search_site.url + "/accounts/login/?next=/queues/")
    page.fill("input[name=username]", search_site.username)
    page.fill("input[name=password]", search_site.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/queues/")
    yield page
    context.close()


def shown_ids(page: Any) -> list[str]:
    return [row.get_attribute("data-job-id") for row in page.locator("#search-rows tr.job-row").all()]


def test_search_continue_and_retry_two(search_page: Any, search_site: LiveSite) -> None:
    page = search_page
    page.goto(f"{search_site.url}/queues/default/bull:{QUEUE}/")
    page.locator("nav.subnav a", has_text="Search").click()
    page.wait_for_selector("#search-form")
    page.fill("#search-form input[name=q]", "REFUSED by the node")
    page.select_option("#search-form select[name=state]", "failed")
    page.locator("#search-form button[type=submit]").click()
    page.wait_for_selector("[data-search-summary]")
    # Newest first, and the step stopped at its bound of 3 jobs.
    assert shown_ids(page) == ["s-6", "s-4", "s-2"]
    assert "Stopped at the bound of 3 jobs" in page.locator("[data-search-stopped]").inner_text()
    assert page.locator("#search-status progress").get_attribute("value") == "3"
    assert "q=REFUSED" in page.url and "state=failed" in page.url
    page.screenshot(path=str(ARTIFACTS / "search-first-step.png"), full_page=True)

    page.locator('tr.job-row[data-job-id="s-6"] input[name=ids]').check()
    page.locator('tr.job-row[data-job-id="s-4"] input[name=ids]').check()
    assert page.locator("#bulk-form [data-selected-count]").inner_text() == "2 selected"
    page.locator("#bulk-form button", has_text="Retry").click()
    confirm_in_page(page)
    page.wait_for_selector(".toast-ok", state="visible")
    assert "2 retried" in page.locator(".toast-ok").first.inner_text()
    assert "retry 2 selected failed jobs" in page.confirmations[-1] and page.dialogs == []
    client = redis.Redis.from_url(search_site.redis_url)
    try:
        assert client.zscore(f"bull:{QUEUE}:failed", "s-6") is None
        assert client.zscore(f"bull:{QUEUE}:failed", "s-4") is None
        assert client.zscore(f"bull:{QUEUE}:failed", "s-2") is not None
        assert {b"s-6", b"s-4"} <= set(client.lrange(f"bull:{QUEUE}:wait", 0, -1))
    finally:
        client.close()

    page.locator("[data-search-continue]").click()
    page.wait_for_selector("[data-search-done]")
    assert shown_ids(page) == ["s-0"]
    assert "cursor=" in page.url
    assert "4 in all" in page.locator("[data-search-summary]").inner_text()


def test_a_running_search_can_be_cancelled(search_page: Any, search_site: LiveSite) -> None:
    page = search_page
    page.goto(f"{search_site.url}/queues/default/bull:{QUEUE}/search/?q=refused&state=failed")
    assert shown_ids(page)  # a direct load renders the first step
    held: list[Any] = []
    page.route("**/search/?*", lambda route: held.append(route))  # the next search never answers
    page.fill("#search-form input[name=q]", "s-")
    page.locator("#search-form button[type=submit]").click()
    page.wait_for_selector("#search-progress [data-search-cancel]", state="visible")
    page.locator("[data-search-cancel]").click()
    page.wait_for_selector("[data-search-cancelled]", state="visible")
    page.wait_for_selector("#search-progress [data-search-cancel]", state="hidden")
    assert held  # the request was sent, then aborted by the page
    assert shown_ids(page)  # the earlier results stay
    page.unroute("**/search/?*")
