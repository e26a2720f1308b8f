"""Requests through config.asgi exactly as daphne makes them."""

from __future__ import annotations

from channels.testing import HttpCommunicator
from django.test import AsyncClient

from config.asgi import application


async def asgi_get(client: AsyncClient, url: str) -> tuple[int, bytes]:
    """GET through config.asgi with the client's session, the way daphne builds the scope."""
    cookie = "; ".join(f"{key}={morsel.value}" for key, morsel in client.cookies.items())
    communicator = HttpCommunicator(
        application, "GET", url, headers=[(b"host", b"localhost"), (b"cookie", cookie.encode())]
    )
    response = await communicator.get_response(timeout=10)
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=10)
    return response["status"], response["body"]
