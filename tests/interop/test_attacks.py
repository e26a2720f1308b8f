"""The security attacks of tests/integration/test_security.py, on data written by real Node BullMQ 6.7.

attack_state.mjs builds the state once per module with Node's own API: failed jobs whose custom ids
are path tricks, a queue that a job named `active` broke, flows across `orders` and `payments`, and a
flow parent. Each test points the dashboard at that Redis, attacks it over HTTP, and checks with a DUMP
of every key that nothing changed but what the action had to change, and with Node's own getters
(attack_getters.mjs) that Node agrees with the result.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import AsyncClient, override_settings
from django.utils.html import escape
from redis.asyncio import Redis

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from dashboard.registry import reset_directories
from queues.keys import new_job_id_problem
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.node import run_node
from tests.support.snapshot import Snapshot, changed
from tests.support.snapshot import snapshot as every_key
from tests.support.urls import dashboard_url

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

IDS = QueueRef("default", "bull", "attack-ids")
RESERVED = QueueRef("default", "bull", "attack-reserved")
HEALTHY = QueueRef("default", "bull", "attack-healthy")
ORDERS = QueueRef("default", "bull", "orders")
FLOW = QueueRef("default", "bull", "attack-flow")
# The ids attack_state.mjs gives the failed jobs of bull:attack-ids, in the order they failed.
PATH_TRICKS = ["../../actions/drain/", "a/../../x", "..", ".", "%2e%2e/", "x?y#z", "sp ace+&=", "ü🚀"]
WAITING = ["w1", "w2", "w3"]


@dataclass(frozen=True)
class AttackState:
    """The Redis attack_state.mjs filled, and what it printed."""

    url: str
    built: dict[str, Any]


@pytest.fixture(scope="module")
def attack_state() -> Iterator[AttackState]:
    """A throwaway Redis holding the attack state, written by Node BullMQ once for this module."""
    with ThrowawayRedis() as server:
        yield AttackState(server.url, run_node("attack_state.mjs", server.url))


@pytest.fixture
def attack(attack_state: AttackState) -> Iterator[AttackState]:
    """The dashboard pointed at the attack Redis for one test."""
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(attack_state.url)):
        reset_directories()
        yield attack_state
    reset_directories()


@pytest.fixture
async def raw(attack: AttackState) -> AsyncIterator[Redis]:
    """A raw client of the attack Redis, for snapshots and for malformed or bulk data."""
    client = Redis.from_url(attack.url)
    yield client
    await client.aclose()


@pytest.fixture
async def admin(attack: AttackState, superuser: Any) -> AsyncIterator[AsyncClient]:
    """A logged-in superuser; background operations are awaited and the dashboard closed after."""
    client = AsyncClient()
    await client.aforce_login(superuser)
    yield client
    await wait_all()
    await close_dashboard()


@pytest.fixture
async def operator(attack: AttackState, staff_user: Any) -> AsyncIterator[AsyncClient]:
    """A logged-in staff user with no action permission unless a test grants one."""
    client = AsyncClient()
    await client.aforce_login(staff_user)
    yield client
    await wait_all()
    await close_dashboard()


def is_volatile(key: bytes) -> bool:
    """BullMQ's `stalled-check` key expires by itself (a worker's stalled-jobs timer), so it is left out."""
    return key.endswith(b":stalled-check")


async def snapshot(client: Redis) -> Snapshot:
    """Every key of the Redis and its content, but the keys that expire by themselves."""
    return await every_key(client, skip=is_volatile)


async def commands(client: Redis) -> int:
    """Commands Redis processed so far, commands inside scripts included (INFO itself adds one)."""
    return int((await client.info("stats"))["total_commands_processed"])


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    response = await client.post(url, data=json.dumps(params), content_type="application/json")
    await wait_all()
    return response


def node_view(url: str, name: str, ids: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Node BullMQ's getJobCounts, waiting and failed ids, and getJob of each of `ids`."""
    return run_node("attack_getters.mjs", url, stdin=json.dumps({"name": name, "ids": list(ids)}))


