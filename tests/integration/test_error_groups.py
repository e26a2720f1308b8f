"""Error groups over hostile data (non-UTF-8 reasons, a 5 MB stacktrace, stacktraces that are not JSON,
missing fields, members that are not jobs), the overview's top groups and the all-queues page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import links
from queues.error_groups import CACHE
from queues.models import QueueRef
from tests.support.builders import add_jobs
from tests.support.urls import dashboard_url

pytestmark = pytest.mark.host_compatible

HOSTILE = QueueRef("default", "bull", "hostile")
BROKEN = QueueRef("default", "bull", "broken-failed")
NODE_STACK = "Error: {message}\n    at connect (/app/net.js:{line}:7)\n    at run (/app/worker.js:3:1)"


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    CACHE.clear()


async def failed_job(
    client: Redis, queue: QueueRef, job_id: str | bytes, finished: int, **fields: Any
) -> None:
    """A failed job written by hand (malformed data cannot be made through BullMQ)."""
    raw_id = job_id if isinstance(job_id, bytes) else job_id.encode()
    if fields:
        await client.hset(queue.key_prefix.encode() + raw_id, mapping=fields)
    await client.zadd(queue.key_prefix + "failed", {job_id: finished})


async def hostile_queue(redis_url: str, client: Redis) -> None:
    await add_jobs(redis_url, HOSTILE.name, [("seed", {}, {"jobId": "seed"})])
    base = {"name": "charge", "timestamp": "1000", "data": "{}", "opts": "{}"}
    for i in range(3):
        message = f"Timeout after {100 + i}ms"
        stack = json.dumps([NODE_STACK.format(message=message, line=10 + i)])
        await failed_job(client, HOSTILE, f"ok-{i}", 2000 + i, **base, failedReason=message, stacktrace=stack)
    big = json.dumps(["Error: Timeout after 7ms\n    at " + "x" * (5 * 1024 * 1024)])
    await failed_job(
        client, HOSTILE, "huge-stack", 3000, **base, failedReason="Timeout after 7ms", stacktrace=big
    )
    await failed_job(
        client, HOSTILE, "not-json", 3001, **base, failedReason="Timeout after 8ms", stacktrace="not json {"
    )
    await failed_job(
        client, HOSTILE, "not-a-list", 3002, **base, failedReason="Timeout after 9ms", stacktrace='{"a": 1}'
    )
    await failed_job(
        client,
        HOSTILE,
        "bad-utf8",
        3003,
        **base,
        failedReason=b"bad \xff\xfe bytes <script>alert(1)</script>",
        stacktrace=b'["Error: bad \xff\xfe\\n    at f (/x.js:1:1)"]',
    )
    await failed_job(client, HOSTILE, "missing", 3004, timestamp="1")
    await failed_job(client, HOSTILE, "big-reason", 3005, **base, failedReason="r" * 100_000)
    await client.set(HOSTILE.key_prefix + "string-key", "x")
    await failed_job(client, HOSTILE, "string-key", 3006)
    await failed_job(client, HOSTILE, "gone", 3007)
    await failed_job(client, HOSTILE, b"\xff\xfeid", 3008, **base, failedReason="Timeout after 1ms")


async def test_hostile_failures_are_grouped_without_failing(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await hostile_queue(redis_url, redis_client)
    response = await admin_client.get(links.error_groups_api_url(HOSTILE))
    assert response.status_code == 200
    body = response.json()
    # Every member but the one whose hash is gone is read (string-key counts as read, not grouped).
    assert (body["total"], body["scanned"]) == (12, 11)
    by_message = {(group["exception"], group["message"]): group for group in body["groups"]}

    framed = by_message[("Error", "Timeout after <n>ms")]
    assert framed["count"] == 3
    assert framed["frame"] == "at connect (/app/net.js:<n>)"
    assert (framed["first_seen"], framed["last_seen"]) == (2000, 2002)
    assert framed["sample"]["id"] == "ok-2"

    # Without a readable stack: grouped by failedReason only, and said so.
    by_reason = by_message[(None, "Timeout after <n>ms")]
    assert by_reason["count"] == 4  # huge-stack, not-json, not-a-list, and the id that is not UTF-8
    assert by_reason["grouped_by_reason_only"] == 3
    assert by_reason["not_addressable"] == 1
    assert by_reason["frame"] is None
    assert by_reason["sample"]["id"] == "not-a-list"

    bad = next(group for group in body["groups"] if group["sample"] and group["sample"]["id"] == "bad-utf8")
    assert "\ufffd" in bad["message"]
    missing = next(
        group for group in body["groups"] if group["sample"] and group["sample"]["id"] == "missing"
    )
    assert (missing["message"], missing["exception"]) == ("", None)
    big_reason = next(
        group for group in body["groups"] if group["sample"] and group["sample"]["id"] == "big-reason"
    )
    assert big_reason["message"] == "<failedReason too long to read>"
    assert big_reason["sample"]["failedReason"].startswith("[not read: 100000 bytes]")

    page = await admin_client.get(links.error_groups_url(HOSTILE))
    html = page.content.decode()
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "grouped by failedReason only" in html

    retry = await admin_client.post(
        links.error_group_action_url(HOSTILE, "retry"),
        data=json.dumps({"fingerprint": by_reason["fingerprint"]}),
        content_type="application/json",
    )
    assert retry.status_code == 200, retry.content
    # The id that is not UTF-8 cannot be addressed, so it is not acted on.
    assert retry.json()["done"] == 3
    assert await redis_client.zscore(HOSTILE.key_prefix + "failed", b"\xff\xfeid") is not None


async def test_a_failed_key_of_the_wrong_type_is_a_problem_not_an_error(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, BROKEN.name, [("seed", {}, {})])
    await redis_client.rpush(BROKEN.key_prefix + "failed", "1")
    body = (await admin_client.get(links.error_groups_api_url(BROKEN))).json()
    assert body["groups"] == [] and "not what BullMQ keeps there" in body["problem"]
    page = await admin_client.get(links.error_groups_url(BROKEN))
    assert page.status_code == 200 and "not what BullMQ keeps there" in page.content.decode()


async def test_overview_and_all_queues_page_show_top_groups(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await hostile_queue(redis_url, redis_client)
    overview = (await client.get(dashboard_url())).content.decode()
    assert 'id="top-errors"' in overview
    assert "Timeout after &lt;n&gt;ms" in overview
    assert links.error_groups_url(HOSTILE) in overview
    assert links.all_error_groups_url() in overview  # the top navigation and the section link

    page = await client.get(links.all_error_groups_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('class="error-group"') >= 5
    assert 'data-queue="bull:hostile"' in html


async def test_error_pages_need_a_login_and_a_visible_queue(
    anonymous_client: AsyncClient, client: AsyncClient, redis_url: str
) -> None:
    assert (await anonymous_client.get(links.error_groups_api_url(HOSTILE))).status_code == 401
    assert (await anonymous_client.get(links.all_error_groups_url())).status_code == 302
    assert (await client.get(links.error_groups_url(QueueRef("default", "bull", "nope")))).status_code == 404
