"""Several connections in Chromium: the overview's switcher and a section per connection, one of them a
Redis that is down (its section shows why; the other's queues are listed and open as usual)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from queues.throwaway_redis import ThrowawayRedis, free_port
from tests.browser.conftest import LiveSite, daphne, require_chromium
from tests.support.node import run_node
from tests.support.site import prepare, site_env

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def two_connection_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """The standalone site on two connections: `home`, a Node-built Redis, and `eu`, a port where no
    Redis listens."""
    require_chromium()
    tmp: Path = tmp_path_factory.mktemp("connections")
    with ThrowawayRedis() as redis_server:
        run_node("build_state.mjs", redis_server.url)
        connections = {"home": redis_server.url, "eu": {"URL": f"redis://127.0.0.1:{free_port()}/0"}}
        env = site_env(tmp, redis_server.url, DASHBOARD_CONNECTIONS=json.dumps(connections))
        prepare(env, "oncall", "browser-pw")
        with daphne(tmp, env, "config.asgi:application", "/accounts/login/") as url:
            yield LiveSite(url, "oncall", "browser-pw", redis_server.url)


def login(page, site: LiveSite) -> None:
    page.goto(f"{site.url}/accounts/login/?next=/queues/")
    page.fill("input[name=username]", site.username)
    page.fill("input[name=password]", site.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/queues/")


def test_switcher_and_a_section_per_connection_with_one_down(browser, two_connection_site: LiveSite) -> None:
    page = browser.new_page()
    try:
        login(page, two_connection_site)
        tabs = page.locator("nav.connection-switcher a")
        assert tabs.count() == 3
        assert page.locator('[data-connection-tab="eu"] .badge').inner_text() == "down"
        home = page.locator('section.connection-section[data-connection="home"]')
        assert home.locator("tr.queue-row").count() >= 5
        down = page.locator('section.connection-section[data-connection="eu"] [data-connection-problem]')
        assert "Redis is unreachable" in down.inner_text()
        # Only one connection: its tab is current, the other section is gone, the URL says so.
        page.click('[data-connection-tab="home"]')
        page.wait_for_url("**/queues/?connection=home")
        assert page.locator('[data-connection-tab="home"]').get_attribute("aria-current") == "page"
        assert page.locator('section.connection-section[data-connection="eu"]').count() == 0
        # A queue of the connection that answers opens as usual.
        page.locator("section.connection-section tr.queue-row a").first.click()
        page.wait_for_url("**/queues/home/**")
        assert page.locator("h1").count() == 1
    finally:
        page.close()
