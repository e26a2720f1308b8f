"""The standalone site's serving path: the thread-keeping ASGI handler and the event-loop middlewares."""

from __future__ import annotations

import json
import threading
from http.cookies import SimpleCookie
from typing import Any

import pytest
from django.test import AsyncClient

from dashboard import links, operations
from dashboard.models import AuditEntry
from dashboard.views import actions as action_views
from queues.models import QueueRef
from tests.support.asgi import asgi_get, asgi_request
from tests.support.builders import add_jobs, process

EMAIL = QueueRef("default", "bull", "email")
CSRF_SECRET = "k" * 32


def request_threads() -> set[int | None]:
    return {thread.ident for thread in threading.enumerate() if thread.name.startswith("django-request")}


def cookies_set(response: dict[str, Any]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in response["headers"]:
        if name.lower() == b"set-cookie":
            jar.load(value.decode())
    return {name: morsel.value for name, morsel in jar.items()}


async def test_page_views_reuse_the_request_threads(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    for _ in range(3):
        assert (await asgi_get(client, links.queue_url(EMAIL)))[0] == 200
    before = request_threads()
    for _ in range(20):
        assert (await asgi_get(client, links.queue_url(EMAIL)))[0] == 200
    assert before and request_threads() == before


async def test_login_form_checks_csrf_and_saves_the_session(
    anonymous_client: AsyncClient, staff_user: Any
) -> None:
    form = await asgi_request(anonymous_client, "GET", "/accounts/login/")
    token = cookies_set(form)["csrftoken"]
    anonymous_client.cookies["csrftoken"] = token
    fields = b"username=operator&password=pw&next=/queues/"
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]

    refused = await asgi_request(anonymous_client, "POST", "/accounts/login/", fields, headers)
    assert refused["status"] == 403

    accepted = await asgi_request(
        anonymous_client,
        "POST",
        "/accounts/login/",
        fields + f"&csrfmiddlewaretoken={token}".encode(),
        headers,
    )
    assert accepted["status"] == 302
    anonymous_client.cookies["sessionid"] = cookies_set(accepted)["sessionid"]
    status, body = await asgi_get(anonymous_client, "/queues/")
    assert status == 200 and b"operator" in body


async def test_background_operation_is_audited_after_its_request_ended(
    admin_client: AsyncClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}) for _ in range(30)])

    async def fail(job: Any, token: str) -> None:
        raise RuntimeError("boom")

    await process(redis_url, "email", fail, until=30)
    monkeypatch.setattr(action_views, "WAIT_SECONDS", 0.0)  # answer at once; the work goes on after
    admin_client.cookies["csrftoken"] = CSRF_SECRET
    response = await asgi_request(
        admin_client,
        "POST",
        links.queue_action_url(EMAIL, "retry_all"),
        json.dumps({"state": "failed"}).encode(),
        [(b"content-type", b"application/json"), (b"x-csrftoken", CSRF_SECRET.encode())],
    )
    assert response["status"] in {200, 202}
    await operations.wait_all()
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None
    assert (entry.action, entry.result, entry.count) == ("retry_all", "done", 30)
