"""Attacks on several connections in one dashboard: hostile `?connection=` values on the overview, the queue
list API and the live socket, a connection whose URL holds a password while it is down, and a user whose
permission callable lets them view the queues of one connection only (before the fix the switcher, the
per-connection sections and the API's `connections` named every other connection, whether it was down, and
the host and port in its error; an alias that is configured answered differently from one that is not)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.registry import reset_directories
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis, free_port
from tests.support.builders import add_jobs
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.live import IN_MEMORY, LiveSocket, cookie_of
from tests.support.urls import dashboard_url, socket_path

pytestmark = pytest.mark.host_compatible

HOME = QueueRef("default", "bull", "email")
OTHER = QueueRef("other", "bull", "payroll")
TIMEOUTS = {"CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 1.0}
PASSWORD = "hunter2-secret"
HOSTILE = (
    "../",
    "x" * 100_000,
    "é\u202e<script>",
    "\x00",
    "default/../other",
    " default",
    "default ",
    "DEFAULT",
)


def only_default(user: Any, action: str, queue: QueueRef | None) -> bool:
    """A per-queue permission: this user views and acts on the queues of connection `default` only."""
    from dashboard.permissions import default_permission

    if queue is not None and queue.connection != "default":
        return False
    return default_permission(user, action, queue)


@pytest.fixture
def servers() -> Iterator[tuple[ThrowawayRedis, ThrowawayRedis]]:
    with ThrowawayRedis() as home, ThrowawayRedis() as other:
        yield home, other


def three_connections(home: str, other: str, locked: int | None = None, **extra: Any) -> Any:
    """`default` and `other` up, `down` a port nothing listens on, with a password in its URL (and
    `locked`, a Redis on port `locked` refusing that password, when given)."""
    connections = {
        "default": {"URL": home},
        "other": {"URL": other},
        "down": {"URL": f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"},
    }
    if locked is not None:
        connections["locked"] = {"URL": f"redis://:{PASSWORD}@127.0.0.1:{locked}/0"}
    settings = dashboard_settings(home, CONNECTIONS=connections, **TIMEOUTS, **extra)
    return override_settings(BULLMQ_DASHBOARD=settings, CHANNEL_LAYERS=IN_MEMORY)


async def fill(home: str, other: str) -> None:
    await add_jobs(home, "email", [("send", {}, {"jobId": "h1"})])
    await add_jobs(other, "payroll", [("pay", {"amount": 1}, {"jobId": "p1"})])


async def test_hostile_connection_values_are_refused_everywhere(
    servers: tuple[ThrowawayRedis, ThrowawayRedis], admin_client: AsyncClient
) -> None:
    home, other = servers
    await fill(home.url, other.url)
    with three_connections(home.url, other.url):
        reset_directories()
        try:
            for value in HOSTILE:
                page = await admin_client.get(dashboard_url(), {"connection": value})
                assert page.status_code == 400, repr(value[:40])
                assert len(page.content) < 50_000  # the value is not echoed whole
                assert "<script>" not in page.content.decode()
                listed = await admin_client.get(dashboard_url("api/queues/"), {"connection": value})
                assert listed.status_code == 400, repr(value[:40])
                assert "Unknown connection" in listed.json()["error"]
            # A live socket given such a value opens and follows nothing (its page answered 400).
            for value in ("../", "é\u202e", "x" * 2000):
                socket = LiveSocket(f"{socket_path()}?connection={value}", cookie_of(admin_client))
                connected, _ = await socket.connect()
                assert connected
                await socket.close()
        finally:
            await close_dashboard()
        reset_directories()


async def test_down_connections_show_no_password_and_a_refused_login_says_so(
    servers: tuple[ThrowawayRedis, ThrowawayRedis], admin_client: AsyncClient
) -> None:
    home, other = servers
    await fill(home.url, other.url)
    with ThrowawayRedis() as locked, three_connections(home.url, other.url, locked=locked.port):
        raw = Redis.from_url(locked.url)
        await raw.config_set("requirepass", "the-right-one")
        await raw.aclose()
        reset_directories()
        try:
            overview = (await admin_client.get(dashboard_url())).content.decode()
            assert 'class="tab tab-down" data-connection-tab="down"' in overview
            # A refused login is told as such, not as an unreachable Redis.
            tab = re.search(r'<a [^>]*data-connection-tab="locked"[^>]*>', overview)
            assert tab is not None and "Redis refused the dashboard&#x27;s login" in tab[0], tab
            only_down = (await admin_client.get(dashboard_url(), {"connection": "down"})).content.decode()
            listed = await admin_client.get(dashboard_url("api/queues/"))
            problems = {item["connection"]: item["problem"] for item in listed.json()["connections"]}
            assert problems["locked"].startswith("Redis refused the dashboard's login")
            assert problems["down"].startswith("Redis is unreachable")
            for text in (overview, only_down, listed.content.decode()):
                assert PASSWORD not in text
        finally:
            await close_dashboard()
        reset_directories()


async def test_a_user_kept_to_one_connection_learns_nothing_of_the_others(
    servers: tuple[ThrowawayRedis, ThrowawayRedis], client: AsyncClient
) -> None:
    home, other = servers
    await fill(home.url, other.url)
    permission = "tests.integration.test_connections_attacks.only_default"
    with three_connections(home.url, other.url, PERMISSION=permission):
        reset_directories()
        try:
            page = await client.get(dashboard_url())
            assert page.status_code == 200
            overview = page.content.decode()
            assert links.queue_url(HOME) in overview
            tabs = re.findall(r'data-connection-tab="([^"]*)"', overview)
            assert tabs == ["", "default"]
            assert re.findall(r'data-connection="([^"]*)"', overview) == ["default"]
            for secret in ("payroll", 'data-connection-tab="other"', "Connection down", "Connection other"):
                assert secret not in overview
            # The down connection's address is nowhere; that something could not be listed is said.
            assert "Error 111" not in overview and "connecting to" not in overview
            assert "data-connection-unnamed" in overview
            assert "No BullMQ queues found" not in overview

            listed = (await client.get(dashboard_url("api/queues/"))).json()
            assert [row["key"] for row in listed["queues"]] == ["bull:email"]
            assert listed["connections"] == [{"connection": "default", "problem": None}]

            # An alias that is configured but not this user's answers as one that is not configured, and
            # the answer names no alias.
            for value in ("other", "down", "nowhere"):
                refused = await client.get(dashboard_url(), {"connection": value})
                assert refused.status_code == 400, value
                said = (await client.get(dashboard_url("api/queues/"), {"connection": value})).json()
                assert said["error"] == f"Unknown connection '{value}'.", said
            assert (await client.get(dashboard_url(), {"connection": "default"})).status_code == 200
            assert (await client.get(links.queue_url(OTHER))).status_code == 404
        finally:
            await close_dashboard()
        reset_directories()
