"""Which Redis connections the watcher cannot reach right now, and which errors mean that."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from queues.live.pending import PendingWork

logger = logging.getLogger(__name__)

# Errors that mean "Redis is not there right now": retried with backoff, never raised to viewers.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
# Any failure of a read: unreachable, or an error reply.
REDIS_FAULTS = (RedisError, OSError)

# Called with a connection alias and whether it is reachable again, once per change.
StatusChange = Callable[[str, bool], Awaitable[None]]


class Reachability:
    """The connections found unreachable. Each change is logged and reported once; a connection that
    comes back has everything viewed re-read, since its events may have been missed meanwhile."""

    def __init__(self, pending: PendingWork, on_status: StatusChange | None = None) -> None:
        self._pending = pending
        self._on_status = on_status
        self._down: set[str] = set()

    @property
    def down(self) -> frozenset[str]:
        """Connection aliases that are unreachable right now."""
        return frozenset(self._down)

    async def set_down(self, alias: str, error: BaseException) -> None:
        """A read of this connection found Redis unreachable."""
        if alias in self._down:
            return
        self._down.add(alias)
        logger.warning("live updates: Redis %s unreachable (%s); retrying", alias, error)
        if self._on_status is not None:
            await self._on_status(alias, False)

    async def set_up(self, alias: str) -> None:
        """A read of this connection succeeded."""
        if alias not in self._down:
            return
        self._down.discard(alias)
        logger.info("live updates: Redis %s is back", alias)
        self._pending.resync(alias)
        if self._on_status is not None:
            await self._on_status(alias, True)
