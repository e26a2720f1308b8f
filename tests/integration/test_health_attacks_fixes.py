"""Attacks on the health fixes (issue 15): keys of the queue that a job's id can also name."""

from __future__ import annotations

import json

from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from queues.models import QueueRef
from tests.support.builders import add_jobs

EMAIL = QueueRef("default", "bull", "email")


async def release(client: AsyncClient) -> object:
    url = links.queue_action_url(EMAIL, "remove_rate_limit_key")
    response = await client.post(url, data=json.dumps({}), content_type="application/json")
    await wait_all()
    return response


async def test_release_rate_limit_never_deletes_a_job_named_limiter(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """Node BullMQ accepts the custom job id `limiter`; its hash is `bull:email:limiter`, the name of
    the queue's rate limiter key, and "Release now" (a DEL of that key) deleted the job."""
    await add_jobs(redis_url, "email", [("send", {"keep": 1}, {"jobId": "limiter"})])
    assert await redis_client.type("bull:email:limiter") == b"hash"
    response = await release(admin_client)
    print(response.status_code, response.content)  # type: ignore[attr-defined]
    assert await redis_client.hget("bull:email:limiter", "name") == b"send", "the job's hash was deleted"
    assert response.status_code == 409  # type: ignore[attr-defined]
    assert "not BullMQ's rate limiter" in response.json()["message"]  # type: ignore[attr-defined]
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None and entry.action == "remove_rate_limit_key"


async def test_release_rate_limit_still_deletes_the_limiter(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.set("bull:email:limiter", "9007199254740991", px=60_000)
    response = await release(admin_client)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert not await redis_client.exists("bull:email:limiter")
