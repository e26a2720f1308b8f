"""The dashboard reads what the Python `bullmq` package (PyPI, pinned in pyproject.toml) wrote exactly as
Node BullMQ 6's own getters read the same Redis.

The Python package writes what Node writes, with these differences the comparisons cover: its Queue
never writes meta's `version` (the queue is found by `opts.maxLenEvents`, written with its first event),
its Worker never writes `pb` (processedBy), every job's `opts` has `delay`, a scheduler's jobs' `opts`
have `prevMillis`, stack traces are Python tracebacks, and `pause()` sets meta's `paused` flag and
leaves the jobs in `wait` (as BullMQ 6 does)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from bullmq import FlowProducer, Queue, Worker
from django.test import AsyncClient, override_settings

from dashboard.registry import reset_directories
from queues.states import STATES
from queues.throwaway_redis import ThrowawayRedis
from tests.interop.conftest import NodeState
from tests.interop.test_node_interop import all_ids, expected_state, node_states, schedulers_match
from tests.support.asgi import asgi_get
from tests.support.builders import add_jobs, pause, process
from tests.support.dashboard import close_dashboard
from tests.support.node import run_node
from tests.support.urls import dashboard_url

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

HOUR = 3_600_000
QUEUES = [
    {"prefix": "bull", "name": "py-main"},
    {"prefix": "bull", "name": "py-paused"},
    {"prefix": "bull", "name": "py-flow-parent"},
    {"prefix": "bull", "name": "py-flow-children"},
    {"prefix": "{py}", "name": "py-scheduled"},
]
JOB_FIELDS = (
    "name",
    "data",
    "progress",
    "delay",
    "priority",
    "timestamp",
    "processedOn",
    "finishedOn",
    "attemptsMade",
    "attemptsStarted",
    "failedReason",
    "returnvalue",
    "processedBy",
)


async def main_worker(job: Any, _token: str) -> Any:
    """py-main's jobs: `fail` ones fail every attempt, the others log, report progress and return."""
    i = job.data["i"]
    if job.data.get("fail"):
        await job.log(f"attempt {job.attemptsMade + 1}: connecting to smtp.example.com")
        raise TimeoutError(f"SMTP timeout for job {i}")
    if job.name == "render-template":
        raise ValueError('Template render failed\n  at line 3: unexpected "}"')
    await job.log(f"sending email to {job.data['to']}")
    await job.log(f"delivered to {job.data['to']}")
    if i == 2:
        await job.updateProgress(100)
    elif i == 3:
        await job.updateProgress({"percent": 100, "stage": "done"})
    return {"delivered": True, "i": i}


async def process_one(url: str, name: str, result: Any) -> None:
    """Process exactly one job of `name` (a worker that fetches by hand cannot take a second)."""
    worker = Worker(name, None, {"connection": url, "autorun": False})
    try:
        job = await worker.getNextJob("py-token")
        assert job is not None, name
        await job.log("rendered")
        await job.moveToCompleted(result, "py-token")
    finally:
        await worker.close()
        for connection in (worker.redisConnection, worker.blockingRedisConnection):
            if connection is not None:
                await connection.conn.connection_pool.disconnect()


