"""The dashboard reads what real Node BullMQ 6 and 5 wrote exactly as that version's own getters do.

BullMQ 5 keeps a paused queue's jobs in its `paused` list: its getJobCounts() has a `paused` count,
getJobs(['waiting']) reads `wait` and then `paused`, and getState() says `waiting` for a job in either.
The dashboard has a `paused` state for that list, so its `waiting` and `paused` pages together are
Node 5's `waiting`. BullMQ 6 has neither the list nor the count: the dashboard's `paused` is 0 there."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient

from dashboard import links
from queues.models import QueueRef
from queues.states import STATES
from tests.interop.conftest import NodeState
from tests.support.asgi import asgi_get
from tests.support.dashboard import close_dashboard
from tests.support.urls import dashboard_url

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]


def node_states(node: dict[str, Any]) -> list[str]:
    """The states Node's getJobCounts() names for this queue, in the dashboard's order (BullMQ 5 adds
    `paused`)."""
    assert set(node["counts"]) <= set(STATES), node["counts"]
    return [state for state in STATES if state in node["counts"]]


def expected_state(state: str) -> str:
    """What getState() says of a job on the dashboard's `state` page: a job in BullMQ 5's paused list
    is `waiting` to Node (getState-8.lua), and to the dashboard's job page."""
    return "waiting" if state == "paused" else state


@pytest.fixture
async def api(node_redis: NodeState, staff_user: Any) -> Any:
    client = AsyncClient()
    await client.aforce_login(staff_user)
    yield client
    await close_dashboard()


# A scheduler's fields as Node's getJobSchedulers() names them, in the dashboard's schedulers JSON.
SCHEDULER_FIELDS = (
    "key",
    "name",
    "next",
    "pattern",
    "every",
    "tz",
    "limit",
    "iterationCount",
    "startDate",
    "endDate",
    "offset",
)


async def schedulers_match(api: AsyncClient, listed: dict[str, Any], node: dict[str, Any]) -> int:
    """Check the queue's schedulers JSON against Node's getJobSchedulers() (soonest first); how many."""
    queue = QueueRef("default", listed["prefix"], listed["name"])
    body = (await api.get(links.schedulers_api_url(queue))).json()
    assert body["total"] == len(node["schedulers"]), listed["name"]
    assert [{field: row[field] for field in SCHEDULER_FIELDS} for row in body["schedulers"]] == [
        {field: theirs.get(field) for field in SCHEDULER_FIELDS} for theirs in node["schedulers"]
    ], listed["name"]
    for row, theirs in zip(body["schedulers"], node["schedulers"], strict=True):
        # Node leaves `template` out when the hash has neither data nor opts (legacy repeatables).
        assert row["template"]["data"] == (theirs.get("template") or {}).get("data"), listed["name"]
        # Its newest job is BullMQ's `repeat:<id>:<next>`, waiting for its time.
        assert row["latestJob"]["id"] == f"repeat:{row['key']}:{row['next']}", listed["name"]
        assert row["latestJob"]["state"] == "delayed", listed["name"]
    return len(node["schedulers"])


async def all_ids(api: AsyncClient, jobs_url: str, state: str) -> list[str]:
    ids: list[str] = []
    page = 1
    while True:
        body = (await api.get(jobs_url, {"state": state, "page": page, "per_page": 10})).json()
        ids.extend(job["id"] for job in body["jobs"])
        if page >= body["pages"]:
            return ids
        page += 1


async def test_every_node_queue_is_discovered_with_nodes_counts(
    api: AsyncClient, node_redis: NodeState
) -> None:
    listed = {
        f"{q['prefix']}:{q['name']}": q
        for q in (await api.get(dashboard_url("api/queues/"))).json()["queues"]
    }
    expected = {f"{q['prefix']}:{q['name']}" for q in node_redis.queues}
    assert set(listed) == expected
    schedulers = 0
    for key, ours in listed.items():
        node = node_redis.node_queue(key)
        assert {state: ours["counts"][state] for state in node_states(node)} == node["counts"], key
        # A state Node does not count (BullMQ 6: `paused`) holds nothing for the dashboard either.
        assert {state: ours["counts"][state] for state in STATES if state not in node["counts"]} == {
            state: 0 for state in STATES if state not in node["counts"]
        }, key
        assert ours["paused"] is node["isPaused"], key
        schedulers += await schedulers_match(api, ours, node)
    # interop-scheduled's scheduler; with BullMQ 5 also interop-legacy-repeat's two repeatables.
    assert schedulers == (3 if node_redis.version == "5" else 1)
    paused = node_redis.node_queue("bull:interop-paused")
    # The versions' differences the comparisons above cover: where a paused queue's jobs are counted.
    assert paused["isPaused"] is True
    if node_redis.version == "5":
        assert (paused["counts"]["paused"], paused["counts"]["waiting"]) == (3, 0)
    else:
        assert "paused" not in paused["counts"] and paused["counts"]["waiting"] == 3


