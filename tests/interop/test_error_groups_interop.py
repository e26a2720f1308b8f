"""Error groups built from real failures thrown in Node BullMQ 6 workers, group actions that Node's own
getters agree with, and the scan bound and cache."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

import queues.error_groups as error_groups_module
from dashboard import links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from queues.error_groups import CACHE
from queues.models import QueueRef
from tests.support.dashboard import dashboard_settings
from tests.support.node import run_node_async

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]
HERE = Path(__file__).parent
QUEUE = QueueRef("default", "bull", "payments")
TIMEOUT = "Timeout after <n>ms contacting <ip>"
TYPE_ERROR = 'Cannot read properties of undefined (reading "…")'


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    CACHE.clear()


async def node(script: str, *args: str, stdin: str = "") -> dict[str, Any]:
    """Run a Node script of tests/interop and parse the JSON it prints last."""
    return await run_node_async(script, *args, stdin=stdin)


def plan() -> list[dict[str, Any]]:
    """30 timeouts (numbers and hosts varying), 10 TypeErrors from one function, 5 distinct failures,
    in a shuffled order so that first and last seen differ between groups."""
    jobs: list[dict[str, Any]] = [
        {"id": f"t-{i}", "kind": "timeout", "n": 3000 + 7 * i, "host": i % 9 + 1} for i in range(30)
    ]
    jobs += [{"id": f"y-{i}", "kind": "type"} for i in range(10)]
    words = ["alpha", "bravo", "charlie", "delta", "echo"]
    jobs += [{"id": f"d-{word}", "kind": "distinct", "word": word} for word in words]
    random.Random(12).shuffle(jobs)
    return jobs


async def fail_in_node(url: str, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    return await node("error_worker.mjs", url, QUEUE.name, stdin=json.dumps({"jobs": jobs}))


async def node_view(url: str) -> dict[str, Any]:
    result = await node(
        "node_getters.mjs", url, stdin=json.dumps({"queues": [{"prefix": "bull", "name": QUEUE.name}]})
    )
    return dict(result["queues"][0])


async def groups_json(client: AsyncClient) -> dict[str, Any]:
    response = await client.get(links.error_groups_api_url(QUEUE))
    assert response.status_code == 200, response.content
    return dict(response.json())


def by_prefix(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Groups keyed by the id prefix of their sample (t-, y-, d-alpha …)."""
    result = {}
    for group in body["groups"]:
        sample = group["sample"]["id"]
        result[sample if sample.startswith("d-") else sample[:2]] = group
    return result


async def test_real_node_failures_make_exactly_the_expected_groups(
    admin_client: AsyncClient, redis_url: str
) -> None:
    jobs = plan()
    ran = await fail_in_node(redis_url, jobs)
    assert len(ran["failed"]) == 45
    view = await node_view(redis_url)
    finished = {job_id: view["jobs"][job_id]["finishedOn"] for job_id in view["ids"]["failed"]}
    newest_first = view["ids"]["failed"]

    body = await groups_json(admin_client)
    assert (body["scanned"], body["total"], body["bound_hit"]) == (45, 45, False)
    assert sorted(group["count"] for group in body["groups"]) == [1, 1, 1, 1, 1, 10, 30]
    groups = by_prefix(body)
    assert set(groups) == {"t-", "y-", "d-alpha", "d-bravo", "d-charlie", "d-delta", "d-echo"}

    timeout, type_error = groups["t-"], groups["y-"]
    assert (timeout["exception"], timeout["message"], timeout["count"]) == ("Error", TIMEOUT, 30)
    assert (type_error["exception"], type_error["message"], type_error["count"]) == (
        "TypeError",
        TYPE_ERROR,
        10,
    )
    assert "chargeCustomer" in type_error["frame"] and "error_worker.mjs:<n>" in type_error["frame"]
    assert groups["d-bravo"]["exception"] == "RangeError"
    for prefix, group in (("t-", timeout), ("y-", type_error)):
        members = [job_id for job_id in newest_first if job_id.startswith(prefix)]
        assert group["first_seen"] == min(finished[job_id] for job_id in members)
        assert group["last_seen"] == max(finished[job_id] for job_id in members)
        # The sample is the group's newest failure, as Node lists the failed set.
        assert group["sample"]["id"] == members[0]
        assert group["sample"]["failedReason"] == view["jobs"][members[0]]["failedReason"]
        assert group["sample"]["stacktrace"].startswith(group["exception"])
        assert group["actions"]["retry"] == links.error_group_action_url(QUEUE, "retry")
    # Groups are listed most jobs first.
    assert [group["count"] for group in body["groups"]][:2] == [30, 10]

    queue = (await admin_client.get(links.queue_api_url(QUEUE))).json()
    assert queue["error_groups_url"] == links.error_groups_api_url(QUEUE)

    page = await admin_client.get(links.error_groups_url(QUEUE))
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('class="error-group"') == 7
    assert "Timeout after &lt;n&gt;ms contacting &lt;ip&gt;" in html
    assert links.job_url(QUEUE, timeout["sample"]["id"]).replace("&", "&amp;") in html


