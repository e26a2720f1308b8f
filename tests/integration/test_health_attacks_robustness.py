"""Attacks on the health verdict (issue 15) that the feature withstands (kept as guards): hostile job
timestamps, markup in meta fields, queue names and fix parameters, a Redis user refused one queue's keys
and CLIENT LIST, hostile worker connection names."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from django.test import AsyncClient, override_settings
from django.urls import reverse
from redis.asyncio import Redis

from dashboard import links
from dashboard.health import get_health
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.integration.test_throughput_attacks import acl_user
from tests.support.builders import add_jobs, pause
from tests.support.dashboard import dashboard_settings

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
MARKUP = '"><svg onload=1>'


def health_url(queue: QueueRef) -> str:
    return reverse("bullmq_dashboard:api-queue-health", args=[queue.connection, queue.key])


@pytest.mark.parametrize("stamp", ["-inf", "inf", "nan", "-1e31", "1e31", "0x10"])
async def test_a_hostile_timestamp_of_the_job_next_in_line(
    client: AsyncClient, redis_url: str, redis_client: Redis, stamp: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    await redis_client.hset("bull:email:j1", "timestamp", stamp)
    answer = await client.get(health_url(EMAIL))
    assert answer.status_code == 200, answer.content
    for url in (links.queue_url(EMAIL), links.overview_url(attention=True)):
        assert (await client.get(url)).status_code == 200, url


async def test_markup_in_meta_fields_queue_names_and_fix_parameters_is_escaped(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.hset("bull:email:meta", mapping={"concurrency": MARKUP, "max": "<b>x"})
    evil = QueueRef("default", "bull", MARKUP)
    await add_jobs(redis_url, MARKUP, [("send", {}, {})])
    await pause(redis_url, MARKUP)
    pages = (links.overview_url(), links.overview_url(attention=True), links.queue_url(EMAIL))
    for url in (*pages, links.queue_url(evil)):
        page = await client.get(url)
        assert page.status_code == 200, url
        assert b"<svg" not in page.content and b"<b>x" not in page.content, url
    fix = reverse("bullmq_dashboard:health-fix", args=["default", EMAIL.key])
    for code in ("children_stuck", "at_capacity", "deduplicated", "paused"):
        answer = await client.get(fix + "?" + urlencode({"code": code, "value": MARKUP}))
        assert answer.status_code == 200, (code, answer.content)
        assert b"<svg" not in answer.content, (code, answer.content)


@pytest.fixture
def narrow_url(redis_url: str) -> Iterator[str]:
    """May read email's keys and only sms's meta and id; no CLIENT LIST, no MEMORY."""
    rules = ("~bull:email:*", "~bull:sms:meta", "~bull:sms:id", "~bullmq-dashboard:*", "+@all")
    yield from acl_user(redis_url, "h15", *rules, "-client|list", "-memory")


async def test_a_queue_refused_by_acl_and_no_client_list_stay_local(
    client: AsyncClient, redis_url: str, narrow_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "sms", [("send", {}, {})])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(narrow_url)):
        reset_directories()
        get_health().forget()
        overview = await client.get(links.overview_url())
        assert overview.status_code == 200
        body = overview.content.decode()
        assert 'data-queue="bull:email" data-health="healthy"' in body
        assert 'data-queue="bull:sms" data-health="unknown"' in body
        email = await client.get(health_url(EMAIL))
        assert email.status_code == 200, email.content
        assert "no_workers" not in {each["code"] for each in email.json()["reasons"]}  # unknown, not 0
        sms = await client.get(health_url(SMS))
        assert sms.status_code == 502 and "cannot be judged" in sms.json()["error"]
        assert (await client.get(links.overview_url(attention=True))).status_code == 200


async def test_hostile_worker_connection_names(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    email64 = base64.b64encode(b"email").decode()
    names = [
        "bull:!!!:w:x",
        "bull:" + base64.b64encode(b"\xff\xfe").decode() + ":w:x",
        f"bull:{email64}:w:" + "x" * 60000,
        f"bull:{email64}:w:",
        f"bull:{email64}",
        f"bull:{email64}==:w:x",
        ":w:",
        "bull::w:x",
    ]
    clients = []
    try:
        for name in names:
            other = Redis.from_url(redis_url)
            await other.client_setname(name)
            clients.append(other)
        answer = await client.get(health_url(EMAIL))
        assert answer.status_code == 200, answer.content
        for url in (links.overview_url(), links.queue_url(EMAIL)):
            assert (await client.get(url)).status_code == 200, url
    finally:
        for other in clients:
            await other.aclose()
