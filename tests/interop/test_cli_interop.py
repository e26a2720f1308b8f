"""`manage.py queues retry-failed` on jobs a real Node BullMQ 6 worker failed, and Node's own getters
agreeing with it (and with the terminal's table) afterwards."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from django.core.management import call_command

from dashboard.models import AuditEntry
from tests.support.node import run_node_async

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]


async def queues(*args: str) -> str:
    """Run `manage.py queues …` in a thread of its own (it runs its own event loops); its output."""
    out = io.StringIO()
    await asyncio.to_thread(call_command, "queues", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


async def node_counts(url: str) -> dict[str, Any]:
    """Node's queue.getJobCounts() of bull:stream."""
    view = await run_node_async(
        "node_getters.mjs", url, stdin=json.dumps({"queues": [{"prefix": "bull", "name": "stream"}]})
    )
    return dict(view["queues"][0]["counts"])


async def test_retry_failed_moves_nodes_failed_jobs_back_and_node_agrees(
    redis_url: str, transactional_db: None
) -> None:
    # Node produces s-0 … s-5 and fails every other one (data.fail on even i).
    run = await run_node_async(
        "worker.mjs", redis_url, "stream", "--produce", "6", "--fail-every", "2", "--until-idle"
    )
    assert sorted(run["failed"]) == ["s-0", "s-2", "s-4"]
    before = await node_counts(redis_url)
    assert (before["failed"], before["completed"], before["waiting"]) == (3, 3, 0)
    listed = json.loads(await queues("--json"))["queues"]
    assert [queue["counts"] for queue in listed if queue["key"] == "bull:stream"] == [{**before, "paused": 0}]

    said = await queues("retry-failed", "stream", "--yes")

    assert "Moved 3 failed jobs of stream to waiting." in said
    after = await node_counts(redis_url)
    assert (after["failed"], after["waiting"], after["completed"]) == (0, 3, 3)
    listed = json.loads(await queues("--json"))["queues"]
    assert [queue["counts"] for queue in listed if queue["key"] == "bull:stream"] == [{**after, "paused": 0}]
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None and (entry.action, entry.result, entry.count) == ("retry_all", "done", 3)

    # The retried jobs are ordinary waiting jobs to a Node worker: it takes (and fails) them again.
    again = await run_node_async("worker.mjs", redis_url, "stream", "--until-idle")
    assert sorted(again["failed"]) == ["s-0", "s-2", "s-4"]
