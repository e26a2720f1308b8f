"""Actions taken through the dashboard, and real Node BullMQ 6 workers and getters agreeing with them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from queues.models import QueueRef
from tests.support.builders import add_jobs
from tests.support.node import run_node_async

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]
HERE = Path(__file__).parent
STREAM = QueueRef("default", "bull", "stream")


async def node(script: str, *args: str, stdin: str = "") -> dict[str, Any]:
    """Run a Node script of tests/interop and parse the JSON it prints last."""
    return await run_node_async(script, *args, stdin=stdin)


async def node_view(url: str, name: str = "stream") -> dict[str, Any]:
    """What Node's own getters say about one queue."""
    result = await node(
        "node_getters.mjs", url, stdin=json.dumps({"queues": [{"prefix": "bull", "name": name}]})
    )
    return dict(result["queues"][0])


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    response = await client.post(url, data=json.dumps(params), content_type="application/json")
    await wait_all()
    return response


async def test_a_job_fixed_and_retried_by_the_dashboard_is_processed_by_a_node_worker(
    admin_client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "stream", [("stream", {"i": 1, "fail": True}, {"jobId": "broken"})])
    first = await node("worker.mjs", redis_url, "stream", "--until-idle", "--max-ms", "10000")
    assert first["failed"] == ["broken"]

    edit = await post(
        admin_client, links.job_action_url(STREAM, "update_data", "broken"), data={"i": 1, "fail": False}
    )
    assert edit.status_code == 200
    retry = await post(admin_client, links.job_action_url(STREAM, "retry", "broken"))
    assert retry.status_code == 200

    second = await node("worker.mjs", redis_url, "stream", "--until-idle", "--max-ms", "10000")
    assert second["completed"] == ["broken"]
    view = await node_view(redis_url)
    assert view["jobs"]["broken"]["returnvalue"] == {"ok": True, "i": 1}
    assert view["jobs"]["broken"]["state"] == "completed"


async def test_pause_stops_a_node_worker_and_resume_restarts_it(
    admin_client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "stream", [("stream", {"i": 0}, {"jobId": "p0"})])
    assert (await post(admin_client, links.queue_action_url(STREAM, "pause"))).status_code == 200
    assert (await node_view(redis_url))["isPaused"] is True
    idle = await node("worker.mjs", redis_url, "stream", "--max-ms", "1500")
    assert idle["completed"] == []
    assert (await post(admin_client, links.queue_action_url(STREAM, "resume"))).status_code == 200
    busy = await node("worker.mjs", redis_url, "stream", "--until-idle", "--max-ms", "10000")
    assert busy["completed"] == ["p0"]


