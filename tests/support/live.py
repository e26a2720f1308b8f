"""Websockets to the project's ASGI application as a browser opens them, and matchers of what they receive."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from dashboard.live import fragments
from queues.models import QueueRef
from tests.support.asgi import asgi_application

FAST = {"REFRESH_INTERVAL": 0.1, "RESYNC_INTERVAL": 1.0}
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


class LiveSocket:
    """A websocket to settings.ASGI_APPLICATION as a browser opens it, and what it received."""

    def __init__(self, path: str, cookie: str = "", origin: str = "http://localhost") -> None:
        headers = [(b"host", b"localhost"), (b"origin", origin.encode())]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        self.communicator = WebsocketCommunicator(asgi_application(), path, headers=headers)
        self.received: list[str] = []

    async def connect(self) -> tuple[bool, Any]:
        """Open the socket: (True, None) when accepted, (False, close code) when refused."""
        return await self.communicator.connect(timeout=10)

    async def wait_for(self, wanted: str | Callable[[str], bool], within: float = 20.0) -> str:
        """The first message (received before or now) that contains `wanted` or satisfies it."""

        def matches(text: str) -> bool:
            return wanted(text) if callable(wanted) else wanted in text

        for text in self.received:
            if matches(text):
                return text
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no message with {wanted!r}; got {self.received!r}")
            try:
                text = await self.communicator.receive_from(timeout=remaining)
            except TimeoutError:
                continue
            self.received.append(text)
            if matches(text):
                return text

    async def drain(self, seconds: float) -> list[str]:
        """Everything that arrives within some seconds."""
        got: list[str] = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            # receive_nothing waits without cancelling the application on a timeout (receive_from does).
            if await self.communicator.receive_nothing(timeout=min(remaining, 0.05), interval=0.01):
                continue
            text = await self.communicator.receive_from()
            self.received.append(text)
            got.append(text)
        return got

    async def close(self) -> None:
        """Disconnect and wait for the consumer to finish."""
        await self.communicator.disconnect(timeout=10)


def cookie_of(client: AsyncClient) -> str:
    """The session cookie of a logged-in test client."""
    return "; ".join(f"{key}={morsel.value}" for key, morsel in client.cookies.items())


def count_cell(queue: QueueRef, state: str, value: int) -> Callable[[str], bool]:
    """Matches a pushed count element of a queue and state showing a value."""
    pattern = re.compile(
        rf'id="{re.escape(fragments.count_dom_id(queue, state))}"[^>]*'
        rf'data-queue="{re.escape(queue.key)}" data-state="{state}">\s*(?:<a[^>]*>)?{value:,}<'
    )
    return lambda text: bool(pattern.search(text))
