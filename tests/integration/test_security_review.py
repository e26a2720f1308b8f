"""Regression tests of what an adversarial review of the security work broke (docs/security.md), each
the attack as it was made, now answered as the invariants promise."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.audit import ACTIONS_PER_MINUTE
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.integration.test_security import commands, post
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings
from tests.support.live import IN_MEMORY, LiveSocket, cookie_of, count_cell
from tests.support.snapshot import snapshot
from tests.support.urls import dashboard_url, socket_path

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
ORDERS = QueueRef("default", "bull", "orders")
MB = 1024 * 1024


async def flow(url: str, tree: dict[str, Any]) -> None:
    from bullmq import FlowProducer

    producer = FlowProducer({"connection": url})
    try:
        await producer.add(tree)
    finally:
        await producer.close()


# ---------------------------------------------------------------- read-only through any flow depth


@pytest.mark.parametrize("depth", [15, 16, 40])
@pytest.mark.parametrize(
    ("action", "params"), [("clean", {"state": "waiting", "grace": 0, "limit": 0}), ("drain", {})]
)
async def test_a_deep_flow_chain_cannot_reach_a_read_only_queue(
    admin_client: AsyncClient,
    redis_url: str,
    redis_client: Redis,
    depth: int,
    action: str,
    params: dict[str, Any],
) -> None:
    node: dict[str, Any] = {"name": "leaf", "queueName": "orders", "opts": {"jobId": "leaf"}}
    for level in range(depth, 0, -1):
        node = {
            "name": f"p{level}",
            "queueName": "orders",
            "opts": {"jobId": f"p{level}"},
            "children": [node],
        }
    await flow(
        redis_url, {"name": "top", "queueName": "payments", "opts": {"jobId": "top"}, "children": [node]}
    )
    payments = await snapshot(redis_client, "bull:payments:*")
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(redis_url, READ_ONLY_QUEUES=["bull:payments"])
    ):
        reset_directories()
        response = await post(admin_client, links.queue_action_url(ORDERS, action), **params)
        await wait_all()
    assert response.status_code == 403, response.content
    assert await snapshot(redis_client, "bull:payments:*") == payments
    assert await redis_client.exists("bull:orders:leaf")


async def test_drain_of_the_legacy_paused_list_is_checked_too(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await flow(
        redis_url,
        {
            "name": "invoice",
            "queueName": "payments",
            "opts": {"jobId": "invoice-1"},
            "children": [{"name": "render", "queueName": "orders", "opts": {"jobId": "render-1"}}],
        },
    )
    # BullMQ < 5 kept a paused queue's jobs in a `paused` list: move the child there as it did.
    await redis_client.lrem("bull:orders:wait", 0, "render-1")
    await redis_client.rpush("bull:orders:paused", "render-1")
    payments = await snapshot(redis_client, "bull:payments:*")
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(redis_url, READ_ONLY_QUEUES=["bull:payments"])
    ):
        reset_directories()
        response = await post(admin_client, links.queue_action_url(ORDERS, "drain"))
        await wait_all()
    assert response.status_code == 403
    assert await snapshot(redis_client, "bull:payments:*") == payments


# ---------------------------------------------------------------- permissions through flows


async def test_a_per_queue_permission_holds_through_flow_children(
    client: AsyncClient, staff_user: Any, redis_url: str, redis_client: Redis
) -> None:
    children = [{"name": "text", "queueName": "sms", "opts": {"jobId": f"sms-{i}"}} for i in range(3)]
    await flow(
        redis_url,
        {"name": "digest", "queueName": "email", "opts": {"jobId": "digest-1"}, "children": children},
    )
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "alone"})])
    permission = await Permission.objects.aget(
        codename="remove_job", content_type__app_label="bullmq_dashboard"
    )
    await staff_user.user_permissions.aadd(permission)
    sms = await snapshot(redis_client, "bull:sms:*")
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_security.only_email"
        )
    ):
        reset_directories()
        refused = await post(client, links.job_action_url(EMAIL, "remove", "digest-1"))
        assert refused.status_code == 403 and "bull:sms" in refused.json()["message"]
        assert await snapshot(redis_client, "bull:sms:*") == sms
        kept = await post(client, links.job_action_url(EMAIL, "remove", "digest-1"), keep_children="1")
        assert kept.status_code == 200
        assert (await post(client, links.job_action_url(EMAIL, "remove", "alone"))).status_code == 200
    assert await snapshot(redis_client, "bull:sms:*") == sms


# ---------------------------------------------------------------- nested queues


ACME = QueueRef("default", "bull", "acme")
BILLING = QueueRef("default", "bull:acme", "billing")


def only_acme(user: Any, action: str, queue: QueueRef | None) -> bool:
    """A user restricted to bull:acme (whose key is the prefix of another queue)."""
    from dashboard.permissions import default_permission

    if queue is not None and queue.key != "bull:acme":
        return False
    return default_permission(user, action, queue)


async def test_ids_with_colons_never_reach_a_queue_nested_under_this_one(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "acme", [("hello", {}, {"jobId": "a1"})])
    await add_jobs(
        redis_url, "billing", [("charge", {"card": "4111-secret"}, {"jobId": "inv-1"})], prefix="bull:acme"
    )
    await redis_client.lpush("bull:acme:wait", "billing:inv-1")  # the other queue's job, listed here
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_security_review.only_acme"
        )
    ):
        reset_directories()
        for url in (links.job_url(ACME, "billing:inv-1"), links.job_api_url(ACME, "billing:inv-1")):
            response = await admin_client.get(url)
            assert response.status_code == 404 and b"4111-secret" not in response.content
        listing = await admin_client.get(links.queue_url(ACME))
        assert b"belongs to a queue nested" in listing.content and b"4111-secret" not in listing.content
        removed = await post(admin_client, links.job_action_url(ACME, "remove", "billing:inv-1"))
        assert removed.status_code == 404
    assert await redis_client.exists("bull:acme:billing:inv-1")


# ---------------------------------------------------------------- what is a queue


async def test_an_application_meta_hash_is_not_a_queue(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.hset("doc:17:meta", mapping={"version": "3", "paused": "0"})
    await redis_client.hset("doc:17:secret", mapping={"timestamp": "1", "api_key": "sk_live_secret"})
    keys = [queue["key"] for queue in (await client.get(dashboard_url("api/queues/"))).json()["queues"]]
    assert keys == ["bull:email"]
    response = await client.get(dashboard_url("default/doc:17/job/?id=secret"))
    assert response.status_code == 404 and b"sk_live_secret" not in response.content


async def test_the_overview_reads_a_page_of_queues_and_a_bounded_census(
    client: AsyncClient, redis_url: str
) -> None:
    """A page reads its own rows; the census behind the order reads at most OVERVIEW_CENSUS_READS
    queues a view and says how many it has not read yet."""
    for name in ("alpha", "beta", "gamma", "delta"):
        await add_jobs(redis_url, name, [("x", {}, {})])
    limits = {"OVERVIEW_PAGE_SIZE": 2, "OVERVIEW_CENSUS_READS": 3}
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, **limits)):
        reset_directories()
        page = (await client.get(dashboard_url())).content.decode()
        assert page.count('class="queue-row') == 2
        assert "Queues 1\N{EN DASH}2 of 4 · page 1 of 2" in page and "1 queue is not read yet" in page
        second = (await client.get(dashboard_url("?page=2"))).content.decode()
        assert second.count('class="queue-row') == 2 and "Queues 3\N{EN DASH}4 of 4 · page 2 of 2" in second
        beyond = (await client.get(dashboard_url("?page=99"))).content.decode()
        assert "page 2 of 2" in beyond  # past the last page: the last
        found = (await client.get(dashboard_url("?q=gam"))).content.decode()
        assert found.count('class="queue-row') == 1 and 'data-queue="bull:gamma"' in found
        assert "page 1 of" not in found  # one page: no pager


# ---------------------------------------------------------------- bounded copies inside Redis


async def test_huge_values_and_log_lines_are_not_copied_for_a_page(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "uploads", [("upload", {"blob": "x" * (3 * MB)}, {"jobId": "big"})])
    for _ in range(10):
        await redis_client.rpush("bull:uploads:big:logs", "l" * (2 * MB))
    uploads = QueueRef("default", "bull", "uploads")
    api = (await client.get(links.job_api_url(uploads, "big"))).json()
    assert api["data"] == "" and api["truncated"]["data"]["read"] is False
    assert api["truncated"]["data"]["size"] > 3 * MB
    # Lines of about 2 MB are over the 1 MB copy bound: counted, not read.
    assert api["logs"]["count"] == 10 and api["logs"]["items"] == [] and api["logs"]["notRead"] == 10
    page = await client.get(links.job_url(uploads, "big"))
    assert page.status_code == 200 and b"Too large to read for this page" in page.content
    raw = await client.get(links.raw_field_url(uploads, "big", "data"))
    assert raw.status_code == 200 and len(raw.content) > 3 * MB  # the explicit link reads it


async def test_the_watcher_reads_events_projected(
    live_redis: str, client: AsyncClient, redis_client: Redis
) -> None:
    await add_jobs(live_redis, "uploads", [("upload", {}, {"jobId": "u1"})])
    socket = LiveSocket(socket_path(), cookie_of(client))
    assert (await socket.connect())[0]
    await socket.drain(1.0)
    before = int((await redis_client.info("stats"))["total_net_output_bytes"])
    payload = '{"blob":"' + "x" * MB + '"}'
    pipe = redis_client.pipeline(transaction=True)
    for _ in range(100):
        pipe.xadd("bull:uploads:events", {"event": "progress", "jobId": "u1", "data": payload})
    await pipe.execute()
    await socket.drain(2.0)
    sent = int((await redis_client.info("stats"))["total_net_output_bytes"]) - before
    await socket.close()
    # Whole entries would be 100 MB; the watcher reads the wake-up entry whole and the rest projected.
    assert sent < 10 * MB, sent


@pytest.fixture
def live_redis(redis_url: str) -> Iterator[str]:
    live = {"REFRESH_INTERVAL": 0.1, "RESYNC_INTERVAL": 1.0, "RECHECK_INTERVAL": 0.2}
    with override_settings(
        CHANNEL_LAYERS=IN_MEMORY,
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, LIVE=live, PERMISSION="tests.integration.test_security_review.revocable"
        ),
    ):
        HIDDEN.clear()
        reset_directories()
        yield redis_url
        HIDDEN.clear()


HIDDEN: set[str] = set()


def revocable(user: Any, action: str, queue: QueueRef | None) -> bool:
    """The default permission, minus the queues in HIDDEN (a permission withdrawn while sockets are open)."""
    from dashboard.permissions import default_permission

    if queue is not None and queue.key in HIDDEN:
        return False
    return default_permission(user, action, queue)


async def test_the_overview_socket_stops_pushing_a_withdrawn_queue(
    live_redis: str, client: AsyncClient
) -> None:
    await add_jobs(live_redis, "email", [("send", {}, {})])
    await add_jobs(live_redis, "sms", [("send", {}, {})])
    overview = LiveSocket(socket_path(), cookie_of(client))
    assert (await overview.connect())[0]
    await overview.wait_for(count_cell(SMS, "waiting", 1))
    HIDDEN.add("bull:sms")
    await asyncio.sleep(0.6)  # a few re-checks
    overview.received.clear()
    await add_jobs(live_redis, "sms", [("send", {}, {})])
    await add_jobs(live_redis, "email", [("send", {}, {})])
    await overview.wait_for(count_cell(EMAIL, "waiting", 2))
    await overview.drain(0.5)
    assert not any(count_cell(SMS, "waiting", 2)(text) for text in overview.received)
    await overview.close()


# ---------------------------------------------------------------- answers, inputs, audit


async def test_a_fault_after_some_batches_says_what_was_done(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import operations

    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"w{i}"}) for i in range(2500)])
    report = operations.Operation.report

    async def report_then_fill_memory(self: Any, progress: int) -> None:
        await report(self, progress)
        if progress:  # Redis runs out of memory once the first batch is done (a real OOM, timed)
            await redis_client.config_set("maxmemory", "1")

    monkeypatch.setattr(operations.Operation, "report", report_then_fill_memory)
    try:
        response = await post(
            admin_client, links.queue_action_url(EMAIL, "clean"), state="waiting", grace=0, limit=0
        )
        await wait_all()
    finally:
        await redis_client.config_set("maxmemory", "0")
    done = 2500 - await redis_client.llen("bull:email:wait")
    body = response.json()
    assert response.status_code == 503 and done == 1000
    assert body["done"] == done and f"Stopped after {done} done" in body["message"]
    assert "out of memory" in body["message"] and "Nothing was changed" not in body["message"]
    entry = await AuditEntry.objects.aget()
    assert (entry.result, entry.count) == ("failed", done)


async def test_duplicate_copies_only_options_bullmq_accepts(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {"a": 1}, {"jobId": "orig"})])
    await redis_client.hset(
        "bull:email:orig", "opts", json.dumps({"priority": "high", "attempts": 3, "lifo": "yes"})
    )
    response = await post(admin_client, links.job_action_url(EMAIL, "duplicate", "orig"), jobId="copy")
    assert response.status_code == 200, response.content
    assert "lifo, priority" in response.json()["message"]
    opts = json.loads(await redis_client.hget("bull:email:copy", "opts"))
    assert opts["attempts"] == 3 and "priority" not in opts and "lifo" not in opts


async def test_a_parent_key_that_is_not_utf8_is_never_linked(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(
        redis_url, "email", [("send", {}, {"jobId": "child"}), ("send", {}, {"jobId": "pay\ufffd"})]
    )
    await redis_client.hset("bull:email:child", "parentKey", b"bull:email:pay\xff")
    api = (await client.get(links.job_api_url(EMAIL, "child"))).json()
    assert api["parent"]["key"] == "bull:email:pay\ufffd" and "html_url" not in api["parent"]
    page = (await client.get(links.job_url(EMAIL, "child"))).content.decode()
    assert links.job_url(EMAIL, "pay\ufffd").replace("&", "&amp;") not in page


async def test_lone_surrogates_in_json_bodies_are_a_400(admin_client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    for url, body in (
        (links.bulk_url(EMAIL), '{"action": "remove", "ids": ["\\ud800"]}'),
        (links.queue_action_url(EMAIL, "add"), '{"name": "\\ud800"}'),
        (links.job_action_url(EMAIL, "duplicate", "j1"), '{"jobId": "x\\udfff"}'),
    ):
        response = await admin_client.post(url, data=body, content_type="application/json")
        assert response.status_code == 400, (url, response.content)


async def test_actions_are_rate_limited_per_user(
    client: AsyncClient, staff_user: Any, redis_url: str
) -> None:
    permission = await Permission.objects.aget(
        codename="promote_job", content_type__app_label="bullmq_dashboard"
    )
    await staff_user.user_permissions.aadd(permission)
    await add_jobs(redis_url, "email", [("send", {}, {})])
    statuses = [
        (await client.post(links.job_action_url(EMAIL, "promote", f"nope-{i}"))).status_code
        for i in range(ACTIONS_PER_MINUTE + 5)
    ]
    assert statuses[:ACTIONS_PER_MINUTE] == [409] * ACTIONS_PER_MINUTE
    assert set(statuses[ACTIONS_PER_MINUTE:]) == {429}
    assert await AuditEntry.objects.acount() <= ACTIONS_PER_MINUTE + 10


async def test_the_audit_page_hides_entries_of_queues_a_user_may_not_view(
    admin_client: AsyncClient, client: AsyncClient, staff_user: Any, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "sms", [("send", {}, {"jobId": "secret-sms-job"})])
    assert (
        await post(admin_client, links.job_action_url(SMS, "remove", "secret-sms-job"))
    ).status_code == 200
    assert (await post(admin_client, links.queue_action_url(EMAIL, "pause"))).status_code == 200
    permission = await Permission.objects.aget(
        codename="view_auditentry", content_type__app_label="bullmq_dashboard"
    )
    await staff_user.user_permissions.aadd(permission)
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_security.only_email"
        )
    ):
        reset_directories()
        page = (await client.get(dashboard_url("audit/"))).content
    assert b"bull:email" in page and b"secret-sms-job" not in page and b"bull:sms" not in page


async def test_reads_of_reserved_names_still_cost_nothing(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await client.get(links.queue_url(EMAIL))
    before = await commands(redis_client)
    assert (await client.get(links.job_url(EMAIL, "meta"))).status_code == 404
    assert await commands(redis_client) == before + 1
