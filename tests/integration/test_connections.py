"""Several connections in one dashboard (issue 18, point 1): two real Redis servers holding a queue of the
same prefix and name, told apart by connection in every URL, API answer, action, audit entry, metric and
live group; the overview's switcher and per-connection sections; one server down fails only its own
section, its own queues' pages and its own metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from django.urls import reverse
from redis.asyncio import Redis

from dashboard import links
from dashboard.live import groups
from dashboard.models import AuditEntry
from dashboard.registry import reset_directories
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis
from tests.support.builders import add_jobs
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.urls import dashboard_url

pytestmark = pytest.mark.host_compatible

HOME = QueueRef("default", "bull", "email")
EU = QueueRef("eu", "bull", "email")
TOKEN = "connections-token"
TIMEOUTS = {"CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 1.0}


@pytest.fixture
def servers() -> Iterator[tuple[ThrowawayRedis, ThrowawayRedis]]:
    with ThrowawayRedis() as home, ThrowawayRedis() as eu:
        yield home, eu


def two_connections(home: str, eu: str) -> Any:
    connections = {"default": {"URL": home}, "eu": {"URL": eu}}
    settings = dashboard_settings(home, CONNECTIONS=connections, METRICS_TOKEN=TOKEN, **TIMEOUTS)
    return override_settings(BULLMQ_DASHBOARD=settings)


async def fill(home: str, eu: str) -> None:
    # The same prefix and name on both: only the connection tells them apart.
    await add_jobs(home, "email", [("send", {"to": "home"}, {"jobId": "h1"})])
    await add_jobs(eu, "email", [("send", {"to": "eu"}, {"jobId": "e1"}), ("send", {}, {"jobId": "e2"})])


def section(html: str, alias: str) -> str:
    start = html.index(f'<section class="connection-section" data-connection="{alias}"')
    end = html.find('<section class="connection-section"', start + 1)
    return html[start : end if end > 0 else len(html)]


async def metrics(client: AsyncClient) -> str:
    response = await client.get(
        reverse("bullmq_dashboard:metrics"), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200
    return response.content.decode()


async def test_two_connections_are_told_apart_everywhere(
    servers: tuple[ThrowawayRedis, ThrowawayRedis], admin_client: AsyncClient
) -> None:
    home, eu = servers
    await fill(home.url, eu.url)
    with two_connections(home.url, eu.url):
        reset_directories()
        try:
            overview = (await admin_client.get(dashboard_url())).content.decode()
            # The switcher: every connection with its queue count, and a section each.
            assert 'data-connection-tab="default">default <span class="count">1</span>' in overview
            assert 'data-connection-tab="eu">eu <span class="count">1</span>' in overview
            assert links.queue_url(HOME) in section(overview, "default")
            assert links.queue_url(EU) in section(overview, "eu")
            assert links.queue_url(EU) not in section(overview, "default")

            only_eu = (await admin_client.get(dashboard_url(), {"connection": "eu"})).content.decode()
            assert links.queue_url(EU) in only_eu and links.queue_url(HOME) not in only_eu
            assert 'aria-current="page" data-connection-tab="eu"' in only_eu
            assert "connection=eu" in only_eu  # the live socket follows the same selection
            unknown = await admin_client.get(dashboard_url(), {"connection": "nowhere"})
            assert unknown.status_code == 400

            listed = (await admin_client.get(dashboard_url("api/queues/"))).json()
            rows = {(row["connection"], row["key"]): row for row in listed["queues"]}
            assert rows[("default", "bull:email")]["counts"]["waiting"] == 1
            assert rows[("eu", "bull:email")]["counts"]["waiting"] == 2
            assert rows[("default", "bull:email")]["api_url"] != rows[("eu", "bull:email")]["api_url"]
            assert listed["connections"] == [
                {"connection": "default", "problem": None},
                {"connection": "eu", "problem": None},
            ]
            eu_only = (await admin_client.get(dashboard_url("api/queues/"), {"connection": "eu"})).json()
            assert [(row["connection"], row["key"]) for row in eu_only["queues"]] == [("eu", "bull:email")]

            # The job pages read each connection's own job of the same id space.
            home_job = (await admin_client.get(links.job_api_url(HOME, "h1"))).json()
            assert home_job["data"] == {"to": "home"}
            assert (await admin_client.get(links.job_api_url(EU, "h1"))).status_code == 404

            # An action on one connection changes only that Redis, and its audit entry names it.
            paused = await admin_client.post(
                links.queue_action_url(EU, "pause"), data=json.dumps({}), content_type="application/json"
            )
            assert paused.status_code == 200, paused.content
            async with Redis.from_url(eu.url) as eu_raw, Redis.from_url(home.url) as home_raw:
                assert await eu_raw.hget("bull:email:meta", "paused") == b"1"
                assert await home_raw.hget("bull:email:meta", "paused") is None
            entry = await AuditEntry.objects.order_by("-id").afirst()
            assert entry is not None
            assert (entry.connection, entry.queue, entry.action, entry.result) == (
                "eu",
                "bull:email",
                "pause",
                "done",
            )

            # Metrics and live groups carry the connection too.
            exported = await metrics(admin_client)
            assert 'queue="email", prefix="bull", connection="default"' in exported
            assert 'queue="email", prefix="bull", connection="eu"' in exported
            assert groups.queue_group(HOME) != groups.queue_group(EU)
        finally:
            await close_dashboard()
        reset_directories()


async def test_one_server_down_fails_only_its_own_section(
    servers: tuple[ThrowawayRedis, ThrowawayRedis], admin_client: AsyncClient
) -> None:
    home, eu = servers
    await fill(home.url, eu.url)
    eu.stop()
    with two_connections(home.url, eu.url):
        reset_directories()  # discovery starts with the server already down
        try:
            response = await admin_client.get(dashboard_url())
            assert response.status_code == 200
            overview = response.content.decode()
            assert links.queue_url(HOME) in section(overview, "default")
            down = section(overview, "eu")
            assert "data-connection-problem" in down and "Redis is unreachable" in down
            assert 'class="tab tab-down" data-connection-tab="eu"' in overview
            assert "No BullMQ queues found" not in overview

            # Only the down connection selected: its error, not "no queues".
            alone = (await admin_client.get(dashboard_url(), {"connection": "eu"})).content.decode()
            assert "Redis is unreachable" in alone and "No BullMQ queues found" not in alone

            listed = (await admin_client.get(dashboard_url("api/queues/"))).json()
            assert [(row["connection"], row["key"]) for row in listed["queues"]] == [
                ("default", "bull:email")
            ]
            problems = {item["connection"]: item["problem"] for item in listed["connections"]}
            assert problems["default"] is None and problems["eu"].startswith("Redis is unreachable")

            assert (await admin_client.get(links.queue_url(HOME))).status_code == 200
            assert (await admin_client.get(links.queue_url(EU))).status_code == 503
            refused = await admin_client.post(
                links.queue_action_url(EU, "pause"), data=json.dumps({}), content_type="application/json"
            )
            assert refused.status_code == 503

            exported = await metrics(admin_client)
            assert 'bullmq_dashboard_connection_up{connection="default"} 1' in exported
            assert 'bullmq_dashboard_connection_up{connection="eu"} 0' in exported
        finally:
            await close_dashboard()
        reset_directories()


async def test_every_server_down_is_the_usual_error_page(
    servers: tuple[ThrowawayRedis, ThrowawayRedis], admin_client: AsyncClient
) -> None:
    home, eu = servers
    home.stop()
    eu.stop()
    with two_connections(home.url, eu.url):
        reset_directories()
        try:
            assert (await admin_client.get(dashboard_url())).status_code == 503
            assert (await admin_client.get(dashboard_url("api/queues/"))).status_code == 503
        finally:
            await close_dashboard()
        reset_directories()
