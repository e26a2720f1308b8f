"""Attacks (a)/(e) on `<mount>/metrics` and the signals read it shares with the alert monitor."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from django.urls import reverse
from redis.asyncio import Redis

from dashboard.registry import reset_directories
from queues.models import QueueRef
from queues.signals import fetch_signals
from queues.throwaway_redis import ThrowawayRedis
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings

MB = 1024 * 1024


async def evalsha_usec(client: Redis) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("usec", 0))


@pytest.mark.parametrize("where", ["wait", "prioritized"])
async def test_a_huge_element_next_in_line_does_not_block_redis(
    where: str, redis_url: str, redis_client: Redis
) -> None:
    """The job next in line is copied into the script (LINDEX wait -1 / ZRANGE prioritized 0 0) before
    its length is checked against MAX_WAITING_ID: a 64 MB id blocks Redis ~0.3 s on every scrape and
    every monitor tick (256 MB: ~1.3 s, and ~1 GB of peak memory)."""
    queue = QueueRef("default", "bull", "jobs")
    await add_jobs(redis_url, "jobs", [("run", {}, {})])
    await fetch_signals(redis_client, [queue])  # loads the script
    if where == "wait":
        await redis_client.rpush("bull:jobs:wait", "x" * (64 * MB))  # the tail: next in line
    else:
        await redis_client.zadd("bull:jobs:prioritized", {"x" * (64 * MB): 0})
    before = await evalsha_usec(redis_client)
    await fetch_signals(redis_client, [queue])
    spent_ms = (await evalsha_usec(redis_client) - before) / 1000
    assert spent_ms < 20, f"one signals read kept Redis busy for {spent_ms:.0f} ms"


async def test_one_down_connection_does_not_fail_the_whole_scrape(
    client: AsyncClient, redis_url: str
) -> None:
    """Failures stay local: with two connections, the second going down makes /metrics answer 503 for
    every queue of the first too (Prometheus loses all series, and every `absent()` rule fires)."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    other = ThrowawayRedis().start()
    try:
        await add_jobs(other.url, "sms", [("send", {}, {})])
        connections = {"default": {"URL": redis_url}, "other": {"URL": other.url}}
        with override_settings(
            BULLMQ_DASHBOARD=dashboard_settings(redis_url, CONNECTIONS=connections, CONNECT_TIMEOUT=0.5)
        ):
            reset_directories()
            first = await client.get(reverse("bullmq_dashboard:metrics"))
            assert first.status_code == 200 and b'queue="sms"' in first.content
            other.stop()
            response = await client.get(reverse("bullmq_dashboard:metrics"))
    finally:
        other.stop()
    assert response.status_code == 200, response.content
    assert b'bullmq_job_count{queue="email"' in response.content