async def build(url: str) -> None:
    """The queue state, written with the Python package only."""
    # py-main: completed 1-3, failed 4-5 (3 attempts each), failed 6 (one attempt, a 2-line reason).
    await add_jobs(
        url,
        "py-main",
        [
            *(("send-email", {"to": f"user{i}@example.com", "i": i}, {}) for i in (1, 2, 3)),
            *(
                (
                    "send-email",
                    {"to": f"user{i}@example.com", "i": i, "fail": True},
                    {"attempts": 3, "backoff": {"type": "fixed", "delay": 10}},
                )
                for i in (4, 5)
            ),
            ("render-template", {"template": "welcome", "i": 6}, {}),
        ],
    )
    await process(url, "py-main", main_worker, until=6)
    # Then delayed 7-9, prioritized 10-12 (added out of priority order), waiting 13-15 and a custom id.
    await add_jobs(
        url,
        "py-main",
        [
            *(("send-reminder", {"k": k}, {"delay": HOUR + k * 60_000}) for k in range(3)),
            *(("send-digest", {"priority": p}, {"priority": p}) for p in (5, 1, 10)),
            *(("send-email", {"to": f"waiting{k}@example.com"}, {}) for k in range(3)),
            ("send-email", {"to": "weird@example.com"}, {"jobId": "weird/id with space ü 🚀"}),
        ],
    )
    # py-paused: 3 waiting jobs, then paused.
    await add_jobs(url, "py-paused", [("export-csv", {"batch": k}, {}) for k in (1, 2, 3)])
    await pause(url, "py-paused")
    # A flow: report-1 waits on page-1..3 (in another queue); one page is processed.
    flows = FlowProducer({"connection": url})
    try:
        await flows.add(
            {
                "name": "render-report",
                "queueName": "py-flow-parent",
                "data": {"report": "Q1"},
                "opts": {"jobId": "report-1"},
                "children": [
                    {
                        "name": "render-page",
                        "queueName": "py-flow-children",
                        "data": {"page": page},
                        "opts": {"jobId": f"page-{page}"},
                    }
                    for page in (1, 2, 3)
                ],
            }
        )
    finally:
        await flows.close()
    await process_one(url, "py-flow-children", {"bytes": 1024})
    # A job scheduler under a hash-tagged prefix: its first run (at once) completes, the next is delayed.
    queue = Queue("py-scheduled", {"connection": url, "prefix": "{py}"})
    try:
        await queue.upsertJobScheduler("hourly-report", {"every": HOUR}, "hourly-report", {"kind": "hourly"})
    finally:
        await queue.close()

    async def report(_job: Any, _token: str) -> Any:
        return {"rows": 42}

    await process(url, "py-scheduled", report, until=1, prefix="{py}")


@pytest.fixture(scope="module")
def python_state() -> Iterator[NodeState]:
    """A throwaway Redis the Python package filled, and Node BullMQ 6's getters' view of it."""
    with ThrowawayRedis() as server:
        # In a thread of its own: the module's tests run in event loops of their own.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, build(server.url)).result(timeout=60)
        node = run_node("node_getters.mjs", server.url, stdin=json.dumps({"queues": QUEUES}))
        yield NodeState(server.url, QUEUES, node, node["version"].split(".")[0])


@pytest.fixture
async def api(python_state: NodeState, staff_user: Any) -> Any:
    with override_settings(BULLMQ_DASHBOARD={"CONNECTIONS": {"default": {"URL": python_state.url}}}):
        reset_directories()
        client = AsyncClient()
        await client.aforce_login(staff_user)
        yield client
        await close_dashboard()
    reset_directories()


async def listed_queues(api: AsyncClient) -> dict[str, dict[str, Any]]:
    return {
        f"{q['prefix']}:{q['name']}": q
        for q in (await api.get(dashboard_url("api/queues/"))).json()["queues"]
    }


async def test_the_state_is_what_was_written(python_state: NodeState) -> None:
    # What Node says, so the comparisons below are not vacuous.
    main = python_state.node_queue("bull:py-main")
    assert main["counts"] == {
        "active": 0,
        "completed": 3,
        "delayed": 3,
        "failed": 3,
        "prioritized": 3,
        "waiting": 4,
        "waiting-children": 0,
    }
    assert main["ids"]["prioritized"] == ["12", "10", "11"]
    # 6 fails for good while 4 and 5 wait for their retries, so the failed set's order is not fixed.
    assert {job_id: main["jobs"][job_id]["attemptsMade"] for job_id in main["ids"]["failed"]} == {
        "4": 3,
        "5": 3,
        "6": 1,
    }
    paused = python_state.node_queue("bull:py-paused")
    assert paused["isPaused"] is True and paused["counts"]["waiting"] == 3
    assert python_state.node_queue("bull:py-flow-parent")["ids"]["waiting-children"] == ["report-1"]
    scheduled = python_state.node_queue("{py}:py-scheduled")
    assert (scheduled["counts"]["completed"], scheduled["counts"]["delayed"]) == (1, 1)
    assert [each["key"] for each in scheduled["schedulers"]] == ["hourly-report"]


async def test_every_queue_is_discovered_with_nodes_counts_and_schedulers(
    api: AsyncClient, python_state: NodeState
) -> None:
    listed = await listed_queues(api)
    assert set(listed) == {f"{q['prefix']}:{q['name']}" for q in QUEUES}
    schedulers = 0
    for key, ours in listed.items():
        node = python_state.node_queue(key)
        assert {state: ours["counts"][state] for state in node_states(node)} == node["counts"], key
        assert all(ours["counts"][state] == 0 for state in STATES if state not in node["counts"]), key
        assert ours["paused"] is node["isPaused"], key
        schedulers += await schedulers_match(api, ours, node)
    assert schedulers == 1


