"""Every mutating endpoint refuses GET, missing CSRF, anonymous users and users without the permission;
each refusal leaves Redis exactly as it was and is audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import links
from dashboard.actions import JOB_ACTIONS, QUEUE_ACTIONS
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from queues.models import QueueRef
from tests.support.builders import add_jobs
from tests.support.snapshot import snapshot

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
PARAMS: dict[str, dict[str, Any]] = {
    "change_priority": {"priority": 3},
    "update_data": {"data": "{}"},
    "clean": {"state": "waiting", "grace": 0, "limit": 0},
    "obliterate": {"confirm": "email", "force": "1"},
    "add": {"name": "x"},
    "bulk": {"action": "remove", "ids": ["w1"]},
}
ENDPOINTS = (
    [(name, links.job_action_url, (EMAIL, name, "w1")) for name in JOB_ACTIONS]
    + [(name, links.queue_action_url, (EMAIL, name)) for name in QUEUE_ACTIONS]
    + [("bulk", lambda queue: links.bulk_url(queue), (EMAIL,))]
)


@pytest.fixture
async def seeded(redis_url: str, redis_client: Redis) -> dict[bytes, bytes | None]:
    await add_jobs(
        redis_url, "email", [("send", {}, {"jobId": "w1"}), ("send", {}, {"jobId": "d1", "delay": 60_000})]
    )
    return await snapshot(redis_client)


async def assert_refused(
    response: Any, status: int, redis_client: Redis, before: dict[bytes, bytes | None], audits_before: int
) -> None:
    await wait_all()
    assert response.status_code == status, response.content
    assert await snapshot(redis_client) == before
    assert await AuditEntry.objects.acount() == audits_before + 1
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None and entry.result in {"refused", "invalid"}


@pytest.mark.parametrize(("name", "make_url", "args"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
async def test_get_is_405(
    admin_client: AsyncClient, redis_client: Redis, seeded: Any, name: str, make_url: Any, args: Any
) -> None:
    audits = await AuditEntry.objects.acount()
    response = await admin_client.get(make_url(*args))
    await assert_refused(response, 405, redis_client, seeded, audits)
    assert response["Allow"] == "POST"


@pytest.mark.parametrize(("name", "make_url", "args"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
async def test_missing_csrf_is_403(
    superuser: Any, redis_client: Redis, seeded: Any, name: str, make_url: Any, args: Any
) -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(superuser)
    audits = await AuditEntry.objects.acount()
    response = await client.post(make_url(*args), PARAMS.get(name, {}))
    await assert_refused(response, 403, redis_client, seeded, audits)
    assert "CSRF" in response.json()["message"]


async def test_a_valid_csrf_token_is_accepted(superuser: Any, redis_client: Redis, seeded: Any) -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(superuser)
    page = await client.get(links.queue_url(EMAIL))
    token = page.cookies["csrftoken"].value
    response = await client.post(links.queue_action_url(EMAIL, "pause"), headers={"X-CSRFToken": token})
    await wait_all()
    assert response.status_code == 200
    assert await redis_client.hget("bull:email:meta", "paused") == b"1"


@pytest.mark.parametrize(("name", "make_url", "args"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
async def test_anonymous_is_401_logged_not_stored(
    anonymous_client: AsyncClient,
    redis_client: Redis,
    seeded: Any,
    name: str,
    make_url: Any,
    args: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="bullmq_dashboard.audit")
    response = await anonymous_client.post(make_url(*args), PARAMS.get(name, {}))
    await wait_all()
    assert response.status_code == 401
    assert await snapshot(redis_client) == seeded
    # Anonymous refusals go to the (rate-limited) log, never to the audit table.
    assert await AuditEntry.objects.acount() == 0
    assert any(
        "anonymous" in record.getMessage() and "(401)" in record.getMessage() for record in caplog.records
    )


@pytest.mark.parametrize(("name", "make_url", "args"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
async def test_staff_without_the_permission_is_403(
    client: AsyncClient, redis_client: Redis, seeded: Any, name: str, make_url: Any, args: Any
) -> None:
    audits = await AuditEntry.objects.acount()
    response = await client.post(make_url(*args), PARAMS.get(name, {}))
    await assert_refused(response, 403, redis_client, seeded, audits)
    assert (await client.get(links.queue_api_url(EMAIL))).json()["actions"] == {}


async def test_a_granted_django_permission_allows_exactly_that_action(
    client: AsyncClient, staff_user: Any, redis_client: Redis, seeded: Any
) -> None:
    permission = await Permission.objects.aget(
        codename="pause_queue", content_type__app_label="bullmq_dashboard"
    )
    await staff_user.user_permissions.aadd(permission)
    actions = (await client.get(links.queue_api_url(EMAIL))).json()["actions"]
    assert set(actions) == {"pause"}
    assert (await client.post(actions["pause"])).status_code == 200
    await wait_all()
    assert (await client.post(links.queue_action_url(EMAIL, "drain"))).status_code == 403
