"""How a live consumer takes pushes: without a thread hop each, and without dying on a closing socket.

daphne (autobahn) raises `Disconnected: Attempt to send on a closed protocol` when the application sends
on a websocket between the close handshake and the TCP close; other servers raise their own errors. The
load and soak runs (bench/) met it: the consumer died with the exception, its `disconnect()` never ran,
and the hub kept the viewer, its groups and its per-user socket slot for good (the watcher never
stopped, and a user who met it 30 times could open no more sockets).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels import consumer as channels_consumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient, override_settings

from dashboard import consumers
from dashboard.live import groups
from dashboard.live.hub import get_hub
from tests.support.asgi import asgi_application
from tests.support.dashboard import dashboard_settings
from tests.support.live import FAST, IN_MEMORY, cookie_of
from tests.support.urls import socket_path

pytestmark = pytest.mark.host_compatible


class ClosingServer:
    """The project's application behind a server whose websocket sends fail once the socket is closing."""

    def __init__(self) -> None:
        self.app = asgi_application()
        self.closing = False
        self.refused_sends = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def server_send(message: dict[str, Any]) -> None:
            if self.closing and message["type"] == "websocket.send":
                self.refused_sends += 1
                raise RuntimeError("Attempt to send on a closed protocol")
            await send(message)

        await self.app(scope, receive, server_send)


@pytest.fixture
def live(redis_url: str) -> Iterator[str]:
    """Fast live settings and a fresh in-memory channel layer on the test Redis."""
    with override_settings(
        CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=dashboard_settings(redis_url, LIVE=FAST)
    ):
        yield redis_url


async def test_a_push_to_a_closing_socket_leaves_the_hub_clean(live: str, client: AsyncClient) -> None:
    server = ClosingServer()
    headers = [
        (b"host", b"localhost"),
        (b"origin", b"http://localhost"),
        (b"cookie", cookie_of(client).encode()),
    ]
    socket = WebsocketCommunicator(server, socket_path(), headers=headers)
    connected, _ = await socket.connect(timeout=10)
    assert connected
    hub = get_hub()
    assert hub.viewers == 1
    assert len(consumers._open_sockets) == 1

    # The browser's close frame has arrived; the server has not yet told the application.
    server.closing = True
    layer = get_channel_layer()
    await layer.group_send(groups.everyone_group(), {"type": "live.html", "html": '<span id="x"></span>'})
    # Then the server's disconnect, as daphne sends it once the TCP connection is gone.
    await socket.disconnect(timeout=10)

    assert server.refused_sends >= 1
    assert hub.viewers == 0
    assert hub.watcher is None
    assert not consumers._open_sockets
    assert groups.everyone_group() not in getattr(layer, "groups", {})


async def test_pushes_skip_the_per_message_database_hop(
    live: str, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """channels closes old database connections in a thread before every message it dispatches; pushes
    (which use the database only through database_sync_to_async) go to their handler without it."""
    hops: list[str] = []
    original = channels_consumer.aclose_old_connections

    async def counted() -> None:
        hops.append("hop")
        await original()

    monkeypatch.setattr(channels_consumer, "aclose_old_connections", counted)
    headers = [
        (b"host", b"localhost"),
        (b"origin", b"http://localhost"),
        (b"cookie", cookie_of(client).encode()),
    ]
    socket = WebsocketCommunicator(asgi_application(), socket_path(), headers=headers)
    connected, _ = await socket.connect(timeout=10)
    assert connected
    assert hops  # the connect went through channels' own dispatch
    before = len(hops)

    layer = get_channel_layer()
    for index in range(5):
        html = f'<span id="push-{index}"></span>'
        await layer.group_send(groups.everyone_group(), {"type": "live.html", "html": html})
    received = [await socket.receive_from(timeout=10) for _ in range(5)]

    assert received == [f'<span id="push-{index}"></span>' for index in range(5)]
    assert len(hops) == before
    await socket.disconnect(timeout=10)
    assert get_hub().viewers == 0
