"""Redis clients per connection alias, one pool per event loop, and their settings."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis

from queues.models import QueueRef


@dataclass(frozen=True)
class ConnectionSettings:
    """Where one named Redis is and which of its queues the dashboard shows."""

    alias: str
    url: str
    # Discovery only looks under these prefixes when given (`bull`, `{tenant-a}` ...).
    prefixes: tuple[str, ...] = ()
    # An explicit list of `<prefix>:<name>` replaces discovery altogether.
    queues: tuple[str, ...] = ()
    socket_timeout: float = 5.0
    connect_timeout: float = 2.0
    max_connections: int = 20
    options: dict[str, object] = field(default_factory=dict, hash=False, compare=False)

    @property
    def safe_url(self) -> str:
        """The URL with any password replaced, for display and logs."""
        return redacted_url(self.url)

    def explicit_queues(self) -> list[QueueRef]:
        """The configured queue list as QueueRefs."""
        return [QueueRef.from_key(self.alias, key) for key in self.queues]


def redacted_url(url: str) -> str:
    """A Redis URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))


# redis.asyncio pools belong to the loop that created them; daphne has one loop, tests have many.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ConnectionSettings, Redis]] = (
    weakref.WeakKeyDictionary()
)


def client_for(settings: ConnectionSettings) -> Redis:
    """The shared client of this alias on the running loop (created on first use)."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(settings)
    if client is None:
        client = Redis.from_url(
            settings.url,
            decode_responses=False,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            max_connections=settings.max_connections,
            health_check_interval=30,
            client_name="bullmq-dashboard",
            **settings.options,  # type: ignore[arg-type]
        )
        per_loop[settings] = client
    return client


async def close_clients() -> None:
    """Close every client of the running loop (tests and shutdown)."""
    loop = asyncio.get_running_loop()
    for client in _clients.pop(loop, {}).values():
        await client.aclose()