async def grant(user: Any, *codenames: str) -> None:
    for codename in codenames:
        permission = await Permission.objects.aget(
            codename=codename, content_type__app_label="bullmq_dashboard"
        )
        await user.user_permissions.aadd(permission)


async def audit_trail() -> list[tuple[str, str, list[str]]]:
    return [(e.action, e.result, e.job_ids) async for e in AuditEntry.objects.order_by("id")]


def test_node_built_the_attack_state_it_was_asked_for(attack_state: AttackState) -> None:
    built = attack_state.built
    assert built["ids"]["failed"] == PATH_TRICKS and built["ids"]["waiting"] == WAITING
    assert built["reserved"]["activeKeyType"] == {"before": "none", "after": "hash"}
    assert "WRONGTYPE" in built["reserved"]["nodeGetJobCounts"]["error"]  # Node itself trips over it
    assert built["flows"]["states"] == {
        "order-1": "waiting-children",
        "render-1": "failed",
        "pay-1": "waiting",
        "invoice-1": "waiting-children",
    }
    assert built["flows"]["renderParentKey"] == "bull:payments:invoice-1"
    assert built["big"]["states"] == {"big-parent": "waiting-children", "big-child": "waiting"}


# ------------------------------------------------------------------ 1. ids are data, never path


@pytest.mark.parametrize("job_id", PATH_TRICKS)
async def test_a_node_path_trick_id_is_shown_retried_and_removed_alone(
    admin: AsyncClient, attack: AttackState, raw: Redis, job_id: str
) -> None:
    job_key = f"bull:attack-ids:{job_id}".encode()
    wait, failed = b"bull:attack-ids:wait", b"bull:attack-ids:failed"
    node_before = node_view(attack.url, "attack-ids", [job_id, *WAITING])
    assert node_before["jobs"][job_id]["state"] == "failed"
    assert node_before["waiting"] == WAITING
    before = await snapshot(raw)
    waiting_before = await raw.lrange(wait, 0, -1)

    page = await admin.get(links.job_url(IDS, job_id))
    assert page.status_code == 200, page.content
    html = page.content.decode()
    assert f'<span class="subtitle mono" id="job-id">#{escape(job_id)}</span>' in html
    assert escape(f"refused {job_id}") in html
    api = await admin.get(links.job_api_url(IDS, job_id))
    assert api.status_code == 200
    detail = api.json()
    assert (detail["id"], detail["state"], detail["data"]) == (job_id, "failed", {"jobId": job_id})
    assert detail["failedReason"] == f"refused {job_id}"
    assert detail["api_url"] == links.job_api_url(IDS, job_id)
    listing = (await admin.get(links.queue_url(IDS) + "?state=failed")).content.decode()
    retry_url = links.job_action_url(IDS, "retry", job_id)
    assert retry_url.startswith(dashboard_url("default/bull:attack-ids/job/actions/retry/?id="))
    assert f'hx-post="{escape(retry_url)}"' in listing
    assert await snapshot(raw) == before  # reading changed nothing

    retried = await post(admin, retry_url)
    assert retried.status_code == 200, retried.content
    after_retry = await snapshot(raw)
    assert await raw.lrange(wait, 0, -1) == [job_id.encode(), *waiting_before]
    assert await raw.zscore(failed, job_id) is None
    assert changed(before, after_retry) <= {
        job_key,
        wait,
        failed,
        b"bull:attack-ids:events",
        b"bull:attack-ids:marker",
    }
    node_retried = node_view(attack.url, "attack-ids", [job_id, *WAITING])
    assert node_retried["jobs"][job_id]["state"] == "waiting"
    assert node_retried["counts"]["failed"] == node_before["counts"]["failed"] - 1
    assert node_retried["counts"]["waiting"] == node_before["counts"]["waiting"] + 1

    removed = await post(admin, links.job_action_url(IDS, "remove", job_id))
    assert removed.status_code == 200, removed.content
    after = await snapshot(raw)
    emptied = {failed} if node_before["counts"]["failed"] == 1 else set()  # its last member went
    assert before.keys() - after.keys() == {job_key} | emptied and after.keys() <= before.keys()
    assert changed(before, after) <= {
        job_key,
        wait,
        failed,
        b"bull:attack-ids:events",
        b"bull:attack-ids:marker",
    }
    assert await raw.lrange(wait, 0, -1) == waiting_before
    for waiting in WAITING:  # never drained, never touched
        key = f"bull:attack-ids:{waiting}".encode()
        assert after[key] == before[key]

    node_after = node_view(attack.url, "attack-ids", [job_id, *WAITING])
    assert node_after["jobs"][job_id] is None
    assert node_after["waiting"] == WAITING
    assert node_after["failed"] == [other for other in node_before["failed"] if other != job_id]
    assert node_after["counts"] == {**node_before["counts"], "failed": node_before["counts"]["failed"] - 1}
    assert all(node_after["jobs"][w]["state"] == "waiting" for w in WAITING)
    assert await audit_trail() == [("retry", "done", [job_id]), ("remove", "done", [job_id])]