async def test_clean_drain_promote_and_remove_agree_with_nodes_getters(
    admin_client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(
        redis_url, "stream", [("stream", {"i": i, "fail": i % 3 == 0}, {"jobId": f"c{i}"}) for i in range(9)]
    )
    await node("worker.mjs", redis_url, "stream", "--until-idle", "--max-ms", "10000")
    await add_jobs(
        redis_url, "stream", [("stream", {"i": i}, {"jobId": f"d{i}", "delay": 600_000}) for i in range(4)]
    )
    before = await node_view(redis_url)
    assert (before["counts"]["completed"], before["counts"]["failed"], before["counts"]["delayed"]) == (
        6,
        3,
        4,
    )

    cleaned = await post(
        admin_client, links.queue_action_url(STREAM, "clean"), state="completed", grace=0, limit=4
    )
    assert cleaned.json()["done"] == 4
    promoted = await post(admin_client, links.job_action_url(STREAM, "promote", "d0"))
    assert promoted.status_code == 200
    removed = await post(admin_client, links.job_action_url(STREAM, "remove", "c0"))
    assert removed.status_code == 200
    ours = (await admin_client.get(links.queue_api_url(STREAM))).json()["counts"]
    after = await node_view(redis_url)
    assert after["counts"] == {key: ours[key] for key in after["counts"]}
    assert (after["counts"]["completed"], after["counts"]["failed"], after["counts"]["delayed"]) == (2, 2, 3)
    assert after["ids"]["waiting"] == ["d0"]
    assert "c0" not in after["jobs"]

    drained = await post(admin_client, links.queue_action_url(STREAM, "drain"))
    assert drained.json()["done"] == 4
    final = await node_view(redis_url)
    assert final["counts"]["waiting"] == 0 and final["counts"]["delayed"] == 0


async def test_drain_counts_exactly_what_it_removed_while_a_node_worker_takes_jobs(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """Drain's count is taken in the same MULTI as BullMQ's script: a worker taking jobs just before or
    after it changes nothing in what it says it removed."""
    await add_jobs(redis_url, "stream", [("stream", {"i": i}, {}) for i in range(2000)])
    worker = asyncio.create_task(
        node("worker.mjs", redis_url, "stream", "--concurrency", "20", "--max-ms", "1500")
    )
    try:
        for _ in range(200):  # until the Node worker has taken jobs
            if await redis_client.zcard("bull:stream:completed"):
                break
            await asyncio.sleep(0.05)
        drained = await post(admin_client, links.queue_action_url(STREAM, "drain"))
        assert drained.status_code == 200, drained.json()
        waiting = await redis_client.llen("bull:stream:wait")
    finally:
        await worker
    taken = sum(
        [
            await redis_client.zcard("bull:stream:completed"),
            await redis_client.zcard("bull:stream:failed"),
            await redis_client.llen("bull:stream:active"),
        ]
    )
    assert waiting == 0 and 0 < taken < 2000
    assert drained.json()["done"] == 2000 - taken  # every job was either taken by the worker or drained


async def test_every_job_is_accounted_for_while_node_works_and_operators_act(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    total = 300
    stream = asyncio.create_task(
        node(
            "worker.mjs",
            redis_url,
            "stream",
            "--produce",
            str(total),
            "--fail-every",
            "7",
            "--until-idle",
            "--max-ms",
            "40000",
        )
    )
    for _ in range(100):  # until the Node producer has created the queue
        if await redis_client.exists("bull:stream:meta"):
            break
        await asyncio.sleep(0.1)
    for _ in range(8):  # operators retry, remove and clean while the Node worker runs
        await post(admin_client, links.bulk_url(STREAM), action="retry", all="1", state="failed")
        page = (
            await admin_client.get(links.jobs_api_url(STREAM), {"state": "waiting", "per_page": 10})
        ).json()
        ids = [job["id"] for job in page["jobs"][:3]]
        if ids:
            await post(admin_client, links.bulk_url(STREAM), action="remove", ids=ids)
        await post(
            admin_client, links.queue_action_url(STREAM, "clean"), state="completed", grace=0, limit=20
        )
        await asyncio.sleep(0.15)
    result = await stream
    # jobs the operators retried after the stream's worker went idle: let a Node worker finish them
    await node("worker.mjs", redis_url, "stream", "--until-idle", "--max-ms", "20000")

    assert len(result["added"]) == total
    completed = {raw.decode() for raw in await redis_client.zrange("bull:stream:completed", 0, -1)}
    failed = {raw.decode() for raw in await redis_client.zrange("bull:stream:failed", 0, -1)}
    removed: set[str] = set()
    async for entry in AuditEntry.objects.filter(
        result="done", action__in=["bulk_remove", "clean", "remove"]
    ):
        removed.update(entry.job_ids)
    accounted = completed | failed | removed
    missing = set(result["added"]) - accounted
    assert not missing, f"{len(missing)} jobs unaccounted for: {sorted(missing)[:10]}"
    assert not (completed & removed) and not (failed & removed)
    assert await AuditEntry.objects.filter(action="bulk_retry", result="done").aexists()
