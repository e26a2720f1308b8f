"""The app inside the host project (tests/host_project/): its checks, mount, base template, login and logout.

Runs only in the host project's run (`pytest --ds=tests.host_project.settings`); the pages, API, actions,
security and live tests run there too (they are marked host_compatible).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import AsyncClient, override_settings
from django.urls import reverse
from django.utils.module_loading import import_string

from dashboard import links
from dashboard.asgi_routes import routed_consumer
from dashboard.consumers import OverviewConsumer
from queues.models import QueueRef
from tests.support.asgi import asgi_get
from tests.support.builders import add_jobs
from tests.support.live import IN_MEMORY, LiveSocket, cookie_of
from tests.support.urls import dashboard_url, socket_path

pytestmark = pytest.mark.host_only

EMAIL = QueueRef("default", "bull", "email")


def test_the_host_project_passes_every_dashboard_check() -> None:
    assert [message for message in run_checks() if message.id and message.id.startswith("bullmq_")] == []


def test_pages_and_sockets_are_where_the_host_mounted_them() -> None:
    assert reverse("bullmq_dashboard:overview") == "/ops/queues/"
    assert settings.ASGI_APPLICATION == "tests.host_project.asgi.application"
    assert routed_consumer(import_string(settings.ASGI_APPLICATION), "ops/queues/ws/") is OverviewConsumer


def framed(html: str) -> bool:
    """The page is inside the host's base template: its nav first, the dashboard in its content block."""
    return (
        html.index('id="host-nav"')
        < html.index('class="host-content"')
        < html.index('class="bullmq-dashboard"')
        and "— Example Ops</title>" in html
        and html.index("bullmq_dashboard/dashboard.css") < html.index("</head>")
    )


async def test_pages_are_framed_by_the_hosts_base_template(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    for url in (dashboard_url(), links.queue_url(EMAIL), links.job_url(EMAIL, "j1"), dashboard_url("audit/")):
        response = await client.get(url)
        assert response.status_code in (200, 403), url
        html = response.content.decode()
        assert framed(html), url
        assert '<span class="host-user">operator</span>' in html
    overview = (await client.get(dashboard_url())).content.decode()
    assert "<title>Queues · BullMQ dashboard — Example Ops</title>" in overview
    assert '<form class="logout" method="post" action="/sign-out/">' in overview
    # Through Django's own ASGI handler, as daphne serves it.
    status, body = await asgi_get(client, links.queue_url(EMAIL))
    assert status == 200 and framed(body.decode())


async def test_htmx_requests_get_parts_without_the_hosts_frame(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    part = await client.get(links.queue_url(EMAIL) + "?state=waiting", headers={"HX-Request": "true"})
    assert part.status_code == 200
    assert b"host-nav" not in part.content and b"<html" not in part.content


async def test_visitors_sign_in_and_out_through_the_hosts_views(
    anonymous_client: AsyncClient, staff_user: Any
) -> None:
    refused = await anonymous_client.get(dashboard_url())
    assert refused.status_code == 302 and refused["Location"] == "/sign-in/?next=/ops/queues/"
    form = await anonymous_client.get(refused["Location"])
    assert b"Sign in to Example Ops" in form.content and b'id="host-nav"' in form.content

    signed_in = await anonymous_client.post(
        "/sign-in/", {"username": "operator", "password": "pw", "next": "/ops/queues/"}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/ops/queues/"
    assert (await anonymous_client.get(dashboard_url())).status_code == 200

    signed_out = await anonymous_client.post("/sign-out/")
    assert signed_out.status_code == 302 and signed_out["Location"] == "/sign-in/"
    assert (await anonymous_client.get(dashboard_url())).status_code == 302


async def test_the_hosts_sign_out_closes_open_sockets(client: AsyncClient, redis_url: str) -> None:
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):  # a fresh layer for this test
        socket = LiveSocket(socket_path(), cookie_of(client))
        assert (await socket.connect())[0]
        assert (await client.post("/sign-out/")).status_code == 302
        closed = await socket.communicator.receive_output(timeout=5)
        while closed["type"] != "websocket.close":
            closed = await socket.communicator.receive_output(timeout=5)
        assert closed["code"] == 4401
        await socket.close()


async def test_the_hosts_own_page_is_its_own(anonymous_client: AsyncClient) -> None:
    home = (await anonymous_client.get("/")).content.decode()
    assert '<h1 class="host-title">Example Ops</h1>' in home and "bullmq-dashboard" not in home