# ------------------------------------------------------------------ 2. only jobs are jobs

QUEUE_OWN_KEYS = [
    "meta",
    "events",
    "wait",
    "active",
    "failed",
    "completed",
    "delayed",
    "prioritized",
    "waiting-children",
    "paused",
    "id",
    "marker",
    "stalled-check",
    "stalled",
    "limiter",
    "pc",
    "repeat",
    "de:x",
    "metrics:failed",
    "w1:logs",
    "w1:lock",
    "w1:dependencies",
    "w1:processed",
]


@pytest.mark.parametrize("job_id", QUEUE_OWN_KEYS)
async def test_ids_naming_a_node_queues_own_keys_are_404_without_a_redis_command(
    admin: AsyncClient, attack: AttackState, raw: Redis, job_id: str
) -> None:
    assert (await admin.get(links.queue_url(IDS))).status_code == 200  # discovered and cached
    before_keys = await snapshot(raw)
    before = await commands(raw)
    for url in (
        links.job_url(IDS, job_id),
        links.job_api_url(IDS, job_id),
        links.logs_url(IDS, job_id),
        links.raw_field_url(IDS, job_id, "data"),
    ):
        response = await admin.get(url, headers={"HX-Request": "true"} if "/logs/" in url else {})
        assert response.status_code == 404, (url, response.status_code)
    for action in ("retry", "remove"):
        response = await post(admin, links.job_action_url(IDS, action, job_id))
        assert response.status_code == 404, (action, response.content)
    assert await commands(raw) == before + 1  # only the INFO that counted
    assert await snapshot(raw) == before_keys


# ------------------------------------------------------------------ 3. a queue broken by Node


