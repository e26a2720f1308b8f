"""The process-wide queue directories, one per configured connection, and queue lookup."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.asyncio import Redis
from redis.exceptions import RedisError

from dashboard.conf import get_config
from queues.connections import client_for
from queues.discovery import Directory, confirm, in_scope
from queues.models import QueueRef

_directories: dict[str, Directory] = {}


class UnknownQueue(LookupError):
    """No configured or discovered queue has this connection and key."""


class UnknownConnection(LookupError):
    """No connection has this alias."""


def directory(alias: str) -> Directory:
    """The cached directory of one connection alias."""
    config = get_config()
    if alias not in config.connections:
        raise UnknownConnection(alias)
    found = _directories.get(alias)
    if found is None:
        found = Directory(config.connections[alias], config.discovery_interval)
        _directories[alias] = found
    return found


def reset_directories() -> None:
    """Forget every cached queue list (settings changed)."""
    _directories.clear()


@receiver(setting_changed)
def _reset_directories(*, setting: str, **kwargs: Any) -> None:
    if setting == "BULLMQ_DASHBOARD":
        reset_directories()


def client(alias: str) -> Redis:
    """The Redis client of a connection alias on the running loop."""
    config = get_config()
    if alias not in config.connections:
        raise UnknownConnection(alias)
    return client_for(config.connections[alias])


async def all_queues() -> list[QueueRef]:
    """Every queue of every connection; connections are asked concurrently."""
    aliases = list(get_config().connections)
    lists = await asyncio.gather(*(directory(alias).get() for alias in aliases))
    return [queue for queues in lists for queue in queues]


def discovering() -> list[str]:
    """The connections whose first SCAN pass is still running (their queue lists are not whole yet)."""
    return [alias for alias in get_config().connections if directory(alias).scanning]


# Work nobody waits for (throughput samples, alerts) scans for new queues at most this often: with a
# million other keys a pass is about 1,000 SCAN calls, every minute otherwise, whoever views.
BACKGROUND_LISTING_AGE = 300.0


async def reachable_queues(max_age: float | None = None) -> tuple[list[QueueRef], dict[str, str]]:
    """Every queue of the connections that answer, and why each other connection could not be listed
    (for background work, where one down connection must not stop the others); lists older than
    `max_age` are scanned again in the background (DISCOVERY_INTERVAL by default)."""
    aliases = list(get_config().connections)
    lists = await asyncio.gather(
        *(directory(alias).get(max_age) for alias in aliases), return_exceptions=True
    )
    queues: list[QueueRef] = []
    failed: dict[str, str] = {}
    for alias, listed in zip(aliases, lists, strict=True):
        if isinstance(listed, BaseException):
            if not isinstance(listed, RedisError | OSError):
                raise listed
            failed[alias] = str(listed)
        else:
            queues.extend(listed)
    return queues, failed


async def find_queue(alias: str, key: str) -> QueueRef:
    """The queue named by a URL's connection alias and `<prefix>:<name>`.

    Only a queue inside the connection's configured prefixes (or queue list) and confirmed as a
    BullMQ queue is found. A queue created since the last SCAN is confirmed with one O(1) read and
    not added to the listing: what one URL opens never changes what the overview shows others.
    """
    try:
        wanted = QueueRef.from_key(alias, key)
    except ValueError as exc:
        raise UnknownQueue(key) from exc
    found = directory(alias)
    if not in_scope(found.settings, wanted):
        raise UnknownQueue(key)
    if not found.scanning and wanted in await found.get():
        return wanted
    if not found.settings.queues and await confirm(client(alias), [wanted]):
        return wanted
    raise UnknownQueue(key)


async def stop_background_work() -> None:
    """Cancel background discovery of the running loop (tests and shutdown)."""
    for found in _directories.values():
        await found.stop()
