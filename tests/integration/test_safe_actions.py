"""Safe destructive actions: the Clean estimate endpoint (who may ask, what it costs, what it refuses), why a
clean that removed nothing removed nothing, Pause's Undo, and which queue actions the page offers at zero
counts."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.registry import reset_directories
from queues.clean_estimate import estimate_clean, older_than
from queues.models import QueueRef
from tests.support.builders import add_jobs, process
from tests.support.dashboard import dashboard_settings

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
HOUR = 3_600_000


async def complete(url: str, count: int, fail: bool = False) -> None:
    """`count` jobs of queue email, finished just now (completed, or failed)."""
    await add_jobs(url, "email", [("send", {}, {"jobId": f"j{i}"}) for i in range(count)])

    async def work(job: Any, token: str) -> str:
        if fail:
            raise RuntimeError("boom")
        return "ok"

    await process(url, "email", work, until=count)


async def estimate(client: AsyncClient, **params: Any) -> Any:
    return await client.get(links.clean_estimate_url(EMAIL), params)


async def test_estimate_counts_by_finish_time_and_says_it_is_an_estimate(
    client: AsyncClient, redis_url: str
) -> None:
    await complete(redis_url, 5)
    # A viewer may ask (staff without any action permission): it reads what the tabs and lists show.
    newer = await estimate(client, state="completed", grace=HOUR, limit=1000)
    assert newer.status_code == 200
    body = newer.json()
    assert (body["count"], body["total"], body["newer"], body["exact"], body["estimate"]) == (
        0,
        5,
        5,
        True,
        True,
    )
    assert body["message"] == (
        "About 0 completed jobs of email, older than 1 hour, will be removed (an estimate: jobs finish while"
        " you read this)."
    )
    capped = (await estimate(client, state="completed", grace=0, limit=2)).json()
    assert capped["count"] == 2 and "of any age" in capped["message"]
    assert "The limit stops it at 2." in capped["message"]
    waiting = (await estimate(client, state="failed")).json()
    assert waiting["count"] == 0 and waiting["total"] == 0


async def test_estimate_of_states_filtered_job_by_job_is_an_upper_bound(
    client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"w{i}"}) for i in range(3)])
    body = (await estimate(client, state="waiting", grace=HOUR, limit=2)).json()
    assert (body["count"], body["total"], body["exact"], body["newer"]) == (2, 3, False, None)
    assert body["message"].startswith("At most 2 waiting jobs of email, older than 1 hour, will be removed")


async def test_estimate_counts_older_jobs_exactly(redis_url: str, redis_client: Redis) -> None:
    await complete(redis_url, 4)
    later = round(time.time() * 1000) + 2 * HOUR  # two hours on, every job is over an hour old
    result = await estimate_clean(redis_client, EMAIL, "completed", HOUR, 3, now_ms=later)
    assert (result.total, result.older, result.newer, result.count) == (4, 4, 0, 3)
    now = await estimate_clean(redis_client, EMAIL, "completed", HOUR, 0)
    assert (now.older, now.newer, now.count) == (0, 4, 0)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"state": "active"},
        {"state": "paused"},
        {"state": "completed", "grace": "-1"},
        {"state": "completed", "grace": "soon"},
        {"state": "completed", "limit": "1.5"},
        {"state": "completed", "limit": "9" * 5000},
    ],
)
async def test_estimate_refuses_bad_parameters(
    client: AsyncClient, redis_url: str, params: dict[str, str]
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    response = await estimate(client, **params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


async def test_estimate_needs_a_viewer_of_the_queue(
    anonymous_client: AsyncClient, client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "hidden", [("send", {}, {})])
    assert (await estimate(anonymous_client, state="completed")).status_code == 401
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, CONNECTIONS={"default": {"URL": redis_url, "QUEUES": ["bull:email"]}}
        )
    ):
        reset_directories()
        hidden = QueueRef("default", "bull", "hidden")
        response = await client.get(links.clean_estimate_url(hidden), {"state": "completed"})
        assert response.status_code == 404
    reset_directories()


async def test_estimate_is_one_constant_cost_script_call(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await complete(redis_url, 3)
    await estimate(client, state="completed", grace=HOUR)  # discovery and script loading happen once
    await redis_client.config_resetstat()
    response = await estimate(client, state="completed", grace=HOUR, limit=0)
    assert response.status_code == 200
    stats = await redis_client.info("commandstats")
    called = {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}
    called.pop("config|resetstat", None)
    called.pop("info", None)
    assert called.get("evalsha") == 1, called
    # Inside the script: ZCARD and ZCOUNT only, never a range read of the jobs.
    assert not {"zrange", "zrangebyscore", "lrange", "hgetall", "hmget", "scan"} & set(called), called


async def test_estimate_of_a_key_of_the_wrong_type(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.set("bull:email:completed", "not a zset")
    body = (await estimate(client, state="completed")).json()
    assert body["count"] == 0 and "is a string, not BullMQ's" in body["message"]


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


async def test_a_clean_that_removes_nothing_says_why(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await complete(redis_url, 3)
    clean = links.queue_action_url(EMAIL, "clean")
    newer = (await post(admin_client, clean, state="completed", grace=HOUR, limit=1000)).json()
    assert newer["done"] == 0
    assert newer["message"] == (
        "Removed 0 completed jobs older than 1 hour from email: its 3 completed jobs are all newer."
    )
    none = (await post(admin_client, clean, state="failed", grace=0, limit=0)).json()
    assert none["message"] == "Removed 0 failed jobs from email: it has no failed jobs."
    assert await redis_client.zcard("bull:email:completed") == 3
    done = (await post(admin_client, clean, state="completed", grace=0, limit=0)).json()
    assert done["message"] == "Removed 3 completed jobs from email."


async def test_bulk_queue_actions_that_touch_nothing_say_why(
    admin_client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "w1"})])
    await post(admin_client, links.queue_action_url(EMAIL, "pause"))  # nothing is processed meanwhile
    retried = (await post(admin_client, links.queue_action_url(EMAIL, "retry_all"), state="failed")).json()
    assert retried["message"] == "Moved 0 failed jobs of email: it has no failed jobs."
    promoted = (await post(admin_client, links.queue_action_url(EMAIL, "promote_all"))).json()
    assert promoted["message"] == "Moved 0 delayed jobs of email: it has no delayed jobs."
    assert (await post(admin_client, links.queue_action_url(EMAIL, "drain"))).json()["done"] == 1
    drained = (await post(admin_client, links.queue_action_url(EMAIL, "drain"))).json()
    assert drained["message"] == "Drained 0 jobs from email: it has no waiting, prioritized or delayed jobs."


def test_ages_are_said_in_whole_units() -> None:
    assert older_than(0) == "of any age"
    assert older_than(60_000) == "older than 1 minute"
    assert older_than(HOUR) == "older than 1 hour"
    assert older_than(7 * 86_400_000) == "older than 7 days"
    assert older_than(1500) == "older than 1500 ms"


async def test_pause_offers_undo_to_who_may_resume(
    admin_client: AsyncClient, client: AsyncClient, staff_user: Any, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    htmx = {"HX-Request": "true"}
    paused = await admin_client.post(links.queue_action_url(EMAIL, "pause"), headers=htmx)
    html = paused.content.decode()
    undo = re.search(r'<button[^>]*data-undo[^>]*hx-post="([^"]+)"', html)
    assert undo is not None and undo[1] == links.queue_action_url(EMAIL, "resume")
    assert await redis_client.hget("bull:email:meta", "paused") == b"1"
    resumed = await admin_client.post(undo[1], headers=htmx)
    assert b"Queue email resumed." in resumed.content and b"data-undo" not in resumed.content
    assert await redis_client.hget("bull:email:meta", "paused") is None
    actions = [entry.action async for entry in AuditEntry.objects.order_by("-id")[:2]]
    assert actions == ["resume", "pause"]
    # JSON answers stay as they were (no undo field).
    assert "undo" not in (await post(admin_client, links.queue_action_url(EMAIL, "pause"))).json()

    # A user who may pause but not resume is not offered an Undo it could not take.
    await staff_user.user_permissions.aadd(await Permission.objects.aget(codename="pause_queue"))
    staff = AsyncClient()
    await staff.aforce_login(staff_user)
    await post(admin_client, links.queue_action_url(EMAIL, "resume"))
    only_pause = await staff.post(links.queue_action_url(EMAIL, "pause"), headers=htmx)
    assert only_pause.status_code == 200 and b"data-undo" not in only_pause.content


async def test_actions_that_touch_nothing_are_not_offered(admin_client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "w1"})])
    detail = (await admin_client.get(links.queue_api_url(EMAIL))).json()
    assert "retry_all" not in detail["actions"] and "promote_all" not in detail["actions"]
    assert "drain" in detail["actions"] and "clean" in detail["actions"]
    # The page renders them hidden (a live count that rises shows them), and Clean preselects completed.
    page = (await admin_client.get(links.queue_url(EMAIL) + "?state=waiting")).content.decode()
    assert re.search(r'data-queue-action="retry_all" data-needs-jobs="failed" hidden', page)
    assert re.search(r'data-queue-action="promote_all" data-needs-jobs="delayed" hidden', page)
    assert '<option value="completed" selected>' in page and '<option value="waiting" selected>' not in page
    assert "hx-confirm" not in page

    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "d1", "delay": 60_000})])
    await process(redis_url, "email", _fail, until=1)
    detail = (await admin_client.get(links.queue_api_url(EMAIL))).json()
    assert {"retry_all", "promote_all"} <= set(detail["actions"])
    page = (await admin_client.get(links.queue_url(EMAIL) + "?state=failed")).content.decode()
    assert re.search(r'data-queue-action="retry_all" data-needs-jobs="failed" hx-post', page)
    assert '<option value="completed" selected>' in page


async def _fail(job: Any, token: str) -> None:
    raise RuntimeError("boom")
