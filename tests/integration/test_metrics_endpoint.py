"""`<mount>/metrics`: Prometheus text exposition of the queues' counts, for viewers and a bearer token."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

import queues.prometheus as prometheus_module
import queues.signals as signals_module
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.builders import add_jobs, pause, process
from tests.support.dashboard import dashboard_settings
from tests.support.urls import dashboard_url

pytestmark = pytest.mark.host_compatible

TOKEN = "s3cret-token"


def metrics_url() -> str:
    return reverse("bullmq_dashboard:metrics")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels); the text must parse."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in found, key
            found[key] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def build(redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}), ("later", {}, {"delay": 60_000})])
    await add_jobs(redis_url, "sms", [("ok", {}, {"jobId": "ok"}), ("bad", {}, {"jobId": "bad"})])

    async def work(job: Any, token: str) -> None:
        if job.id == "bad":
            raise ValueError("nope")

    await process(redis_url, "sms", work, until=2)
    await add_jobs(redis_url, "sms", [("more", {}, {"priority": 3})])
    await pause(redis_url, "email")


async def test_counts_equal_the_apis(client: AsyncClient, redis_url: str) -> None:
    await build(redis_url)
    response = await client.get(metrics_url())
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.content.decode()
    assert text.startswith("# bullmq_dashboard: 2 of 2 queues\n")
    assert "# TYPE bullmq_job_count gauge" in text and "# TYPE bullmq_job_completed_total counter" in text
    found = samples(text)
    api = (await client.get(dashboard_url("api/queues/"))).json()["queues"]
    assert len(api) == 2
    for queue in api:
        base = {"queue": queue["name"], "prefix": queue["prefix"], "connection": queue["connection"]}
        for state in prometheus_module.NODE_STATES:
            assert value(found, "bullmq_job_count", state=state, **base) == queue["counts"][state]
        assert value(found, "bullmq_dashboard_queue_paused", **base) == int(queue["paused"])
        assert value(found, "bullmq_dashboard_queue_problem", **base) == 0
        # No worker here records metrics: Node reads the absent hashes as 0.
        assert value(found, "bullmq_job_completed_total", **base) == 0
    sms = {"queue": "sms", "prefix": "bull", "connection": "default"}
    assert value(found, "bullmq_job_count", state="failed", **sms) == 1
    assert value(found, "bullmq_job_count", state="prioritized", **sms) == 1
    assert value(found, "bullmq_dashboard_failed_last_hour", **sms) == 1
    assert value(found, "bullmq_dashboard_last_failure_timestamp_seconds", **sms) > 1.7e9
    assert (
        value(found, "bullmq_dashboard_queue_paused", queue="email", prefix="bull", connection="default") == 1
    )


async def test_totals_come_from_the_metrics_hashes(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.hset("bull:email:metrics:completed", mapping={"count": "41", "prevTS": "1"})
    await redis_client.hset("bull:email:metrics:failed", "count", "x" * 100)  # over the bound: left out
    found = samples((await client.get(metrics_url())).content.decode())
    base = {"queue": "email", "prefix": "bull", "connection": "default"}
    assert value(found, "bullmq_job_completed_total", **base) == 41
    assert ("bullmq_job_failed_total", tuple(sorted(base.items()))) not in found


async def test_token_and_login(anonymous_client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, METRICS_TOKEN=TOKEN)):
        reset_directories()
        right = await anonymous_client.get(metrics_url(), headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200 and b'bullmq_job_count{queue="email"' in right.content
        wrong = await anonymous_client.get(metrics_url(), headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401 and b"bullmq_job_count" not in wrong.content
        assert wrong["Content-Type"].startswith("text/plain")
        none = await anonymous_client.get(metrics_url())
        assert none.status_code == 401 and "Location" not in none
    unset = await anonymous_client.get(metrics_url(), headers={"Authorization": "Bearer "})
    assert unset.status_code == 401  # no METRICS_TOKEN configured: no token is right


async def test_logged_in_viewers_and_per_queue_restrictions(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "sms", [("send", {}, {})])
    assert b'queue="sms"' in (await client.get(metrics_url())).content
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_security.only_email"
        )
    ):
        reset_directories()
        response = await client.get(metrics_url())
    assert response.status_code == 200
    text = response.content.decode()
    assert 'queue="email"' in text and 'queue="sms"' not in text and "sms" not in text
    assert text.startswith("# bullmq_dashboard: 1 of 1 queues\n")


async def test_hostile_names_are_escaped(client: AsyncClient, redis_url: str) -> None:
    name = 'a"b\\c\nd} x="1'
    await add_jobs(redis_url, name, [("send", {}, {})])
    response = await client.get(metrics_url())
    text = response.content.decode()
    assert 'queue="a\\"b\\\\c\\nd} x=\\"1"' in text
    found = samples(text)
    assert (
        value(found, "bullmq_job_count", queue=name, state="waiting", prefix="bull", connection="default")
        == 1
    )


async def test_a_broken_queue_is_a_problem_not_a_failure(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "sms", [("send", {}, {})])
    await redis_client.delete("bull:sms:wait")
    await redis_client.hset("bull:sms:wait", "x", "y")
    found = samples((await client.get(metrics_url())).content.decode())
    sms = {"queue": "sms", "prefix": "bull", "connection": "default"}
    assert value(found, "bullmq_dashboard_queue_problem", **sms) == 1
    assert ("bullmq_job_count", tuple(sorted({**sms, "state": "waiting"}.items()))) not in found
    email = {"queue": "email", "prefix": "bull", "connection": "default"}
    assert value(found, "bullmq_job_count", state="waiting", **email) == 1
    assert value(found, "bullmq_dashboard_queue_problem", **email) == 0


async def test_one_pipeline_bounded_by_metrics_max_queues(
    client: AsyncClient, redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("q1", "q2", "q3", "q4"):
        await add_jobs(redis_url, name, [("send", {}, {})])
    pipelines: list[int] = []
    real = signals_module.run_pipeline

    async def counted(*args: Any, **kwargs: Any) -> Any:
        pipelines.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(signals_module, "run_pipeline", counted)
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, METRICS_MAX_QUEUES=3)):
        reset_directories()
        await client.get(metrics_url())  # discovers the queues, loads the script
        pipelines.clear()
        before = await redis_client.info("commandstats")
        response = await client.get(metrics_url())
        after = await redis_client.info("commandstats")
    text = response.content.decode()
    assert text.startswith("# bullmq_dashboard: 3 of 4 queues\n")
    assert (
        len({line.split('queue="')[1].split('"')[0] for line in text.splitlines() if 'queue="' in line}) == 3
    )

    def calls(stats: dict[str, Any], name: str) -> int:
        return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))

    assert pipelines == [1]
    assert calls(after, "evalsha") - calls(before, "evalsha") == 3


def test_escape() -> None:
    assert prometheus_module.escape('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert QueueRef("default", "bull", "x").key == "bull:x"
