"""Each cause of a stuck queue made by real Node BullMQ 6 and 5 (tests/interop/health_causes.mjs), seen in
the health verdict (`health_url`), fixed from the dashboard with the fix its health panel shows, and
then seen healthy again by the verdict and by Node's own getters (isPaused, getGlobalConcurrency,
getRateLimitTtl, getDeduplicationJobId, getJobCounts)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from django.test import AsyncClient

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from queues.models import QueueRef
from tests.support.bullmq_versions import BULLMQ_DIRS, NodeScript

pytestmark = [pytest.mark.interop]

QUEUE = QueueRef("default", "bull", "hq")
CHILD = QueueRef("default", "bull", "hq-child")
Cause = Callable[..., Awaitable[NodeScript]]


@pytest.fixture(params=sorted(BULLMQ_DIRS, reverse=True), ids=lambda version: f"bullmq{version}")
def version(request: pytest.FixtureRequest) -> str:
    """The major version of Node BullMQ that makes the cause."""
    return str(request.param)


@pytest.fixture
async def cause(redis_url: str, version: str) -> AsyncIterator[Cause]:
    """Start health_causes.mjs for a cause with this test's BullMQ version; wait until it holds."""
    started: list[NodeScript] = []

    async def start(name: str, *queues: str) -> NodeScript:
        script = await NodeScript.start(version, "health_causes.mjs", redis_url, name, *queues)
        started.append(script)
        ready = await script.line()
        assert ready["step"] == "ready" and ready["version"].split(".")[0] == version, ready
        script.ready = ready
        return script

    yield start
    for script in started:
        await script.close()


async def health(client: AsyncClient, queue: QueueRef = QUEUE) -> dict[str, Any]:
    """The API's verdict, found through the queue's own `health_url`."""
    detail = (await client.get(links.queue_api_url(queue))).json()
    response = await client.get(detail["health_url"])
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"verdict", "reasons", "checked_at"}
    return body


def reason(body: dict[str, Any], code: str) -> dict[str, Any]:
    """The reason with this code (fails when the verdict has none)."""
    found = [each for each in body["reasons"] if each["code"] == code]
    assert found, (code, body)
    return found[0]


def codes(body: dict[str, Any]) -> set[str]:
    return {each["code"] for each in body["reasons"]}


async def fix(client: AsyncClient, queue: QueueRef, action: str, **params: Any) -> dict[str, Any]:
    """POST the action as the page's fix does (through the queue's actions map), check it is audited."""
    actions = (await client.get(links.queue_api_url(queue))).json()["actions"]
    response = await client.post(actions[action], data=json.dumps(params), content_type="application/json")
    await wait_all()
    assert response.status_code == 200, response.json()
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None and (entry.action, entry.result) == (action, "done")
    body: dict[str, Any] = response.json()
    return body


async def fix_shown(client: AsyncClient, queue: QueueRef, fix_name: str) -> str:
    """The queue page, which shows the fix next to its reason in the health panel."""
    page = (await client.get(links.queue_url(queue))).content.decode()
    assert f'data-fix="{fix_name}"' in page, fix_name
    # The same fix as the page loads it after a push (the panel is pushed without anyone's buttons).
    body = (await health(client, queue))["reasons"]
    pushed = [
        (await client.get(links.health_fix_url(queue, each["code"], each["value"]))).content.decode()
        for each in body
    ]
    assert any(f'data-fix="{fix_name}"' in each for each in pushed), fix_name
    return page


def getters(answer: dict[str, Any], queue: QueueRef = QUEUE) -> dict[str, Any]:
    found: dict[str, Any] = answer["queues"][queue.name]
    return found


def backlog(counts: dict[str, int]) -> int:
    return counts.get("waiting", 0) + counts.get("paused", 0) + counts.get("prioritized", 0)