async def test_job_ids_per_state_in_nodes_order(api: AsyncClient, node_redis: NodeState) -> None:
    checked = 0
    for listed in (await api.get(dashboard_url("api/queues/"))).json()["queues"]:
        node = node_redis.node_queue(f"{listed['prefix']}:{listed['name']}")
        detail = (await api.get(listed["api_url"])).json()
        ours = {state: await all_ids(api, detail["jobs_url"], state) for state in STATES}
        for state in node_states(node):
            got = ours[state]
            if state == "waiting" and "paused" in node["counts"]:
                # Node 5's getJobs(['waiting']): the `wait` list, then the `paused` list.
                got = ours["waiting"] + ours["paused"]
            assert got == node["ids"][state], (listed["name"], state)
            checked += len(got)
        assert not any(ours[state] for state in STATES if state not in node["counts"]), listed["name"]
    assert checked > 30


async def test_job_fields_match_nodes_job_objects(api: AsyncClient, node_redis: NodeState) -> None:
    seen_failed = seen_logs = seen_parent = seen_paused = 0
    for listed in (await api.get(dashboard_url("api/queues/"))).json()["queues"]:
        node_queue = node_redis.node_queue(f"{listed['prefix']}:{listed['name']}")
        jobs_url = (await api.get(listed["api_url"])).json()["jobs_url"]
        for state in node_states(node_queue):
            body = (await api.get(jobs_url, {"state": state, "per_page": 100})).json()
            for summary in body["jobs"]:
                node = node_queue["jobs"][summary["id"]]
                # via the ASGI app: Django's AsyncClient cannot send non-Latin-1 paths
                status, raw = await asgi_get(api, summary["api_url"])
                assert status == 200, summary["api_url"]
                ours = json.loads(raw)
                context = (listed["name"], summary["id"])
                assert ours["state"] == node["state"] == expected_state(state), context
                for field in (
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
                ):
                    assert ours[field] == node[field], (*context, field)
                for field in ("name", "timestamp", "processedOn", "finishedOn", "attemptsMade", "progress"):
                    assert summary[field] == node[field], (*context, "summary", field)
                assert (
                    summary["failedReason"] == (node["failedReason"] or "").splitlines()[0]
                    if node["failedReason"]
                    else summary["failedReason"] == ""
                )
                assert ours["stacktrace"] == list(reversed(node["stacktrace"] or [])), context
                assert ours["logs"] == {**node["logs"], "notRead": 0}, context
                if node["parent"]:
                    assert ours["parent"]["id"] == node["parent"]["id"]
                    assert ours["parent"]["queueKey"] == node["parent"]["queueKey"]
                    assert "html_url" in ours["parent"]
                    seen_parent += 1
                if node["dependencies"]:
                    assert ours["childrenCounts"]["pending"] == node["dependencies"]["unprocessed"]
                    assert ours["childrenCounts"]["processed"] == node["dependencies"]["processed"]
                    assert ours["childrenCounts"]["ignored"] == node["dependencies"].get("ignored", 0)
                    assert ours["childrenCounts"]["failed"] == node["dependencies"].get("failed", 0)
                    assert all("html_url" in child for child in ours["children"])
                seen_failed += state == "failed"
                seen_paused += state == "paused"
                seen_logs += bool(node["logs"]["count"])
    assert seen_failed >= 4 and seen_logs >= 5 and seen_parent >= 3
    assert seen_paused == (3 if node_redis.version == "5" else 0)


async def test_failed_job_page_shows_every_attempts_trace(api: AsyncClient, node_redis: NodeState) -> None:
    node = node_redis.node_queue("bull:interop-main")
    failed_id = node["ids"]["failed"][-1]
    job = (await api.get(dashboard_url(f"api/queues/default/bull:interop-main/job/?id={failed_id}"))).json()
    page = await api.get(job["html_url"])
    html = page.content.decode()
    assert page.status_code == 200
    assert len(node["jobs"][failed_id]["stacktrace"]) == 3
    # Node's three traces of the same failure are one trace shown once, with its three attempts.
    traces = node["jobs"][failed_id]["stacktrace"]
    assert len(set(traces)) == 1
    assert html.count('<pre class="trace" id="trace-') == 1
    assert "the same trace \u00d73" in html and "attempts 1, 2, 3" in html
    assert "SMTP timeout" in html


async def test_a_paused_queues_next_job_waits_since_it_was_added(
    api: AsyncClient, node_redis: NodeState
) -> None:
    # BullMQ 5 keeps a paused queue's jobs in `paused`, 6 in `wait`: either way the job next in line
    # (last in Node's waiting order) tells how long the queue has kept work waiting.
    node = node_redis.node_queue("bull:interop-paused")
    first = node["jobs"][node["ids"]["waiting"][-1]]
    metrics = (
        await api.get(links.queue_metrics_api_url(QueueRef("default", "bull", "interop-paused")))
    ).json()
    assert metrics["oldestWaitingSince"] == first["timestamp"] + first["delay"]
