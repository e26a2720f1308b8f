"""Attacks on the health verdict (issue 15) by a user permitted on bull:email only
(tests.integration.test_security.only_email): sms's health, fixes and lookups stay out of reach."""

from __future__ import annotations

import json
from typing import Any

from django.test import AsyncClient, override_settings
from django.urls import reverse
from redis.asyncio import Redis

from dashboard import links
from dashboard.operations import wait_all
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.builders import add_jobs, pause
from tests.support.dashboard import dashboard_settings
from tests.support.urls import dashboard_url

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
FIXES: dict[str, dict[str, Any]] = {
    "resume": {},
    "set_global_concurrency": {"concurrency": 3},
    "remove_rate_limit_key": {},
    "promote_oldest_delayed": {},
    "release_deduplication": {"dedup_id": "d1"},
}


async def snapshot(client: Redis) -> dict[bytes, bytes | None]:
    return {key: await client.dump(key) async for key in client.scan_iter(match="bull:sms:*")}


async def test_a_viewer_of_email_reaches_nothing_of_sms(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(
        redis_url,
        "sms",
        [("text", {}, {"jobId": "s1", "delay": 60_000}), ("text", {}, {"deduplication": {"id": "d1"}})],
    )
    await pause(redis_url, "sms")
    await redis_client.hset("bull:sms:meta", "concurrency", "1")
    await redis_client.set("bull:sms:limiter", "9007199254740991", px=600_000)
    before = await snapshot(redis_client)
    settings = dashboard_settings(redis_url, PERMISSION="tests.integration.test_security.only_email")
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        reads = [
            reverse("bullmq_dashboard:api-queue-health", args=["default", SMS.key]),
            reverse("bullmq_dashboard:health-fix", args=["default", SMS.key]) + "?code=paused",
            links.dedup_lookup_url(SMS, "d1"),
            links.dedup_api_url(SMS, "d1"),
        ]
        for url in reads:
            answer = await admin_client.get(url)
            assert answer.status_code == 404, (url, answer.status_code)
            for said in (b"data-health", b"paused with", b"held by", b"Resume", b'"verdict"'):
                assert said not in answer.content, (url, said)
        for name, params in FIXES.items():
            response = await admin_client.post(
                links.queue_action_url(SMS, name), data=json.dumps(params), content_type="application/json"
            )
            await wait_all()
            assert response.status_code in (403, 404), (name, response.status_code)
        assert await snapshot(redis_client) == before
        overview = await admin_client.get(links.overview_url(attention=True))
        assert b"bull:sms" not in overview.content
        listed = (await admin_client.get(dashboard_url("api/queues/"))).json()
        assert [each["key"] for each in listed["queues"]] == [EMAIL.key]