async def test_job_ids_per_state_in_nodes_order(api: AsyncClient, python_state: NodeState) -> None:
    checked = 0
    for key, listed in (await listed_queues(api)).items():
        node = python_state.node_queue(key)
        jobs_url = (await api.get(listed["api_url"])).json()["jobs_url"]
        for state in STATES:
            ours = await all_ids(api, jobs_url, state)
            assert ours == node["ids"].get(state, []), (key, state)
            checked += len(ours)
    assert checked == 25


async def test_job_fields_match_nodes_job_objects(api: AsyncClient, python_state: NodeState) -> None:
    seen: dict[str, int] = {"failed": 0, "logs": 0, "parent": 0, "children": 0, "progress": 0}
    for key, listed in (await listed_queues(api)).items():
        node_queue = python_state.node_queue(key)
        jobs_url = (await api.get(listed["api_url"])).json()["jobs_url"]
        for state in node_states(node_queue):
            body = (await api.get(jobs_url, {"state": state, "per_page": 100})).json()
            for summary in body["jobs"]:
                node = node_queue["jobs"][summary["id"]]
                # via the ASGI app: Django's AsyncClient cannot send non-Latin-1 paths
                status, raw = await asgi_get(api, summary["api_url"])
                assert status == 200, summary["api_url"]
                ours = json.loads(raw)
                context = (key, summary["id"])
                assert ours["state"] == node["state"] == expected_state(state), context
                for field in JOB_FIELDS:
                    assert ours[field] == node[field], (*context, field)
                # The dashboard shows `opts` as stored; Node's Job adds attempts (0) and backoff
                # (undefined) and drops repeatJobKey (rjk holds it).
                stored = {name: value for name, value in ours["opts"].items() if name != "repeatJobKey"}
                assert {"attempts": 0, **stored} == {
                    name: value for name, value in node["opts"].items() if value is not None
                }, context
                for field in ("name", "timestamp", "processedOn", "finishedOn", "attemptsMade", "progress"):
                    assert summary[field] == node[field], (*context, "summary", field)
                first_line = (node["failedReason"] or "").splitlines()[:1]
                assert summary["failedReason"] == (first_line[0] if first_line else ""), context
                # Node keeps the oldest attempt's trace first; the dashboard shows the newest first.
                assert ours["stacktrace"] == list(reversed(node["stacktrace"] or [])), context
                assert ours["logs"] == {**node["logs"], "notRead": 0}, context
                if node["parent"]:
                    assert (ours["parent"]["id"], ours["parent"]["queueKey"]) == (
                        node["parent"]["id"],
                        node["parent"]["queueKey"],
                    ), context
                    seen["parent"] += 1
                if node["dependencies"]:
                    counts = ours["childrenCounts"]
                    assert (counts["pending"], counts["processed"]) == (
                        node["dependencies"]["unprocessed"],
                        node["dependencies"]["processed"],
                    ), context
                    seen["children"] += counts["pending"] + counts["processed"]
                seen["failed"] += state == "failed"
                seen["logs"] += bool(node["logs"]["count"])
                seen["progress"] += bool(node["progress"])
    # 3 failed; logs on 1-5 and the processed page; 3 pages with a parent, whose 3 children it counts.
    assert seen == {"failed": 3, "logs": 6, "parent": 3, "children": 3, "progress": 2}


async def test_python_tracebacks_of_every_attempt_are_one_trace(
    api: AsyncClient, python_state: NodeState
) -> None:
    node = python_state.node_queue("bull:py-main")
    failed_id = "4"
    traces = node["jobs"][failed_id]["stacktrace"]
    assert len(traces) == 3 and len(set(traces)) == 1
    assert traces[0].startswith("Traceback (most recent call last):")
    job = (await api.get(dashboard_url(f"api/queues/default/bull:py-main/job/?id={failed_id}"))).json()
    html = (await api.get(job["html_url"])).content.decode()
    assert html.count('<pre class="trace" id="trace-') == 1
    assert "the same trace \u00d73" in html and "attempts 1, 2, 3" in html
    assert "SMTP timeout" in html
