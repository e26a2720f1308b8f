"""`<mount>/metrics` against Node BullMQ's own `Queue.exportPrometheusMetrics()` for the same Redis: every
sample Node writes is in ours with the same name, labels (ours add `prefix` and `connection`) and value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from tests.interop.conftest import NodeState
from tests.support.dashboard import close_dashboard
from tests.support.node import run_node_async

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
OURS_ONLY = ("prefix", "connection")


def parse(text: str, drop: tuple[str, ...] = ()) -> dict[str, Samples]:
    """Samples per prefix (ours: from the `prefix` label), keyed by name and labels without `drop`."""
    found: dict[str, Samples] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            prefix = sample.labels.get("prefix", "")
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k not in drop))
            found.setdefault(prefix, {})[(sample.name, labels)] = sample.value
    return found


async def node_exposition(url: str, queues: list[dict[str, str]]) -> dict[str, Any]:
    return await run_node_async("prometheus.mjs", url, stdin=json.dumps(queues))


async def compare(client: AsyncClient, url: str) -> tuple[int, Samples]:
    """Check every exported queue against Node's own export; the number of Node samples compared."""
    response = await client.get(reverse("bullmq_dashboard:metrics"))
    assert response.status_code == 200
    ours_text = response.content.decode()
    ours = parse(ours_text, drop=OURS_ONLY)
    queues = sorted(
        {
            (prefix, name)
            for prefix, samples in ours.items()
            for (metric, labels) in samples
            if metric == "bullmq_dashboard_queue_problem"
            for key, name in labels
            if key == "queue"
        }
    )
    assert queues
    compared = 0
    for prefix, name in queues:
        node = await node_exposition(url, [{"name": name, "prefix": prefix}])
        problem = ours[prefix][("bullmq_dashboard_queue_problem", (("queue", name),))]
        if node["failed"]:
            assert problem == 1, (prefix, name, node["failed"])
            continue
        theirs = parse(node["text"]).get("", {})
        assert theirs, (prefix, name)
        for key, value in theirs.items():
            assert ours[prefix].get(key) == value, (prefix, key, value, ours[prefix].get(key))
            compared += 1
    return compared, {k: v for samples in ours.values() for k, v in samples.items()}


@pytest.fixture
async def viewer(staff_user: Any) -> Any:
    client = AsyncClient()
    await client.aforce_login(staff_user)
    yield client
    await close_dashboard()


async def test_node_built_state_exports_as_node_does(viewer: AsyncClient, node_redis: NodeState) -> None:
    compared, _ours = await compare(viewer, node_redis.url)
    assert compared >= 9 * 3  # 9 samples per queue Node could export


async def test_failures_and_recorded_totals_export_as_node_does(
    viewer: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await run_node_async("failure_recency.mjs", redis_url, "recency")
    await redis_client.hset("bull:recency:metrics:completed", mapping={"count": "17", "prevTS": "0"})
    await redis_client.hset("bull:recency:metrics:failed", mapping={"count": "5", "prevTS": "0"})
    compared, ours = await compare(viewer, redis_url)
    assert compared == 9
    assert ours[("bullmq_job_count", (("queue", "recency"), ("state", "failed")))] == 3
    assert ours[("bullmq_job_completed_total", (("queue", "recency"),))] == 17
    assert ours[("bullmq_job_failed_total", (("queue", "recency"),))] == 5
