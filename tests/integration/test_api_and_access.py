"""The JSON API's shapes, who may see what, and how queues are discovered."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.registry import reset_directories
from queues.connections import ConnectionSettings, client_for, close_clients
from queues.discovery import scan_queues
from queues.models import QueueRef
from tests.support.builders import add_jobs, process
from tests.support.urls import dashboard_url, login_url

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")


async def test_queue_list_api(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}), ("later", {}, {"delay": 60_000})])
    body = (await client.get(dashboard_url("api/queues/"))).json()
    (queue,) = body["queues"]
    assert queue["name"] == "email" and queue["prefix"] == "bull" and queue["connection"] == "default"
    assert queue["paused"] is False
    assert queue["counts"]["waiting"] == 1 and queue["counts"]["delayed"] == 1
    detail = (await client.get(queue["api_url"])).json()
    assert detail["actions"] == {}
    assert detail["jobs_url"] == links.jobs_api_url(EMAIL)


async def test_queue_list_api_filters_by_q_and_pages(client: AsyncClient, redis_url: str) -> None:
    for name in ("mail-a", "mail-b", "mail-c", "sms"):
        await add_jobs(redis_url, name, [("x", {}, {})])
    every = (await client.get(dashboard_url("api/queues/"))).json()
    assert every["total"] == 4 and len(every["queues"]) == 4 and "page" not in every
    mail = (await client.get(dashboard_url("api/queues/"), {"q": "MAIL"})).json()
    assert [queue["name"] for queue in mail["queues"]] == ["mail-a", "mail-b", "mail-c"]
    second = (await client.get(dashboard_url("api/queues/"), {"q": "mail", "per_page": 2, "page": 2})).json()
    assert [queue["name"] for queue in second["queues"]] == ["mail-c"]
    assert (second["total"], second["page"], second["per_page"], second["pages"]) == (3, 2, 2, 2)
    assert second["queues"][0]["counts"]["waiting"] == 1
    wrong = await client.get(dashboard_url("api/queues/"), {"per_page": 0})
    assert wrong.status_code == 400 and "per_page" in wrong.json()["error"]


async def test_job_list_and_job_api(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {"to": "a@example.com"}, {"jobId": "j1", "attempts": 2})])

    async def work(job: Any, token: str) -> dict[str, bool]:
        await job.log("sent")
        await job.updateProgress({"stage": "done"})
        return {"ok": True}

    await process(redis_url, "email", work, until=1)
    page = (await client.get(links.jobs_api_url(EMAIL), {"state": "completed"})).json()
    assert page["state"] == "completed" and page["total"] == 1 and page["page"] == 1
    (row,) = page["jobs"]
    assert set(row) >= {
        "id",
        "name",
        "timestamp",
        "processedOn",
        "finishedOn",
        "attemptsMade",
        "failedReason",
        "progress",
        "api_url",
    }
    job = (await client.get(row["api_url"])).json()
    assert job["data"] == {"to": "a@example.com"}
    assert job["returnvalue"] == {"ok": True}
    assert job["progress"] == {"stage": "done"}
    assert job["logs"] == {"count": 1, "items": ["sent"], "notRead": 0}
    assert job["stacktrace"] == [] and job["parent"] is None and job["children"] == []
    assert job["html_url"] == links.job_url(EMAIL, "j1") and job["actions"] == {}


async def test_api_bad_requests_are_json(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    bad = await client.get(links.jobs_api_url(EMAIL), {"state": "bogus"})
    assert bad.status_code == 400 and "Unknown state" in bad.json()["error"]
    missing = await client.get(links.job_api_url(EMAIL, "nope"))
    assert missing.status_code == 404 and missing.json()["status"] == 404


async def test_anonymous_users_are_sent_to_login(anonymous_client: AsyncClient, redis_url: str) -> None:
    page = await anonymous_client.get(dashboard_url())
    assert page.status_code == 302 and page["Location"] == f"{login_url()}?next={dashboard_url()}"
    api = await anonymous_client.get(dashboard_url("api/queues/"))
    assert api.status_code == 401 and api.json()["status"] == 401


async def test_users_without_the_view_permission_are_refused(
    anonymous_client: AsyncClient, django_user_model: Any, redis_url: str
) -> None:
    user = await django_user_model.objects.acreate_user("visitor", password="pw")
    await anonymous_client.aforce_login(user)
    assert (await anonymous_client.get(dashboard_url())).status_code == 403
    assert (await anonymous_client.get(dashboard_url("api/queues/"))).status_code == 403


async def test_login_page_works(anonymous_client: AsyncClient) -> None:
    response = await anonymous_client.get(login_url())
    assert response.status_code == 200 and b'name="password"' in response.content


async def test_discovery_finds_any_prefix_and_ignores_job_ids_ending_in_meta(redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "looks:meta"})])
    await add_jobs(redis_url, "billing", [("invoice", {}, {})], prefix="{tenant-a}")
    await add_jobs(redis_url, "deep", [("x", {}, {})], prefix="app:v2")
    settings = ConnectionSettings("default", redis_url)
    try:
        found = await scan_queues(client_for(settings), settings)
        assert found == [
            QueueRef("default", "app:v2", "deep"),
            QueueRef("default", "bull", "email"),
            QueueRef("default", "{tenant-a}", "billing"),
        ]
        only_tenant = ConnectionSettings("default", redis_url, prefixes=("{tenant-a}",))
        assert await scan_queues(client_for(only_tenant), only_tenant) == [
            QueueRef("default", "{tenant-a}", "billing")
        ]
    finally:
        await close_clients()


async def test_explicit_queue_list_replaces_discovery(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "hidden", [("send", {}, {})])
    with override_settings(
        BULLMQ_DASHBOARD={"CONNECTIONS": {"default": {"URL": redis_url, "QUEUES": ["bull:email"]}}}
    ):
        reset_directories()
        body = (await client.get(dashboard_url("api/queues/"))).json()
        assert [queue["name"] for queue in body["queues"]] == ["email"]
        assert (await client.get(dashboard_url("default/bull:hidden/"))).status_code == 404


async def test_a_queue_created_after_discovery_is_found_without_a_new_scan(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await client.get(dashboard_url())
    await add_jobs(redis_url, "fresh", [("send", {}, {})])
    await redis_client.config_resetstat()
    response = await client.get(dashboard_url("default/bull:fresh/"))
    assert response.status_code == 200
    assert "cmdstat_scan" not in await redis_client.info("commandstats")
