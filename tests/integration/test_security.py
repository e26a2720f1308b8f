"""Attack tests of the security invariants (docs/security.md), against a throwaway Redis.

Job ids are data and never URL structure; only jobs are read as jobs; only BullMQ queues inside the
configured prefixes are opened; add/duplicate refuse ids that break queues; permissions are exact;
writes use the configured connection and never run twice; one broken queue breaks one row; the audit
log can be neither lost nor flooded. Node-written data for the same attacks: tests/interop/.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from dashboard.registry import reset_directories
from queues.keys import new_job_id_problem, not_a_job
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis
from tests.support.builders import add_jobs, process
from tests.support.dashboard import dashboard_settings
from tests.support.snapshot import snapshot
from tests.support.urls import dashboard_url

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
PATH_TRICKS = ["../../actions/drain/", "a/../../x", "..", ".", "x/./y", "%2e%2e/", "#frag", "?q=1", "sp ace+"]


async def commands(client: Redis) -> int:
    """Commands Redis processed so far, commands inside scripts included (INFO itself adds one)."""
    return int((await client.info("stats"))["total_commands_processed"])


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


async def fail_all(url: str, count: int, name: str = "email") -> None:
    async def fail(job: Any, token: str) -> None:
        raise RuntimeError(f"boom {job.id}")

    await process(url, name, fail, until=count)


async def grant(user: Any, *codenames: str) -> None:
    for codename in codenames:
        permission = await Permission.objects.aget(
            codename=codename, content_type__app_label="bullmq_dashboard"
        )
        await user.user_permissions.aadd(permission)


# ------------------------------------------------------------------ 1. ids are data, never path


@pytest.mark.parametrize("job_id", PATH_TRICKS)
async def test_retry_and_remove_of_a_path_trick_id_change_only_that_job(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis, job_id: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": job_id})])
    await fail_all(redis_url, 1)
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"w{i}"}) for i in range(3)])
    waiting_before = await redis_client.lrange("bull:email:wait", 0, -1)

    listing = (await admin_client.get(links.queue_url(EMAIL) + "?state=failed")).content.decode()
    retry_url = links.job_action_url(EMAIL, "retry", job_id)
    assert f'hx-post="{retry_url}"'.replace("&", "&amp;") in listing
    response = await admin_client.post(retry_url)
    assert response.status_code == 200, response.content
    assert await redis_client.zcard("bull:email:failed") == 0
    assert await redis_client.lrange("bull:email:wait", 0, -1) == [job_id.encode(), *waiting_before]

    removed = await admin_client.post(links.job_action_url(EMAIL, "remove", job_id))
    assert removed.status_code == 200, removed.content
    assert await redis_client.exists(f"bull:email:{job_id}") == 0
    assert await redis_client.lrange("bull:email:wait", 0, -1) == waiting_before
    entries = [entry async for entry in AuditEntry.objects.order_by("id")]
    assert [(e.action, e.result, e.job_ids) for e in entries] == [
        ("retry", "done", [job_id]),
        ("remove", "done", [job_id]),
    ]


async def test_a_job_id_that_is_not_utf8_is_listed_but_never_linked(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "a\ufffd"})])
    await redis_client.hset(b"bull:email:a\xff", mapping={"name": "x", "timestamp": "1"})
    await redis_client.lpush("bull:email:wait", b"a\xff")
    listing = (await admin_client.get(links.queue_url(EMAIL))).content.decode()
    assert "not valid UTF-8" in listing
    # Exactly one link and one set of row actions: the job whose id really is "a\ufffd".
    assert listing.count(links.job_url(EMAIL, "a\ufffd").replace("&", "&amp;")) == 1
    bad_query = await admin_client.get(links.queue_url(EMAIL) + "job/?id=a%FF")
    assert bad_query.status_code == 400


async def test_one_id_only_and_never_empty(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    base = links.queue_url(EMAIL) + "job/"
    assert (await client.get(base)).status_code == 400
    assert (await client.get(base + "?id=")).status_code == 400
    assert (await client.get(base + "?id=j1&id=j2")).status_code == 400
    assert (await client.get(base + "?id=j1")).status_code == 200


async def test_bulk_ids_come_back_exactly_through_the_form(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    tricky = ["cr\rlf\nid", "pct%41", "plus+sign", "amp&eq=1"]
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": job_id}) for job_id in tricky])
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "crlf\nid"}), ("send", {}, {"jobId": "pctA"})])
    page = (await admin_client.get(links.queue_url(EMAIL))).content.decode()
    for job_id in tricky:
        assert f'value="{links.bulk_value(job_id)}"' in page
    response = await admin_client.post(
        links.bulk_url(EMAIL), {"action": "remove", "ids": [links.bulk_value(job_id) for job_id in tricky]}
    )
    assert response.status_code == 200, response.content
    assert response.json()["done"] == 4
    assert sorted(await redis_client.lrange("bull:email:wait", 0, -1)) == [b"crlf\nid", b"pctA"]


# ------------------------------------------------------------------ 2. only jobs are jobs

RESERVED = [
    "meta",
    "events",
    "id",
    "wait",
    "active",
    "paused",
    "prioritized",
    "delayed",
    "completed",
    "failed",
    "waiting-children",
    "stalled",
    "stalled-check",
    "limiter",
    "marker",
    "pc",
    "de",
    "repeat",
    "",
    "j1:logs",
    "j1:lock",
    "parent:processed",
    "parent:dependencies",
    "parent:failed",
    "parent:unsuccessful",
    "de:some-dedup-id",
    "repeat:nightly",
    "metrics:completed",
    "metrics:failed:data",
]


@pytest.mark.parametrize("job_id", [name for name in RESERVED if name])
async def test_ids_naming_the_queues_own_keys_are_404_without_a_redis_read(
    client: AsyncClient, redis_url: str, redis_client: Redis, job_id: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    await client.get(links.queue_url(EMAIL))  # the queue is discovered and cached
    before = await commands(redis_client)
    for url in (
        links.job_url(EMAIL, job_id),
        links.job_api_url(EMAIL, job_id),
        links.logs_url(EMAIL, job_id),
        links.raw_field_url(EMAIL, job_id, "data"),
    ):
        response = await client.get(url, headers={"HX-Request": "true"} if "logs" in url else {})
        assert response.status_code == 404, (url, response.status_code)
    assert await commands(redis_client) == before + 1  # only the INFO that counted


def test_the_reserved_names_are_exactly_the_queue_keys_and_their_shapes() -> None:
    assert all(not_a_job(name) for name in RESERVED)
    for job_id in ("j1", "repeat:nightly:1795849200000", "meta-data", "logs", "a:b:c", "failed-1", "x:meta"):
        assert not_a_job(job_id) is None, job_id


async def test_a_hash_that_is_not_job_shaped_is_404_before_its_contents_are_read(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    await redis_client.hset("bull:email:profile", mapping={"password_hash": "pbkdf2$secret", "email": "x"})
    await redis_client.set("bull:email:note", "a string")
    for job_id in ("profile", "note"):
        for url in (links.job_url(EMAIL, job_id), links.job_api_url(EMAIL, job_id)):
            response = await client.get(url)
            assert response.status_code == 404
            assert b"secret" not in response.content
        raw = await client.get(links.raw_field_url(EMAIL, job_id, "password_hash"))
        assert raw.status_code == 404 and b"secret" not in raw.content


async def test_a_200k_field_flow_hash_costs_a_bounded_read(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("build", {}, {"jobId": "parent"})])
    fields = {f"bull:email:child-{i}": "null" for i in range(200_000)}
    await redis_client.hset("bull:email:parent:processed", mapping=fields)
    await redis_client.hset("bull:email:parent", mapping={f"junk{i}": "x" * 10 for i in range(5000)})
    await client.get(links.queue_url(EMAIL))
    before = await commands(redis_client)
    page = await client.get(links.job_url(EMAIL, "parent"))
    spent = await commands(redis_client) - before
    assert page.status_code == 200
    assert len(page.content) < 300_000
    assert b"200,000 processed" in page.content or b"200000 processed" in page.content
    assert b"5,004 more fields" in page.content or b"more fields than a BullMQ job" in page.content
    # One script: a page of children and the known fields, not 200,000 fields or 5,000 extras.
    assert spent < 800, spent
    api = (await client.get(links.job_api_url(EMAIL, "parent"))).json()
    assert len(api["children"]) == 100 and api["childrenCounts"]["processed"] == 200_000
    assert api["hiddenFields"] == 5000
    assert (await client.get(links.job_url(EMAIL, "parent:processed"))).status_code == 404


async def test_a_wrong_type_state_key_breaks_only_its_own_queue(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "sms", [("send", {}, {}), ("send", {}, {})])
    await redis_client.hset("bull:email:active", mapping={"name": "oops", "timestamp": "1"})
    overview = await client.get(dashboard_url())
    assert overview.status_code == 200
    body = overview.content.decode()
    assert "bull:email:active is a hash" in body
    api = (await client.get(dashboard_url("api/queues/"))).json()
    by_name = {queue["name"]: queue for queue in api["queues"]}
    assert by_name["sms"]["counts"]["waiting"] == 2 and by_name["sms"]["problem"] is None
    assert "bull:email:active is a hash" in by_name["email"]["problem"]
    assert by_name["email"]["counts"]["waiting"] == 1
    page = await client.get(links.queue_url(EMAIL) + "?state=active")
    assert page.status_code == 200 and b"its jobs cannot be listed" in page.content
    assert (await client.get(links.queue_url(EMAIL) + "?state=waiting")).status_code == 200


# ------------------------------------------------------------------ 3. only BullMQ queues are queues


async def test_application_keys_next_to_queues_are_not_a_queue(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.set("user:42:id", "42")
    await redis_client.hset("user:42:profile", mapping={"password_hash": "pbkdf2$secret", "timestamp": "1"})
    await redis_client.xadd("user:42:events", {"event": "login"})
    for url in (dashboard_url("default/user:42/"), dashboard_url("default/user:42/job/?id=profile")):
        response = await client.get(url)
        assert response.status_code == 404 and b"secret" not in response.content
    api = await client.get(dashboard_url("api/queues/default/user:42/job/?id=profile"))
    assert api.status_code == 404
    names = [queue["key"] for queue in (await client.get(dashboard_url("api/queues/"))).json()["queues"]]
    assert names == ["bull:email"]


async def test_prefixes_limit_what_a_url_can_open(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "billing", [("charge", {}, {})], prefix="{tenant-b}")
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(redis_url)
        | {"CONNECTIONS": {"default": {"URL": redis_url, "PREFIXES": ["bull"]}}}
    ):
        reset_directories()
        assert (await client.get(dashboard_url("default/%7Btenant-b%7D:billing/"))).status_code == 404
        assert (await client.get(links.queue_url(EMAIL))).status_code == 200
        admin = await client.get(dashboard_url("api/queues/"))
        assert [queue["key"] for queue in admin.json()["queues"]] == ["bull:email"]


async def test_opening_a_url_never_changes_what_others_are_shown(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    assert [q["name"] for q in (await client.get(dashboard_url("api/queues/"))).json()["queues"]] == ["email"]
    await add_jobs(redis_url, "sms", [("send", {}, {})])  # after the discovery SCAN
    assert (await client.get(links.queue_url(SMS))).status_code == 200
    assert [q["name"] for q in (await client.get(dashboard_url("api/queues/"))).json()["queues"]] == ["email"]


async def test_nothing_is_read_or_written_before_the_user_is_authenticated(
    anonymous_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    before = await commands(redis_client)
    for url in (
        links.queue_url(EMAIL),
        links.job_url(EMAIL, "j1"),
        links.queue_url(QueueRef("default", "bull", "nope")),
        dashboard_url("api/queues/"),
        links.queue_api_url(EMAIL),
    ):
        assert (await anonymous_client.get(url)).status_code in (302, 401)
    for url in (links.job_action_url(EMAIL, "remove", "j1"), links.queue_action_url(EMAIL, "drain")):
        assert (await anonymous_client.post(url)).status_code == 401
    assert await commands(redis_client) == before + 1
    assert await AuditEntry.objects.acount() == 0


# ------------------------------------------------------------------ 4. add and duplicate refuse ids

REFUSED_NEW_IDS = [
    "2",
    "-7",
    "007",
    "a:b",
    "repeat:x:1",
    "active",
    "meta",
    "events",
    "wait",
    "x:logs",
    "de:1",
    "",
]


@pytest.mark.parametrize("job_id", REFUSED_NEW_IDS)
async def test_add_and_duplicate_refuse_ids_that_break_queues(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis, job_id: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {"a": 1}, {"jobId": "orig"})])
    before = await snapshot(redis_client)
    added = await post(admin_client, links.queue_action_url(EMAIL, "add"), name="x", data="{}", jobId=job_id)
    if job_id == "":
        assert added.status_code == 200  # no id: BullMQ chooses one
        return
    assert added.status_code == 400, added.content
    assert new_job_id_problem(job_id) in added.json()["message"]
    copy = await post(admin_client, links.job_action_url(EMAIL, "duplicate", "orig"), jobId=job_id)
    assert copy.status_code == 400
    assert await snapshot(redis_client) == before
    results = [entry.result async for entry in AuditEntry.objects.order_by("id")]
    assert results == ["invalid", "invalid"]


async def test_add_with_an_existing_id_says_so_and_changes_nothing(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {"a": 1}, {"jobId": "taken"})])
    before = await snapshot(redis_client)
    response = await post(admin_client, links.queue_action_url(EMAIL, "add"), name="x", jobId="taken")
    assert response.status_code == 409 and "already exists" in response.json()["message"]
    assert await snapshot(redis_client) == before
    copy = await post(admin_client, links.job_action_url(EMAIL, "duplicate", "taken"), jobId="copy-1")
    assert copy.status_code == 200
    assert json.loads(await redis_client.hget("bull:email:copy-1", "data")) == {"a": 1}


# ------------------------------------------------------------------ 5. permissions are exact


async def test_bulk_all_needs_the_queue_level_permission(
    client: AsyncClient, staff_user: Any, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"w{i}"}) for i in range(5)])
    await grant(staff_user, "remove_job")
    before = await snapshot(redis_client)
    refused = await post(client, links.bulk_url(EMAIL), action="remove", all="1", state="waiting")
    assert refused.status_code == 403 and "clean" in refused.json()["message"].lower()
    assert await snapshot(redis_client) == before
    one = await post(client, links.bulk_url(EMAIL), action="remove", ids=["w1"])
    assert one.status_code == 200 and one.json()["done"] == 1
    await grant(staff_user, "clean_queue")
    everything = await post(client, links.bulk_url(EMAIL), action="remove", all="1", state="waiting")
    await wait_all()
    assert everything.status_code == 200 and await redis_client.llen("bull:email:wait") == 0
    assert [e.action async for e in AuditEntry.objects.order_by("id")] == ["bulk_remove"] * 3


async def test_a_clean_permission_alone_does_not_remove_selected_jobs(
    client: AsyncClient, staff_user: Any, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "w1"})])
    await grant(staff_user, "clean_queue")
    response = await post(client, links.bulk_url(EMAIL), action="remove", ids=["w1"])
    assert response.status_code == 403
    assert await redis_client.exists("bull:email:w1")


def only_email(user: Any, action: str, queue: QueueRef | None) -> bool:
    """A per-queue view restriction: this user sees and acts on bull:email only."""
    from dashboard.permissions import default_permission

    if queue is not None and queue.key != "bull:email":
        return False
    return default_permission(user, action, queue)


async def test_a_per_queue_view_restriction_holds_everywhere(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "e1"})])
    await add_jobs(redis_url, "sms", [("send", {"secret": "sms-data"}, {"jobId": "s1"})])
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_security.only_email"
        )
    ):
        reset_directories()
        overview = (await client.get(dashboard_url())).content
        assert b"bull:email" in overview and b"bull:sms" not in overview
        listed = [q["key"] for q in (await client.get(dashboard_url("api/queues/"))).json()["queues"]]
        assert listed == ["bull:email"]
        for url in (
            links.queue_url(SMS),
            links.queue_api_url(SMS),
            links.jobs_api_url(SMS),
            links.job_url(SMS, "s1"),
            links.job_api_url(SMS, "s1"),
            links.raw_field_url(SMS, "s1", "data"),
            links.find_job_url(SMS) + "?id=s1",
        ):
            response = await client.get(url)
            assert response.status_code == 404, url
            assert b"sms-data" not in response.content
        assert (await client.get(links.job_url(EMAIL, "e1"))).status_code == 200


async def test_the_audit_page_needs_its_permission(
    client: AsyncClient, staff_user: Any, redis_url: str
) -> None:
    assert (await client.get(dashboard_url("audit/"))).status_code == 403
    await grant(staff_user, "view_auditentry")
    assert (await client.get(dashboard_url("audit/"))).status_code == 200


async def test_operation_progress_needs_the_view_permission_of_its_queue(
    admin_client: AsyncClient, client: AsyncClient, redis_url: str
) -> None:
    from dashboard import operations

    await add_jobs(redis_url, "sms", [("send", {}, {})])
    response = await post(admin_client, links.queue_action_url(SMS, "pause"))
    assert response.status_code == 200
    (operation,) = [op for op in operations._operations.values() if op.queue == SMS][-1:]
    url = links.operation_url(operation.id)
    assert (await admin_client.get(url)).status_code == 200
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_security.only_email"
        )
    ):
        assert (await client.get(url)).status_code == 404
    anonymous = AsyncClient()
    assert (await anonymous.get(url)).status_code == 401


# ------------------------------------------------------------------ 6. read-only through flows


async def build_flows(url: str) -> None:
    """orders/order-1 waits on payments/pay-1; payments/invoice-1 waits on orders/render-1 (fails)."""
    from bullmq import FlowProducer

    flow = FlowProducer({"connection": url})
    try:
        await flow.add(
            {
                "name": "order",
                "queueName": "orders",
                "opts": {"jobId": "order-1"},
                "children": [{"name": "pay", "queueName": "payments", "opts": {"jobId": "pay-1"}}],
            }
        )
        await flow.add(
            {
                "name": "invoice",
                "queueName": "payments",
                "opts": {"jobId": "invoice-1"},
                "children": [{"name": "render", "queueName": "orders", "opts": {"jobId": "render-1"}}],
            }
        )
    finally:
        await flow.close()


ORDERS = QueueRef("default", "bull", "orders")


async def test_read_only_holds_through_flow_parents_and_children(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await build_flows(redis_url)

    async def fail(job: Any, token: str) -> None:
        raise RuntimeError("render broke")

    await process(redis_url, "orders", fail, until=1)  # render-1 fails; order-1 still waits on pay-1
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(redis_url, READ_ONLY_QUEUES=["bull:payments"])
    ):
        reset_directories()
        payments = await snapshot(redis_client, "bull:payments:*")
        attempts = [
            (links.job_action_url(ORDERS, "remove", "order-1"), {}),
            (links.job_action_url(ORDERS, "retry", "render-1"), {}),
            (links.job_action_url(ORDERS, "remove", "render-1"), {}),
            (links.queue_action_url(ORDERS, "clean"), {"state": "failed", "grace": 0, "limit": 0}),
            (links.queue_action_url(ORDERS, "retry_all"), {"state": "failed"}),
            (links.queue_action_url(ORDERS, "obliterate"), {"confirm": "orders", "force": "1"}),
            (links.bulk_url(ORDERS), {"action": "retry", "ids": ["render-1"]}),
        ]
        for url, params in attempts:
            response = await post(admin_client, url, **params)
            await wait_all()
            assert response.status_code == 403, (url, response.content)
            assert "bull:payments is read-only" in response.json()["message"]
        assert await snapshot(redis_client, "bull:payments:*") == payments
        kept = await post(admin_client, links.job_action_url(ORDERS, "remove", "order-1"), keep_children="1")
        assert kept.status_code == 200, kept.content
        assert await snapshot(redis_client, "bull:payments:*") == payments
    results = [entry.result async for entry in AuditEntry.objects.order_by("id")]
    assert results == ["refused"] * len(attempts) + ["done"]


# ------------------------------------------------------------------ 7. writes on the configured connection


async def test_redis_stopped_mid_action_is_a_503_within_the_connect_timeout(
    admin_client: AsyncClient, redis_url: str
) -> None:
    server = ThrowawayRedis().start()
    try:
        with override_settings(
            BULLMQ_DASHBOARD={"CONNECTIONS": {"default": {"URL": server.url, "CONNECT_TIMEOUT": 0.5}}}
        ):
            reset_directories()
            await add_jobs(server.url, "email", [("send", {}, {"jobId": "j1"})])
            assert (await admin_client.get(links.queue_url(EMAIL))).status_code == 200
            server.stop()
            loop = asyncio.get_running_loop()
            started = loop.time()
            response = await post(admin_client, links.job_action_url(EMAIL, "remove", "j1"))
            elapsed = loop.time() - started
            assert response.status_code == 503, response.content
            assert "Nothing was changed" in response.json()["message"]
            # No hidden retries with backoff: one connect attempt (the read client may retry once).
            assert elapsed < 5
            pause = await post(admin_client, links.queue_action_url(EMAIL, "pause"))
            assert pause.status_code == 503
    finally:
        server.stop()
        reset_directories()
    entries = [(e.action, e.result) async for e in AuditEntry.objects.order_by("id")]
    assert entries == [("remove", "failed"), ("pause", "failed")]


async def test_a_lost_answer_is_never_sent_again(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    with override_settings(
        BULLMQ_DASHBOARD={"CONNECTIONS": {"default": {"URL": redis_url, "SOCKET_TIMEOUT": 0.3}}}
    ):
        reset_directories()
        await admin_client.get(links.queue_url(EMAIL))
        # Writes wait while Redis is paused: the dashboard's add times out without an answer.
        await redis_client.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
        response = await post(admin_client, links.queue_action_url(EMAIL, "add"), name="once")
        assert response.status_code == 503
        assert "may or may not have run" in response.json()["message"]
        await asyncio.sleep(1.8)
    # A client that retried would have sent the add again and queued a job with a generated id.
    assert await redis_client.lrange("bull:email:wait", 0, -1) == [b"j1"]
    assert await redis_client.get("bull:email:id") == b"1"  # BullMQ counts every add, j1's included
    entry = await AuditEntry.objects.aget()
    assert (entry.action, entry.result) == ("add", "failed")


async def test_a_read_only_replica_answers_why_and_audits(admin_client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    replica = ThrowawayRedis().start()
    try:
        primary = Redis.from_url(redis_url)
        await primary.config_set("repl-diskless-sync-delay", "0")
        await primary.aclose()
        primary_port = redis_url.rsplit(":", 1)[1].split("/")[0]
        sync = Redis.from_url(replica.url)
        await sync.execute_command("REPLICAOF", "127.0.0.1", primary_port)
        for _ in range(200):
            if (await sync.info("replication")).get("master_link_status") == "up":
                break
            await asyncio.sleep(0.05)
        assert await sync.exists("bull:email:j1")
        await sync.aclose()
        with override_settings(BULLMQ_DASHBOARD={"CONNECTIONS": {"default": {"URL": replica.url}}}):
            reset_directories()
            page = await admin_client.get(links.queue_url(EMAIL))
            assert page.status_code == 200  # reads keep working
            for url in (links.queue_action_url(EMAIL, "pause"), links.job_action_url(EMAIL, "remove", "j1")):
                response = await post(admin_client, url)
                assert response.status_code == 503, response.content
                assert "read-only replica" in response.json()["message"]
    finally:
        replica.stop()
        reset_directories()
    assert [(e.result) async for e in AuditEntry.objects.order_by("id")] == ["failed", "failed"]


async def test_out_of_memory_and_wrong_types_are_clear_answers(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    await redis_client.config_set("maxmemory", "1")
    try:
        response = await post(admin_client, links.queue_action_url(EMAIL, "add"), name="x")
        assert response.status_code == 503 and "out of memory" in response.json()["message"]
    finally:
        await redis_client.config_set("maxmemory", "0")
    await redis_client.delete("bull:email:wait")
    await redis_client.hset("bull:email:wait", "x", "1")  # another program broke the wait list
    response = await post(admin_client, links.queue_action_url(EMAIL, "drain"))
    assert response.status_code == 409 and "another type" in response.json()["message"]
    await redis_client.script_flush()
    await redis_client.delete("bull:email:wait")
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j2"})])
    await redis_client.script_flush()
    ok = await post(admin_client, links.job_action_url(EMAIL, "remove", "j2"))
    assert ok.status_code == 200  # NOSCRIPT: the scripts are loaded again
    assert [e.result async for e in AuditEntry.objects.order_by("id")] == ["failed", "failed", "done"]


# ------------------------------------------------------------------ 8. busy is not down


async def test_an_exhausted_pool_is_busy_not_unreachable(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with override_settings(
        BULLMQ_DASHBOARD={
            "CONNECTIONS": {"default": {"URL": redis_url, "MAX_CONNECTIONS": 1, "CONNECT_TIMEOUT": 0.2}},
            "LIVE": {"ENABLED": False},
        }
    ):
        reset_directories()
        await client.get(links.queue_url(EMAIL))
        await redis_client.execute_command("CLIENT", "PAUSE", "800", "ALL")
        first = asyncio.ensure_future(client.get(links.queue_url(EMAIL)))
        await asyncio.sleep(0.1)
        second = await client.get(links.queue_api_url(EMAIL))
        assert second.status_code == 503
        assert "in use" in second.json()["error"] and "unreachable" not in second.json()["error"]
        assert (await first).status_code == 200
    reset_directories()


# ------------------------------------------------------------------ 9. audit cannot be lost or flooded


async def test_a_cancelled_request_still_completes_its_action_and_audit(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"w{i}"}) for i in range(200)])
    request = asyncio.ensure_future(post(admin_client, links.queue_action_url(EMAIL, "drain")))
    for _ in range(200):
        if await AuditEntry.objects.filter(result="started").aexists():
            break
        await asyncio.sleep(0.005)
    request.cancel()
    await wait_all()
    entry = await AuditEntry.objects.aget()
    assert (entry.action, entry.result, entry.count) == ("drain", "done", 200)
    assert await redis_client.llen("bull:email:wait") == 0


async def test_stored_audit_fields_are_bounded(admin_client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    params = {f"p{i}": "x" * 10_000 for i in range(100)}
    response = await post(admin_client, links.queue_action_url(EMAIL, "pause"), **params)
    assert response.status_code == 200
    long_key = "q" * 5000
    refused = await admin_client.post(dashboard_url(f"default/bull:{long_key}/actions/pause/"))
    assert refused.status_code == 404
    for entry in [e async for e in AuditEntry.objects.all()]:
        assert (
            len(json.dumps(entry.params)) < 20 * 600
            and len(entry.queue) <= 500
            and len(entry.message) <= 2000
        )


async def test_refusals_cannot_flood_the_table(
    client: AsyncClient, anonymous_client: AsyncClient, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="bullmq_dashboard.audit")
    await add_jobs(redis_url, "email", [("send", {}, {})])
    for _ in range(50):
        assert (await client.post(links.queue_action_url(EMAIL, "drain"))).status_code == 403
        assert (await anonymous_client.post(links.queue_action_url(EMAIL, "drain"))).status_code == 401
    assert await AuditEntry.objects.acount() == 10
    assert sum("anonymous" in record.getMessage() for record in caplog.records) == 10
