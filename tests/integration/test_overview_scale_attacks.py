"""Attacks on issue 17's view-side changes: visible() asked once for the default permission, the census's
derived() cache shared between users and filters, discovery's bounded first pass."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis
from redis.exceptions import RedisError

import queues.discovery as discovery_module
from dashboard import links
from dashboard.live import fragments
from dashboard.live.hub import get_hub
from dashboard.registry import directory, reset_directories
from queues.models import QueueRef
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of
from tests.support.urls import dashboard_url, socket_path

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
PUSH = QueueRef("default", "bull", "push")
PERMISSION = "tests.integration.test_overview_scale_attacks.superusers_see_all"


def superusers_see_all(user: Any, action: str, queue: QueueRef | None) -> bool:
    """Superusers see every queue; others only bull:email (a per-queue callable)."""
    from dashboard.permissions import default_permission

    if queue is not None and queue.key != "bull:email" and not getattr(user, "is_superuser", False):
        return False
    return default_permission(user, action, queue)


def row_names(html: str) -> list[str]:
    return re.findall(r'<tr class="queue-row[^"]*" data-name="[^"]*" data-queue="bull:([^"]+)"', html)


def totals_of(html: str) -> str:
    found = re.search(r"<p class=\"muted group-totals\" data-group-totals>(.*?)</p>", html, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)) if found else ""


async def _three_queues(redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("x", {}, {})])
    await add_jobs(redis_url, "sms", [("x", {}, {})] * 5)
    await add_jobs(redis_url, "push", [("x", {}, {})] * 7)


@pytest.mark.parametrize("query", ["", "?sort=-failed", "?q=s", "?failing=1", "?q=default"])
async def test_two_users_with_different_visible_sets_never_share_order_or_totals(
    client: AsyncClient, admin_client: AsyncClient, redis_url: str, query: str
) -> None:
    await _three_queues(redis_url)
    settings = dashboard_settings(redis_url, PERMISSION=PERMISSION, LIVE={"ENABLED": False})
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        admin = (await admin_client.get(dashboard_url(query))).content.decode()
        staff = (await client.get(dashboard_url(query))).content.decode()
        admin_again = (await admin_client.get(dashboard_url(query))).content.decode()
    # As words: a random CSRF token of the page once held "sms".
    hidden = [name for name in ("sms", "push") if re.search(rf"\b{name}\b", staff)]
    assert not hidden and "13" not in totals_of(staff), (hidden, totals_of(staff))
    assert set(row_names(staff)) <= {"email"}
    assert totals_of(admin) == totals_of(admin_again)


@pytest.mark.parametrize(
    "query", ["?q=s&page=1&per_page=1", "?q=sms", "?page=2&per_page=1", "?q=bull&page=1&per_page=50"]
)
async def test_the_api_list_never_counts_or_lists_hidden_queues(
    client: AsyncClient, redis_url: str, query: str
) -> None:
    await _three_queues(redis_url)
    settings = dashboard_settings(redis_url, PERMISSION=PERMISSION, LIVE={"ENABLED": False})
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        answer = (await client.get(dashboard_url(f"api/queues/{query}"))).json()
    keys = [row["key"] for row in answer["queues"]]
    assert set(keys) <= {"bull:email"} and answer["total"] <= 1, answer


async def test_the_socket_rows_parameter_cannot_follow_a_hidden_queue(
    client: AsyncClient, redis_url: str
) -> None:
    await _three_queues(redis_url)
    settings = dashboard_settings(redis_url, PERMISSION=PERMISSION, LIVE=FAST)
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        reset_directories()
        rows = ",".join(fragments.queue_dom_id(q) for q in (EMAIL, SMS, PUSH))
        socket = LiveSocket(f"{socket_path()}?rows={rows}&attention=1", cookie_of(client))
        try:
            assert (await socket.connect())[0]
            followed = {q for view in get_hub()._views.values() for q in view.queues}
            await add_jobs(redis_url, "sms", [("x", {}, {})])
            got = await socket.drain(1.5)
        finally:
            await socket.close()
    assert followed <= {EMAIL}, followed
    assert not [text for text in got if "sms" in text or fragments.queue_dom_id(SMS) in text]


async def test_a_removed_queue_leaves_the_kept_order_and_totals(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await _three_queues(redis_url)
    settings = dashboard_settings(redis_url, LIVE={"ENABLED": False}, OVERVIEW_CENSUS_RATE=0)
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        first = (await admin_client.get(dashboard_url())).content.decode()
        assert set(row_names(first)) == {"email", "sms", "push"}
        for key in await redis_client.keys("bull:sms:*"):
            await redis_client.delete(key)
        await directory("default").refresh()  # the next discovery pass
        second = (await admin_client.get(dashboard_url())).content.decode()
    assert set(row_names(second)) == {"email", "push"}, row_names(second)
    assert "2 queues" in totals_of(second) and "8 waiting" in totals_of(second), totals_of(second)


# ------------------------------------------------------------------------ discovery's first pass


async def test_a_queue_page_opens_while_the_first_pass_is_still_running(
    client: AsyncClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _three_queues(redis_url)
    real = discovery_module.confirm

    async def slow(client: Redis, candidates: list[QueueRef]) -> list[QueueRef]:
        await asyncio.sleep(1.5)
        return await real(client, candidates)

    monkeypatch.setattr(discovery_module, "FIRST_SCAN_WAIT", 0.2)
    monkeypatch.setattr(discovery_module, "confirm", slow)
    settings = dashboard_settings(redis_url, LIVE={"ENABLED": False})
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        overview = await client.get(dashboard_url())
        page = await client.get(links.queue_url(SMS))
        api = await client.get(links.queue_api_url(SMS))
        await asyncio.sleep(1.6)
    assert overview.status_code == 200 and "Still looking" in overview.content.decode()
    assert page.status_code == 200, page.status_code
    assert api.status_code == 200, api.status_code


async def test_a_first_pass_that_fails_after_the_wait_leaves_no_unretrieved_exception(
    client: AsyncClient, redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await _three_queues(redis_url)

    async def failing(*_args: Any, **_kwargs: Any) -> list[QueueRef]:
        await asyncio.sleep(0.5)
        raise RedisError("scan broke")

    monkeypatch.setattr(discovery_module, "FIRST_SCAN_WAIT", 0.2)
    monkeypatch.setattr(discovery_module, "scan_queues", failing)
    settings = dashboard_settings(redis_url, LIVE={"ENABLED": False})
    with override_settings(BULLMQ_DASHBOARD=settings), caplog.at_level(logging.DEBUG):
        reset_directories()
        first = await client.get(dashboard_url())
        await asyncio.sleep(0.8)
        gc.collect()
        second = await client.get(dashboard_url())
        await asyncio.sleep(0.8)
        gc.collect()
    assert first.status_code == 200 and second.status_code == 200
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_only_one_request_waits_for_a_long_first_pass(
    client: AsyncClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first pass that takes long: the first request waits FIRST_SCAN_WAIT and is served what was
    found so far; later requests for the same pass, and queue pages (one HMGET confirms their queue),
    do not wait again."""
    await _three_queues(redis_url)
    real_confirm = discovery_module.confirm
    waited: list[bool] = []

    async def slow(client: Redis, candidates: list[QueueRef]) -> list[QueueRef]:
        await asyncio.sleep(2.0)
        return await real_confirm(client, candidates)

    class CountingAsyncio:
        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

        @staticmethod
        async def wait_for(awaitable: Any, timeout: float) -> Any:  # noqa: ASYNC109
            try:
                return await asyncio.wait_for(awaitable, timeout)
            except TimeoutError:
                waited.append(True)
                raise

    monkeypatch.setattr(discovery_module, "FIRST_SCAN_WAIT", 0.2)
    monkeypatch.setattr(discovery_module, "confirm", slow)
    monkeypatch.setattr(discovery_module, "asyncio", CountingAsyncio())
    settings = dashboard_settings(redis_url, LIVE={"ENABLED": False})
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        assert (await client.get(dashboard_url())).status_code == 200
        for _ in range(3):
            assert (await client.get(links.queue_url(SMS))).status_code == 200
        assert (await client.get(dashboard_url())).status_code == 200
        await asyncio.sleep(2.0)
    assert len(waited) <= 1, f"{len(waited)} requests each waited FIRST_SCAN_WAIT for the same pass"
