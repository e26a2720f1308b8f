"""Throughput against real Node BullMQ 6 workers (tests/interop/metrics_worker.mjs): the series of a queue
whose workers record metrics (`metrics: {maxDataPoints}`) is Node's own `queue.getMetrics('completed')` /
`getMetrics('failed')` data, minute by minute, in the page's JSON too; and the dashboard's samples of a
queue whose workers do not record them count every job, although removeOnComplete {count} keeps the
completed set's size constant."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import links
from queues.models import QueueRef
from queues.sampling import MINUTE_MS, SETTLE_MS, record_samples
from queues.throughput import BULLMQ, SAMPLED, WINDOWS, Throughput, fetch_throughput
from tests.support.node import run_node_async

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

PREFIX = "bullmq-dashboard"
BATCHES = [
    {"minutesAgo": 14, "complete": 3, "fail": 1},
    {"minutesAgo": 11, "complete": 0, "fail": 2},
    {"minutesAgo": 6, "complete": 4, "fail": 0},
    {"minutesAgo": 3, "complete": 5, "fail": 1},
    {"minutesAgo": 0, "complete": 2, "fail": 0},
]


async def node_run(url: str, queue: str, *options: str, batches: list[dict[str, int]]) -> dict[str, Any]:
    return await run_node_async("metrics_worker.mjs", url, queue, "--batches", json.dumps(batches), *options)


def by_minute(found: Throughput, kind: str) -> dict[int, int | None]:
    return {bucket.start_ms: getattr(bucket, kind) for bucket in found.buckets}


def node_minutes(metrics: dict[str, Any]) -> dict[int, int]:
    """Node's getMetrics placed by minute: data[i] is the minute before prevTS's, minus i; prevTS's
    minute holds count - prevCount so far."""
    prev_ts = metrics["meta"]["prevTS"]
    counting = prev_ts - prev_ts % MINUTE_MS
    placed = {counting - (index + 1) * MINUTE_MS: point for index, point in enumerate(metrics["data"])}
    placed[counting] = metrics["meta"]["count"] - metrics["meta"]["prevCount"]
    return placed


async def test_recorded_metrics_are_nodes_own_minute_by_minute(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    node = await node_run(redis_url, "metered", "--metrics", "10080", batches=BATCHES)
    now = int(time.time() * 1000)
    queue = QueueRef("default", "bull", "metered")
    (found,) = await fetch_throughput(redis_client, [queue], WINDOWS["hour"], now, PREFIX)
    assert found.source == BULLMQ and not found.stale and found.problems == ()
    for kind, recorded in (("completed", found.completed_metrics), ("failed", found.failed_metrics)):
        theirs = node[kind]
        assert recorded is not None
        assert (recorded.count, recorded.prev_ts, recorded.prev_count) == (
            theirs["meta"]["count"],
            theirs["meta"]["prevTS"],
            theirs["meta"]["prevCount"],
        )
        # The points read are Node's data from the first one the window needs.
        assert list(recorded.points) == theirs["data"][recorded.first_index :][: len(recorded.points)]
        assert recorded.length == theirs["count"]
        ours = by_minute(found, kind)
        placed = node_minutes(theirs)
        compared = [minute for minute in placed if minute in ours]
        assert len(compared) >= len(theirs["data"])
        for minute in compared:
            assert ours[minute] == placed[minute], (kind, minute)
        # Every job Node counted, in whole minutes of the window or in the minute still counting.
        in_window = sum(value or 0 for value in ours.values())
        pending = placed[max(placed)] if max(placed) > found.last_minute else 0
        assert in_window + pending == theirs["meta"]["count"] == node["finished"][kind]

    # The page's JSON over the week: the same data, points and totals.
    answer = (await client.get(links.queue_metrics_api_url(queue), {"window": "week"})).json()
    assert answer["source"] == "bullmq" and answer["bucketMinutes"] == 60
    for kind in ("completed", "failed"):
        theirs = node[kind]
        assert answer["bullmq"][kind]["data"] == theirs["data"]
        assert answer["bullmq"][kind]["count"] == theirs["meta"]["count"]
    page = (await client.get(links.queue_metrics_url(queue))).content.decode()
    assert "Source: BullMQ metrics" in page and "data-throughput-chart" in page


async def redis_ms(client: Redis) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_samples_count_every_job_whatever_is_kept_of_them(redis_url: str, redis_client: Redis) -> None:
    batches = [{"minutesAgo": 0, "complete": 30, "fail": 4}]
    started = await redis_ms(redis_client)
    node = await node_run(redis_url, "unmetered", "--keep", "2", batches=batches)
    assert node["counts"]["completed"] == 2  # removeOnComplete {count: 2}: the set stays this size
    assert node["completed"]["meta"]["count"] == 0  # the worker records no metrics
    # The sampler records whole minutes that have ended by Redis's clock: wait for the last one.
    finished = await redis_ms(redis_client)
    minute_end = finished - finished % MINUTE_MS + MINUTE_MS
    await asyncio.sleep((minute_end + SETTLE_MS + 500 - finished) / 1000)
    now = int(time.time() * 1000)
    queue = QueueRef("default", "bull", "unmetered")
    await record_samples(redis_client, [queue], now, PREFIX)
    (found,) = await fetch_throughput(redis_client, [queue], WINDOWS["hour"], now, PREFIX)
    assert found.source == SAMPLED and not found.lower_bound
    assert found.sampled_since is not None and found.sampled_since <= started
    assert found.completed_total == node["finished"]["completed"] == 30
    assert found.failed_total == node["finished"]["failed"] == 4