async def test_a_paused_queue_is_stuck_until_resumed(admin_client: AsyncClient, cause: Cause) -> None:
    node = await cause("paused", QUEUE.name)
    before = await health(admin_client)
    assert before["verdict"] == "stuck"
    paused = reason(before, "paused")
    assert paused["value"] == 3 and "paused with 3 jobs waiting" in paused["message"]
    assert "no_workers" not in codes(before)
    await fix_shown(admin_client, QUEUE, "resume")

    await fix(admin_client, QUEUE, "resume")
    after = getters(await node.send("settle"))
    assert after["isPaused"] is False
    assert backlog(after["counts"]) == 0 and after["counts"]["completed"] == 3
    healed = await health(admin_client)
    assert (healed["verdict"], healed["reasons"]) == ("idle", [])


async def test_a_queue_at_its_global_concurrency_takes_more_once_it_is_raised(
    admin_client: AsyncClient, cause: Cause
) -> None:
    node = await cause("at_capacity", QUEUE.name)
    before = await health(admin_client)
    assert before["verdict"] == "degraded"
    capped = reason(before, "at_capacity")
    assert capped["value"] == 2 and "global concurrency of 2 with 2 active" in capped["message"]
    await fix_shown(admin_client, QUEUE, "set_global_concurrency")

    await fix(admin_client, QUEUE, "set_global_concurrency", concurrency=6)
    busy = getters(await node.send("wait-active 6"))
    assert busy["globalConcurrency"] == 6
    assert busy["counts"]["active"] == 6 and backlog(busy["counts"]) == 0
    running = await health(admin_client)
    assert (running["verdict"], running["reasons"]) == ("healthy", [])

    removed = await fix(admin_client, QUEUE, "set_global_concurrency", concurrency=0)
    assert removed["done"] == 1
    assert getters(await node.send("getters"))["globalConcurrency"] is None
    await node.send("release")
    done = getters(await node.send("settle"))
    assert done["counts"]["completed"] == 6
    assert (await health(admin_client))["verdict"] == "idle"


async def test_a_rate_limited_queue_moves_once_the_limit_is_released(
    admin_client: AsyncClient, cause: Cause
) -> None:
    node = await cause("rate_limited", QUEUE.name)
    assert 0 < node.ready["rateLimitTtl"] <= 60_000
    before = await health(admin_client)
    assert before["verdict"] == "degraded"
    limited = reason(before, "rate_limited")
    assert 0 < limited["value"] <= 60_000 and "rate-limited for" in limited["message"]
    await fix_shown(admin_client, QUEUE, "remove_rate_limit_key")

    released = await fix(admin_client, QUEUE, "remove_rate_limit_key")
    assert released["done"] == 1
    now = getters(await node.send("getters"))
    assert now["rateLimitTtl"] == -2
    assert now["ids"]["waiting"] == ["r-2"]  # the limited worker sleeps on; a worker asking now may take it
    free = await health(admin_client)
    assert (free["verdict"], free["reasons"]) == ("healthy", [])

    await node.send("worker")  # with the same limiter: it takes r-2 at once, the limit no longer holds
    done = getters(await node.send("settle"))
    assert done["ids"]["completed"] == ["r-2", "r-1"]
    assert (await health(admin_client))["verdict"] == "idle"


