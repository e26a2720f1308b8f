"""The dashboard reads what real Node BullMQ 6 wrote exactly as Node's own getters do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient

from queues.states import STATES
from tests.interop.conftest import NodeState
from tests.support.asgi import asgi_get
from tests.support.dashboard import close_dashboard
from tests.support.urls import dashboard_url

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

NODE_STATES = [state for state in STATES if state != "paused"]


@pytest.fixture
async def api(node_redis: NodeState, staff_user: Any) -> Any:
    client = AsyncClient()
    await client.aforce_login(staff_user)
    yield client
    await close_dashboard()


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
    for key, ours in listed.items():
        node = node_redis.node_queue(key)
        assert {state: ours["counts"][state] for state in NODE_STATES} == node["counts"], key
        assert ours["paused"] is node["isPaused"], key


async def test_job_ids_per_state_in_nodes_order(api: AsyncClient, node_redis: NodeState) -> None:
    checked = 0
    for listed in (await api.get(dashboard_url("api/queues/"))).json()["queues"]:
        node = node_redis.node_queue(f"{listed['prefix']}:{listed['name']}")
        detail = (await api.get(listed["api_url"])).json()
        for state in NODE_STATES:
            assert await all_ids(api, detail["jobs_url"], state) == node["ids"][state], (
                listed["name"],
                state,
            )
            checked += len(node["ids"][state])
    assert checked > 30


async def test_job_fields_match_nodes_job_objects(api: AsyncClient, node_redis: NodeState) -> None:
    seen_failed = seen_logs = seen_parent = 0
    for listed in (await api.get(dashboard_url("api/queues/"))).json()["queues"]:
        node_queue = node_redis.node_queue(f"{listed['prefix']}:{listed['name']}")
        jobs_url = (await api.get(listed["api_url"])).json()["jobs_url"]
        for state in NODE_STATES:
            body = (await api.get(jobs_url, {"state": state, "per_page": 100})).json()
            for summary in body["jobs"]:
                node = node_queue["jobs"][summary["id"]]
                # via the ASGI app: Django's AsyncClient cannot send non-Latin-1 paths
                status, raw = await asgi_get(api, summary["api_url"])
                assert status == 200, summary["api_url"]
                ours = json.loads(raw)
                context = (listed["name"], summary["id"])
                assert ours["state"] == node["state"] == state, context
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
                seen_logs += bool(node["logs"]["count"])
    assert seen_failed >= 4 and seen_logs >= 5 and seen_parent >= 3


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
