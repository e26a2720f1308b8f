"""Alerts on what real Node BullMQ 6 workers do: jobs stalled by a killed worker, failures thrown by a
worker, and no worker left; seen by the monitor, exported by the Prometheus scrape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from dashboard.models import AlertState, AuditEntry
from dashboard.monitor import Monitor
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.dashboard import dashboard_settings
from tests.support.node import run_node_async

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]


def firing_samples(text: str) -> set[tuple[str, str]]:
    return {
        (sample.labels["queue"], sample.labels["condition"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "bullmq_dashboard_alert_firing" and sample.value == 1
    }


async def test_a_killed_worker_s_jobs_stall_and_the_alerts_fire(client: AsyncClient, redis_url: str) -> None:
    node = await run_node_async("stalled_jobs.mjs", redis_url, "stq", "3")
    assert node["stalled"] == ["s-0", "s-1", "s-2"]
    rules = [{"QUEUES": ["bull:stq"], "STALLED": 3, "NO_WORKERS": 0, "OLDEST_WAITING": "0s", "WINDOW": "10m"}]
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS={"RULES": rules, "EVALUATE": False})
    ):
        reset_directories()
        tick = await Monitor().tick()
        queue = QueueRef("default", "bull", "stq")
        assert sorted(f.condition for f in tick.firing) == ["no_workers", "oldest_waiting", "stalled"]
        stalled = next(f for f in tick.firing if f.condition == "stalled")
        assert stalled.value == 3 and str(stalled.message).startswith("3 jobs stalled in the last")
        assert tick.signals[queue].counts.counts["waiting"] == node["counts"]["waiting"] == 3
        assert await AlertState.objects.acount() == 3
        assert await AuditEntry.objects.filter(action="alert_fired").acount() == 3
        text = (await client.get(reverse("bullmq_dashboard:metrics"))).content.decode()
    assert firing_samples(text) == {("stq", "no_workers"), ("stq", "oldest_waiting"), ("stq", "stalled")}


async def test_the_failure_rate_of_a_node_worker(redis_url: str, transactional_db: None) -> None:
    plan = {
        "jobs": [{"id": f"t-{n}", "kind": "timeout" if n % 2 else "ok", "n": n, "host": n} for n in range(10)]
    }
    node = await run_node_async("error_worker.mjs", redis_url, "pay", stdin=json.dumps(plan))
    assert (node["counts"]["failed"], node["counts"]["completed"]) == (5, 5)
    rules: list[dict[str, Any]] = [
        {"QUEUES": ["bull:pay"], "FAILURE_RATE": 0.5, "MIN_FINISHED": 10, "WINDOW": "1h"}
    ]
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS={"RULES": rules, "EVALUATE": False})
    ):
        reset_directories()
        tick = await Monitor().tick()
    assert [(f.condition, f.value) for f in tick.firing] == [("failure_rate", 0.5)]
    assert str(tick.firing[0].message).startswith("50% of 10 finished jobs failed")
