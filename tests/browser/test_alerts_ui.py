"""Alerts in Chromium: a backlog alert fires while the overview and the queue page are open (the banner
appears without a reload, pushed by the live socket's nudge) and goes away when a Node worker drains
the queue."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from queues.throwaway_redis import ThrowawayRedis
from tests.browser.conftest import ARTIFACTS, LiveSite, daphne, require_chromium, run_worker
from tests.browser.test_live import open_live
from tests.support.builders import add_jobs
from tests.support.site import prepare, site_env

pytestmark = pytest.mark.browser

QUEUE = "browser-alerts"
RULES = {"RULES": [{"QUEUES": [f"bull:{QUEUE}"], "BACKLOG": 3}], "INTERVAL": 1}


@pytest.fixture(scope="module")
def alert_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """The standalone site with an alert rule, on its own throwaway Redis."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("alerts-site")
    with ThrowawayRedis() as redis_server:
        thread = threading.Thread(
            target=asyncio.run, args=(add_jobs(redis_server.url, QUEUE, [("send", {}, {})]),)
        )
        thread.start()
        thread.join()
        env = site_env(
            tmp, redis_server.url, DASHBOARD_DISCOVERY_INTERVAL="0.5", DASHBOARD_ALERTS=json.dumps(RULES)
        )
        prepare(env, "alerts-oncall", "alerts-pw")
        with daphne(tmp, env, "config.asgi:application", "/accounts/login/") as url:
            yield LiveSite(url, "alerts-oncall", "alerts-pw", redis_server.url)


@pytest.fixture
def alert_page(browser: Any, alert_site: LiveSite) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(alert_site.url + "/accounts/login/?next=/queues/")
    page.fill("input[name=username]", alert_site.username)
    page.fill("input[name=password]", alert_site.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/queues/")
    yield page
    context.close()


def add(url: str, count: int) -> None:
    jobs: list[tuple[str, Any, dict[str, Any]]] = [("send", {"n": n}, {}) for n in range(count)]
    thread = threading.Thread(target=asyncio.run, args=(add_jobs(url, QUEUE, jobs),))
    thread.start()
    thread.join()


def test_a_backlog_alert_appears_live_and_resolves(
    alert_page: Any, alert_site: LiveSite, browser: Any
) -> None:
    from playwright.sync_api import expect

    page = alert_page
    open_live(page, f"{alert_site.url}/queues/")
    banner = page.locator("#bullmq-alerts .alert-banners")
    expect(page.locator("#bullmq-alerts")).to_have_count(1)
    expect(banner).to_have_count(0)
    queue_page = page.context.new_page()
    open_live(queue_page, f"{alert_site.url}/queues/default/bull:{QUEUE}/")

    add(alert_site.redis_url, 2)  # 3 waiting: at the threshold
    expect(banner).to_be_visible(timeout=15000)
    expect(banner.locator(f'li[data-alert="backlog"] a:text-is("bull:{QUEUE}")')).to_be_visible()
    expect(banner).to_contain_text("3 jobs waiting (threshold 3)")
    # Pushed by the socket's nudge; the banner is also fetched again every 20 s, should a nudge be missed.
    expect(queue_page.locator('#bullmq-alerts li[data-alert="backlog"]')).to_be_visible(timeout=30000)
    assert page.evaluate("window.__sameDocument") is True  # no reload
    page.screenshot(path=str(ARTIFACTS / "alerts-overview.png"), full_page=True)

    run_worker(alert_site.redis_url, QUEUE)
    expect(banner).to_have_count(0, timeout=15000)
    expect(queue_page.locator("#bullmq-alerts li")).to_have_count(0, timeout=30000)
    assert queue_page.evaluate("window.__sameDocument") is True
