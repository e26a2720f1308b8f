"""Requests through the project's ASGI application (settings.ASGI_APPLICATION: config.asgi for the
standalone site, tests.host_project.asgi for the host project) exactly as daphne makes them."""

from __future__ import annotations

from typing import Any

from channels.testing import HttpCommunicator
from django.conf import settings
from django.test import AsyncClient
from django.utils.module_loading import import_string


def asgi_application() -> Any:
    """The ASGI application of the settings under test."""
    return import_string(settings.ASGI_APPLICATION)


async def asgi_request(
    client: AsyncClient,
    method: str,
    url: str,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> dict[str, object]:
    """One request through the ASGI application with the client's cookies: the ASGI status, headers and
    body."""
    cookie = "; ".join(f"{key}={morsel.value}" for key, morsel in client.cookies.items())
    communicator = HttpCommunicator(
        asgi_application(),
        method,
        url,
        body=body,
        headers=[(b"host", b"localhost"), (b"cookie", cookie.encode()), *(headers or [])],
    )
    response: dict[str, object] = await communicator.get_response(timeout=10)
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=10)
    return response


async def asgi_get(client: AsyncClient, url: str) -> tuple[int, bytes]:
    """GET through the ASGI application with the client's session, the way daphne builds the scope."""
    response = await asgi_request(client, "GET", url)
    status, body = response["status"], response["body"]
    assert isinstance(status, int) and isinstance(body, bytes)
    return status, body