async def test_jobs_stalled_by_a_killed_worker_are_listed_and_processed_again(
    admin_client: AsyncClient, cause: Cause, settings: Any
) -> None:
    node = await cause("stalled", QUEUE.name)
    assert node.ready["stalled"] == ["s-1", "s-2", "s-3"]
    before = await health(admin_client)
    assert before["verdict"] == "degraded"
    stalled = reason(before, "stalled")
    assert stalled["value"] == 3 and "3 jobs stalled in the last" in stalled["message"]
    assert "no_workers" in codes(before)  # the worker was killed; only the stall checker ran
    page = await fix_shown(admin_client, QUEUE, "stalled_jobs")
    waiting_url = links.queue_list_url(QUEUE, "waiting")
    assert waiting_url.replace("&", "&amp;") in page
    listed = (await admin_client.get(links.jobs_api_url(QUEUE), {"state": "waiting"})).json()
    assert sorted(job["id"] for job in listed["jobs"]) == ["s-1", "s-2", "s-3"]

    await node.send("worker")
    done = getters(await node.send("settle"))
    assert done["counts"]["completed"] == 3 and backlog(done["counts"]) == 0
    after = await health(admin_client)
    # The stalls stay in the events window (10 minutes by default): listed, and nothing else is wrong.
    assert codes(after) == {"stalled"} and after["verdict"] == "degraded"
    settings.BULLMQ_DASHBOARD = {**settings.BULLMQ_DASHBOARD, "HEALTH": {"STALLED": 4}}
    assert (await health(admin_client))["verdict"] == "idle"


async def test_a_deduplication_id_is_looked_up_and_released(admin_client: AsyncClient, cause: Cause) -> None:
    node = await cause("deduplicated", QUEUE.name)
    ready = node.ready
    assert (ready["first"], ready["second"]) == ("d-1", "d-1")  # Node dropped the second add
    before = await health(admin_client)
    dropped = reason(before, "deduplicated")
    assert dropped["value"] == 1 and before["verdict"] == "idle"  # listed, never changes the verdict
    await fix_shown(admin_client, QUEUE, "dedup_lookup")  # the lookup form

    looked = (await admin_client.get(links.dedup_api_url(QUEUE, "report-42"))).json()
    assert (looked["status"], looked["job"]["id"], looked["job"]["state"]) == ("held", "d-1", "delayed")
    assert getters(await node.send("getters"))["deduplicationJobId"] == "d-1"
    await fix(admin_client, QUEUE, "release_deduplication", dedup_id="report-42")
    assert getters(await node.send("getters"))["deduplicationJobId"] is None

    kept = await node.send("add d-3")
    assert kept["id"] == "d-3"  # no longer deduplicated
    done = getters(await node.send("settle"))
    assert done["ids"]["completed"] == ["d-3"] and done["ids"]["delayed"] == ["d-1"]
    assert (await health(admin_client))["verdict"] == "idle"


async def test_a_parent_waiting_on_a_stuck_child_queue_moves_once_that_queue_is_fixed(
    admin_client: AsyncClient, cause: Cause
) -> None:
    node = await cause("flow", QUEUE.name, CHILD.name)
    parent = await health(admin_client)
    assert parent["verdict"] == "stuck"
    waits = reason(parent, "children_stuck")
    assert waits["value"] == CHILD.key
    child = await health(admin_client, CHILD)
    assert child["verdict"] == "stuck" and reason(child, "paused")["value"] == 1
    page = await fix_shown(admin_client, QUEUE, "child_queue")
    assert links.queue_url(CHILD) + "#health" in page
    await fix_shown(admin_client, CHILD, "resume")

    await fix(admin_client, CHILD, "resume")
    done = await node.send("settle")
    assert getters(done, CHILD)["isPaused"] is False
    assert getters(done, CHILD)["ids"]["completed"] == ["child-1"]
    assert getters(done)["ids"]["completed"] == ["parent-1"]
    assert (await health(admin_client))["verdict"] == "idle"
    assert (await health(admin_client, CHILD))["verdict"] == "idle"


async def test_the_oldest_delayed_job_is_promoted_and_processed(
    admin_client: AsyncClient, cause: Cause
) -> None:
    node = await cause("delayed", QUEUE.name)
    assert (await health(admin_client))["verdict"] == "idle"
    promoted = await fix(admin_client, QUEUE, "promote_oldest_delayed")
    assert "Job l-1, the delayed job due first" in promoted["message"]
    done = getters(await node.send("settle"))
    assert done["ids"]["completed"] == ["l-1"] and done["ids"]["delayed"] == ["l-3", "l-2"]
    assert (await health(admin_client))["verdict"] == "idle"
