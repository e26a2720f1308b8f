"""Attacks on issue 15's health verdict by a viewer restricted to one queue (test_security.only_email)."""

from __future__ import annotations

import asyncio
from typing import Any

from bullmq import FlowProducer
from django.test import AsyncClient, override_settings
from django.urls import reverse

from dashboard import links
from dashboard.live import fragments
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.builders import add_jobs, pause, process
from tests.support.dashboard import dashboard_settings
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of, count_cell
from tests.support.urls import dashboard_url, socket_path

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")


def health_url(queue: QueueRef) -> str:
    return reverse("bullmq_dashboard:api-queue-health", args=[queue.connection, queue.key])


async def _email_waits_on_stuck_sms(redis_url: str) -> None:
    flow = FlowProducer({"connection": redis_url})
    try:
        await flow.add(
            {
                "name": "digest",
                "queueName": "email",
                "data": {},
                "children": [{"name": "text", "queueName": "sms", "data": {}}],
            }
        )
    finally:
        await flow.close()
    await pause(redis_url, "sms")


def restricted(redis_url: str) -> Any:
    return override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(
            redis_url, PERMISSION="tests.integration.test_security.only_email"
        )
    )


async def test_health_api_does_not_name_a_queue_the_viewer_may_not_see(
    client: AsyncClient, redis_url: str
) -> None:
    """A viewer of bull:email only learns from email's health that bull:sms exists and is stuck."""
    await _email_waits_on_stuck_sms(redis_url)
    with restricted(redis_url):
        reset_directories()
        assert (await client.get(links.queue_api_url(SMS))).status_code == 404  # sms is hidden
        answer = await client.get(health_url(EMAIL))
        assert answer.status_code == 200
        assert b"bull:sms" not in answer.content, answer.json()


async def test_queue_page_health_panel_does_not_name_a_hidden_queue(
    client: AsyncClient, redis_url: str
) -> None:
    await _email_waits_on_stuck_sms(redis_url)
    with restricted(redis_url):
        reset_directories()
        await client.get(dashboard_url())
        page = await client.get(links.queue_url(EMAIL))
        assert page.status_code == 200
        assert b"bull:sms" not in page.content


async def test_hidden_queues_state_does_not_change_a_visible_verdict(
    client: AsyncClient, redis_url: str
) -> None:
    """The verdict itself is a side channel: email turns 'stuck' exactly when the hidden sms is stuck."""
    await _email_waits_on_stuck_sms(redis_url)
    with restricted(redis_url):
        reset_directories()
        answer = (await client.get(health_url(EMAIL))).json()
        assert "children_stuck" not in {each["code"] for each in answer["reasons"]}, answer


async def test_a_needs_attention_socket_says_nothing_of_a_hidden_queue(
    client: AsyncClient, redis_url: str
) -> None:
    """The "needs attention" page's socket notes a queue that came to need attention only when the
    viewer may see it: a viewer of bull:email gets neither sms's cells nor a note when sms turns stuck."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await pause(redis_url, "email")  # stuck: listed
    await add_jobs(redis_url, "sms", [("send", {}, {})])

    async def work(job: Any, token: str) -> str:
        return "ok"

    await process(redis_url, "sms", work, until=1)  # idle: needs no attention when the page opens
    settings = dashboard_settings(
        redis_url,
        PERMISSION="tests.integration.test_security.only_email",
        LIVE=FAST,
        HEALTH={"CACHE_SECONDS": 0},
    )
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        reset_directories()
        socket = LiveSocket(f"{socket_path()}?attention=1", cookie_of(client))
        try:
            assert (await socket.connect())[0]
            await socket.wait_for(lambda text: f'id="{fragments.health_dom_id(EMAIL)}"' in text)
            await add_jobs(redis_url, "sms", [("send", {}, {})])  # waiting, no worker: degraded, hidden
            await add_jobs(redis_url, "email", [("send", {}, {})])  # a later push the socket must get
            await socket.wait_for(count_cell(EMAIL, "waiting", 2))  # pushed after sms's change
            await asyncio.sleep(1.5)  # a refresh or two more (LIVE=FAST)
        finally:
            await socket.close()
    received = "".join(socket.received)
    assert "Another queue came to need attention" not in received
    assert fragments.queue_dom_id(SMS) not in received and "bull:sms" not in received