async def test_group_retry_moves_exactly_that_group_to_wait_and_is_audited(
    admin_client: AsyncClient, redis_url: str
) -> None:
    await fail_in_node(redis_url, plan())
    type_error = by_prefix(await groups_json(admin_client))["y-"]
    response = await admin_client.post(
        links.error_group_action_url(QUEUE, "retry"),
        data=json.dumps({"fingerprint": type_error["fingerprint"]}),
        content_type="application/json",
    )
    await wait_all()
    assert response.status_code == 200, response.content
    assert (response.json()["done"], response.json()["skipped"]) == (10, 0)

    view = await node_view(redis_url)
    assert view["counts"]["waiting"] == 10
    assert view["counts"]["failed"] == 35
    assert sorted(view["ids"]["waiting"]) == sorted(f"y-{i}" for i in range(10))

    entry = await AuditEntry.objects.filter(action="error_group_retry").afirst()
    assert entry is not None
    assert (entry.result, entry.count, entry.queue) == ("done", 10, QUEUE.key)
    assert sorted(entry.job_ids) == sorted(f"y-{i}" for i in range(10))
    assert entry.params["fingerprint"] == type_error["fingerprint"]

    # The failed set changed, so the groups are computed again: the TypeError group is gone.
    after = by_prefix(await groups_json(admin_client))
    assert "y-" not in after and after["t-"]["count"] == 30

    # Node runs them again: they fail the same way, and the same fingerprint comes back with 10 jobs.
    again = await fail_in_node(redis_url, [])
    assert len(again["failed"]) == 10
    assert by_prefix(await groups_json(admin_client))["y-"]["fingerprint"] == type_error["fingerprint"]


async def test_group_remove_and_a_group_that_is_gone(admin_client: AsyncClient, redis_url: str) -> None:
    await fail_in_node(redis_url, plan())
    timeout = by_prefix(await groups_json(admin_client))["t-"]
    url = links.error_group_action_url(QUEUE, "remove")
    payload = json.dumps({"fingerprint": timeout["fingerprint"]})
    response = await admin_client.post(url, data=payload, content_type="application/json")
    await wait_all()
    assert (response.status_code, response.json()["done"]) == (200, 30)
    view = await node_view(redis_url)
    assert view["counts"]["failed"] == 15
    assert not any(job_id.startswith("t-") for job_id in view["jobs"])

    again = await admin_client.post(url, data=payload, content_type="application/json")
    assert again.status_code == 404
    bad = await admin_client.post(
        url, data=json.dumps({"fingerprint": "../x"}), content_type="application/json"
    )
    assert bad.status_code == 400
    unknown = await admin_client.post(
        links.error_group_action_url(QUEUE, "drain"), data=payload, content_type="application/json"
    )
    assert unknown.status_code == 404


async def test_a_user_who_may_only_view_gets_403_for_group_actions(
    client: AsyncClient, redis_url: str
) -> None:
    await fail_in_node(redis_url, plan())
    body = await groups_json(client)
    timeout = by_prefix(body)["t-"]
    assert timeout["actions"] == {}
    page = (await client.get(links.error_groups_url(QUEUE))).content.decode()
    assert "Retry all" not in page
    for action in ("retry", "remove"):
        response = await client.post(
            links.error_group_action_url(QUEUE, action),
            data=json.dumps({"fingerprint": timeout["fingerprint"]}),
            content_type="application/json",
        )
        assert response.status_code == 403
    assert (await node_view(redis_url))["counts"]["failed"] == 45
    assert await AuditEntry.objects.filter(action="error_group_retry", result="refused").aexists()


async def test_the_scan_bound_is_reported_when_hit(
    admin_client: AsyncClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fail_in_node(redis_url, plan())
    monkeypatch.setattr(error_groups_module, "BATCH", 7)  # several batches, pipelined, up to the bound
    settings = dashboard_settings(redis_url, ERROR_GROUPS={"SCAN_LIMIT": 20})
    with override_settings(BULLMQ_DASHBOARD=settings):
        body = await groups_json(admin_client)
        assert (body["scanned"], body["total"], body["bound"], body["bound_hit"]) == (20, 45, 20, True)
        assert sum(group["count"] for group in body["groups"]) == 20
        page = (await admin_client.get(links.error_groups_url(QUEUE))).content.decode()
        assert "Only the newest 20 of 45 failed jobs are grouped" in page
    body = await groups_json(admin_client)
    assert (body["scanned"], body["bound_hit"]) == (45, False)


async def test_the_cache_serves_until_a_new_failure_arrives(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fail_in_node(redis_url, plan())
    scans = 0
    real_scan = error_groups_module.scan_failures

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal scans
        scans += 1
        return await real_scan(*args, **kwargs)

    monkeypatch.setattr(error_groups_module, "scan_failures", counted)
    assert by_prefix(await groups_json(admin_client))["t-"]["count"] == 30
    evals_before = await _evalsha_calls(redis_client)
    assert by_prefix(await groups_json(admin_client))["t-"]["count"] == 30
    assert scans == 1
    assert await _evalsha_calls(redis_client) == evals_before  # a cached view runs no script

    await fail_in_node(redis_url, [{"id": "t-new", "kind": "timeout", "n": 99, "host": 3}])
    groups = by_prefix(await groups_json(admin_client))
    assert scans == 2
    assert groups["t-"]["count"] == 31
    assert groups["t-"]["sample"]["id"] == "t-new"


async def _evalsha_calls(client: Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_small_batches_and_budgets_give_the_same_groups(
    admin_client: AsyncClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fail_in_node(redis_url, plan())
    whole = await groups_json(admin_client)
    CACHE.clear()
    monkeypatch.setattr(error_groups_module, "BATCH", 4)
    monkeypatch.setattr(error_groups_module, "BATCH_BUDGET", 1)  # each call stops after one job
    assert await groups_json(admin_client) == whole
