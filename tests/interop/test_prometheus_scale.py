"""A Prometheus scrape of 5,000 queues written by Node BullMQ 6: one pipelined read, a fixed number of
Redis commands (one script call a queue and one CLIENT LIST), every queue's numbers in it.

Wall-clock time is printed, not asserted (docs/prometheus.md states a run's figures)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import AsyncClient
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from tests.support.node import run_node_async

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

QUEUES = 5000


def calls(stats: dict[str, Any]) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def test_a_scrape_of_5000_queues_is_one_read_of_fixed_size(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    built = await run_node_async("many_queues.mjs", redis_url, str(QUEUES))
    assert built["queues"] == QUEUES
    url = reverse("bullmq_dashboard:metrics")
    assert (await client.get(url)).status_code == 200  # discovers the queues and loads the script
    before = calls(await redis_client.info("commandstats"))
    redis_before = (await redis_client.info("cpu"))["used_cpu_sys"] + (await redis_client.info("cpu"))[
        "used_cpu_user"
    ]
    started = time.perf_counter()
    response = await client.get(url)
    seconds = time.perf_counter() - started
    cpu = await redis_client.info("cpu")
    after = calls(await redis_client.info("commandstats"))
    spent = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    # The INFO calls of this test are the only others sent; commandstats also counts what the scripts
    # call inside Redis: a bounded number of O(1)/O(log n) reads a queue.
    spent.pop("info", None)
    sent = {name: spent.pop(name, 0) for name in ("evalsha", "client|list")}
    assert sent == {"evalsha": QUEUES, "client|list": 1}, sent
    # Bounded reads only (the events tally's XRANGE is capped in entries and bytes): no scan of a key space
    # and no whole-collection read.
    assert not {"eval", "scan", "keys", "hgetall", "smembers", "lrange"} & set(spent), spent
    assert sum(spent.values()) <= 40 * QUEUES, spent
    text = response.content.decode()
    assert text.startswith(f"# bullmq_dashboard: {QUEUES} of {QUEUES} queues\n")
    waiting: dict[str, float] = {}
    oldest: dict[str, float] = {}
    workers: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            queue = sample.labels.get("queue")
            if queue is None:  # bullmq_dashboard_connection_up
                continue
            if sample.name == "bullmq_job_count" and sample.labels["state"] == "waiting":
                waiting[queue] = sample.value
            elif sample.name == "bullmq_dashboard_oldest_waiting_seconds":
                oldest[queue] = sample.value
            elif sample.name == "bullmq_dashboard_workers":
                workers[queue] = sample.value
    assert len(waiting) == QUEUES and set(waiting.values()) == {1}
    assert len(oldest) == QUEUES and all(0 <= age < 600 for age in oldest.values())
    assert len(workers) == QUEUES and set(workers.values()) == {0}
    redis_cpu = cpu["used_cpu_sys"] + cpu["used_cpu_user"] - redis_before
    print(
        f"\nscrape of {QUEUES} queues: {seconds * 1000:.0f} ms, {len(text) / 1024:.0f} KB, "
        f"{sum(sent.values())} commands sent ({sum(spent.values())} run inside the scripts), "
        f"Redis CPU {redis_cpu * 1000:.0f} ms"
    )