async def test_a_queue_node_broke_with_a_job_named_active_breaks_only_its_row(
    admin: AsyncClient, attack: AttackState, raw: Redis
) -> None:
    before = await snapshot(raw)
    overview = await admin.get(dashboard_url())
    assert overview.status_code == 200
    assert "bull:attack-reserved:active is a hash" in overview.content.decode()
    listing = await admin.get(dashboard_url("api/queues/"))
    assert listing.status_code == 200
    by_key = {queue["key"]: queue for queue in listing.json()["queues"]}
    healthy_node = attack.built["reserved"]["healthy"]["counts"]
    healthy = by_key["bull:attack-healthy"]
    assert healthy["problem"] is None
    assert {state: healthy["counts"][state] for state in healthy_node} == healthy_node
    broken = by_key["bull:attack-reserved"]
    assert "bull:attack-reserved:active" in broken["problem"]
    assert broken["counts"]["waiting"] == 2  # r1 and the job `active` are in its wait list
    assert by_key["bull:attack-ids"]["problem"] is None
    assert (await admin.get(links.queue_url(RESERVED) + "?state=waiting")).status_code == 200
    active_tab = await admin.get(links.queue_url(RESERVED) + "?state=active")
    assert active_tab.status_code == 200 and b"its jobs cannot be listed" in active_tab.content
    assert (await admin.get(links.queue_api_url(RESERVED))).status_code == 200

    for job_id in ("active", "meta", "events", "2", "a:b"):
        added = await post(admin, links.queue_action_url(HEALTHY, "add"), name="x", data="{}", jobId=job_id)
        assert added.status_code == 400, (job_id, added.content)
        problem = new_job_id_problem(job_id)
        assert problem and problem in added.json()["message"]
    assert await snapshot(raw) == before
    node = node_view(attack.url, "attack-healthy", ["h1", "h2", "active"])
    assert node["countsError"] is None and node["counts"] == healthy_node  # Node still reads it
    assert node["jobs"]["active"] is None and node["waiting"] == ["h1", "h2"]
    assert [result for _action, result, _ids in await audit_trail()] == ["invalid"] * 5


# ------------------------------------------------------------------ 4. read-only through Node flows


async def test_read_only_payments_hold_through_node_flows(
    admin: AsyncClient, attack: AttackState, raw: Redis
) -> None:
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(attack.url, READ_ONLY_QUEUES=["bull:payments"])
    ):
        reset_directories()
        before = await snapshot(raw)
        attempts = [
            (links.job_action_url(ORDERS, "remove", "order-1"), {}),
            (links.job_action_url(ORDERS, "retry", "render-1"), {}),
            (links.job_action_url(ORDERS, "remove", "render-1"), {}),
            (links.queue_action_url(ORDERS, "clean"), {"state": "failed", "grace": 0, "limit": 0}),
            (links.queue_action_url(ORDERS, "retry_all"), {"state": "failed"}),
            (links.queue_action_url(ORDERS, "obliterate"), {"confirm": "orders", "force": "1"}),
            (links.bulk_url(ORDERS), {"action": "retry", "ids": ["render-1"]}),
            (links.bulk_url(ORDERS), {"action": "remove", "ids": ["order-1"]}),
        ]
        for url, params in attempts:
            response = await post(admin, url, **params)
            assert response.status_code == 403, (url, response.content)
            assert "bull:payments is read-only" in response.json()["message"], url
        assert await snapshot(raw) == before  # payments and everything else byte-identical

        kept = await post(admin, links.job_action_url(ORDERS, "remove", "order-1"), keep_children="1")
        assert kept.status_code == 200, kept.content
        after = await snapshot(raw)
    reset_directories()
    # order-1 was the only job of orders waiting for children: its set goes with it.
    gone = {b"bull:orders:order-1", b"bull:orders:order-1:dependencies", b"bull:orders:waiting-children"}
    assert before.keys() - after.keys() == gone and after.keys() <= before.keys()
    assert changed(before, after) <= gone | {b"bull:orders:events"}
    assert not any(key.startswith(b"bull:payments:") for key in changed(before, after))
    orders = node_view(attack.url, "orders", ["order-1", "render-1"])
    assert orders["jobs"] == {
        "order-1": None,
        "render-1": {"state": "failed", "name": "render", "attemptsMade": 1},
    }
    payments = node_view(attack.url, "payments", ["pay-1", "invoice-1"])
    assert payments["jobs"]["pay-1"]["state"] == "waiting"
    assert payments["jobs"]["invoice-1"]["state"] == "waiting-children"
    assert payments["counts"] == attack.built["flows"]["counts"]["payments"]
    results = [result for _action, result, _ids in await audit_trail()]
    assert results == ["refused"] * len(attempts) + ["done"]


# ------------------------------------------------------------------ 5. bounded reads


