"""The overview's failure recency against failures made by a real Node BullMQ 6 worker: the last failure
is Node's newest failed job's finishedOn, the failures of the last hour are Node's failed jobs that
finished in it (retried jobs once, jobs removed on failure not at all)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import links
from dashboard.live import fragments
from queues.counts import fetch_counts
from queues.models import QueueRef
from tests.support.node import run_node_async
from tests.support.urls import dashboard_url

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]
QUEUE = QueueRef("default", "bull", "recency")
HOUR = 3_600_000


async def fail_in_node(url: str) -> dict[str, Any]:
    return await run_node_async("failure_recency.mjs", url, QUEUE.name)


async def test_last_failure_is_nodes_newest_failed_job_finished_on(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    node = await fail_in_node(redis_url)
    assert node["counts"]["failed"] == 3 and node["counts"]["completed"] == 1  # gone-0 was removed
    newest = node["newest"]
    assert newest["id"] == "r-0"  # the last to fail, after its retry

    (row,) = await fetch_counts(redis_client, [QUEUE], now=node["now"])
    assert row.last_failed_at == newest["finishedOn"]
    in_hour = [job for job in node["failed"] if job["finishedOn"] >= node["now"] - HOUR]
    assert row.failed_last_hour == len(in_hour) == 3
    # An hour after the oldest failure it no longer counts; an hour after the newest, none do.
    oldest = min(job["finishedOn"] for job in node["failed"])
    (later,) = await fetch_counts(redis_client, [QUEUE], now=oldest + HOUR + 1)
    assert later.failed_last_hour == sum(job["finishedOn"] > oldest for job in node["failed"])
    (much_later,) = await fetch_counts(redis_client, [QUEUE], now=newest["finishedOn"] + HOUR + 1)
    assert much_later.failed_last_hour == 0 and much_later.last_failed_at == newest["finishedOn"]

    listed = json.loads((await client.get(dashboard_url("api/queues/"))).content)
    (queue,) = listed["queues"]
    assert queue["lastFailedAt"] == newest["finishedOn"] and queue["failedLastHour"] == 3

    overview = (await client.get(dashboard_url())).content.decode()
    hour_cell = re.search(
        rf'<td id="{fragments.failure_dom_id(QUEUE, "failed-hour")}".*?</td>', overview, re.S
    )
    assert hour_cell and ">3</a>" in hour_cell.group(0)
    page = (await client.get(links.queue_url(QUEUE))).content.decode()
    assert re.search(r'<a class="tab active"[^>]*\?state=failed', page)  # opens on the failures
