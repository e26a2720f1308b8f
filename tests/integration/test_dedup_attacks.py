"""Attacks on releasing a deduplication id (issue 15): permissions, other queues' keys, hostile ids."""

from __future__ import annotations

import json
from typing import Any

from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.integration.test_security import grant
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


async def test_release_needs_its_permission(
    client: AsyncClient, staff_user: Any, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"deduplication": {"id": "d1"}})])
    await grant(staff_user, "release_rate_limit")
    response = await post(client, links.queue_action_url(EMAIL, "release_deduplication"), dedup_id="d1")
    assert response.status_code == 403
    assert await redis_client.exists("bull:email:de:d1")


async def test_release_on_a_queue_the_user_may_not_act_on(
    client: AsyncClient, staff_user: Any, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "sms", [("send", {}, {"deduplication": {"id": "d1"}})])
    await grant(staff_user, "release_deduplication")
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_security.only_email"
        )
    ):
        reset_directories()
        response = await post(client, links.queue_action_url(SMS, "release_deduplication"), dedup_id="d1")
        assert response.status_code in (403, 404)
        lookup = await client.get(links.dedup_lookup_url(SMS, "d1"))
        assert lookup.status_code == 404
    assert await redis_client.exists("bull:sms:de:d1")


async def test_release_never_deletes_a_nested_queues_string_key(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """Queue x of prefix `bull:email:de` lives under email's `de:` namespace: its `id` counter,
    `limiter` and `stalled-check` keys are strings; `de:x:<name>` must not release them."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "x", [("send", {}, {})], prefix="bull:email:de")
    await redis_client.set("bull:email:de:x:limiter", "3", px=600_000)
    await redis_client.set("bull:email:de:x:stalled-check", "1", px=600_000)
    for name in ("id", "limiter", "stalled-check"):
        key = f"bull:email:de:x:{name}"
        assert await redis_client.exists(key), key
        response = await post(
            admin_client, links.queue_action_url(EMAIL, "release_deduplication"), dedup_id=f"x:{name}"
        )
        assert await redis_client.exists(key), (key, response.status_code, response.content)


async def test_release_never_deletes_a_bare_nested_queues_limiter(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """Same, for a nested queue that has a rate-limited worker but whose meta BullMQ has not written
    yet (no job added): the marker nestedQueueOwns looks for is absent."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.set("bull:email:de:x:limiter", "9007199254740991", px=600_000)
    await redis_client.hset("bull:email:de:x:meta", "concurrency", "2")  # setGlobalConcurrency only
    response = await post(
        admin_client, links.queue_action_url(EMAIL, "release_deduplication"), dedup_id="x:limiter"
    )
    assert await redis_client.exists("bull:email:de:x:limiter"), (response.status_code, response.content)


async def test_lookup_of_a_nonutf8_and_huge_holder(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.set("bull:email:de:a", b"\xff\xfe<script>")
    await redis_client.set("bull:email:de:b", b"x" * (5 * 1024 * 1024))
    for dedup_id in ("a", "b"):
        page = await admin_client.get(links.dedup_lookup_url(EMAIL, dedup_id))
        assert page.status_code == 200
        assert b"<script>" not in page.content and len(page.content) < 200_000
        api = await admin_client.get(links.dedup_api_url(EMAIL, dedup_id))
        assert api.status_code == 200 and len(api.content) < 100_000