async def test_a_node_flow_parent_with_200k_processed_children_costs_a_bounded_read(
    admin: AsyncClient, attack: AttackState, raw: Redis
) -> None:
    processed = "bull:attack-flow:big-parent:processed"
    assert not await raw.exists(processed)
    # Bulk data: 200,000 processed children, written raw (Node would need 200,000 jobs for it).
    await raw.hset(processed, mapping={f"bull:attack-flow:child-{i}": "null" for i in range(200_000)})
    try:
        assert (await admin.get(links.queue_url(FLOW))).status_code == 200
        before_keys = await snapshot(raw)
        before = await commands(raw)
        page = await admin.get(links.job_url(FLOW, "big-parent"))
        spent = await commands(raw) - before
        assert page.status_code == 200
        assert len(page.content) < 300_000, len(page.content)
        assert spent < 1000, spent
        assert b"200,000 processed" in page.content or b"200000 processed" in page.content
        api = (await admin.get(links.job_api_url(FLOW, "big-parent"))).json()
        assert api["state"] == "waiting-children"
        assert api["childrenCounts"]["processed"] == 200_000
        # A page of each kind of child: the pending one Node wrote, and 100 of the processed ones.
        pending = [child["id"] for child in api["children"] if not child["processed"]]
        assert pending == ["big-child"]
        assert len(api["children"]) - len(pending) == 100
        for job_id in ("big-parent:processed", "big-parent:dependencies"):
            assert (await admin.get(links.job_url(FLOW, job_id))).status_code == 404
            assert (await admin.get(links.job_api_url(FLOW, job_id))).status_code == 404
        assert await snapshot(raw) == before_keys
    finally:
        await raw.delete(processed)


# ------------------------------------------------------------------ 6. only BullMQ queues are queues


async def test_application_keys_next_to_node_queues_are_no_queue(
    admin: AsyncClient, attack: AttackState, raw: Redis
) -> None:
    secret = b"pbkdf2$application-secret"
    await raw.set("user:42:id", "42")
    await raw.hset("user:42:profile", mapping={"password_hash": secret, "timestamp": "1", "name": "x"})
    try:
        before = await snapshot(raw)
        for url in (
            dashboard_url("default/user:42/"),
            dashboard_url("default/user:42/job/?id=profile"),
            dashboard_url("default/user:42/job/raw/?id=profile&field=password_hash"),
            dashboard_url("api/queues/default/user:42/"),
            dashboard_url("api/queues/default/user:42/job/?id=profile"),
        ):
            response = await admin.get(url)
            assert response.status_code == 404, (url, response.status_code)
            assert secret not in response.content
        overview = await admin.get(dashboard_url())
        assert overview.status_code == 200
        assert b"user:42" not in overview.content and secret not in overview.content
        listing = await admin.get(dashboard_url("api/queues/"))
        assert secret not in listing.content
        keys = {queue["key"] for queue in listing.json()["queues"]}
        assert keys == {f"{q['prefix']}:{q['name']}" for q in attack.built["queues"]}
        assert await snapshot(raw) == before
    finally:
        await raw.delete("user:42:id", "user:42:profile")


# ------------------------------------------------------------------ 7. permissions are exact


async def test_removing_all_failed_needs_more_than_the_remove_job_permission(
    operator: AsyncClient, staff_user: Any, attack: AttackState, raw: Redis
) -> None:
    await grant(staff_user, "remove_job")
    node_before = node_view(attack.url, "attack-ids")
    before = await snapshot(raw)
    refused = await post(operator, links.bulk_url(IDS), action="remove", all="1", state="failed")
    assert refused.status_code == 403, refused.content
    assert "clean" in refused.json()["message"].lower()
    form = await operator.post(links.bulk_url(IDS), {"action": "remove", "all": "1", "state": "failed"})
    assert form.status_code == 403
    assert await snapshot(raw) == before
    assert node_view(attack.url, "attack-ids") == node_before
    assert [result for _action, result, _ids in await audit_trail()] == ["refused", "refused"]
