"""The process-wide queue directories, one per configured connection, and queue lookup."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.asyncio import Redis
from redis.exceptions import RedisError

from dashboard.conf import get_config
from queues import kinds
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
    """Forget every cached queue list, and what each queue was found to be (settings changed)."""
    _directories.clear()
    kinds.forget()


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


@dataclass(frozen=True)
class Listing:
    """The queues of the connections that answered, and why each other connection could not be listed."""

    queues: list[QueueRef]
    failed: dict[str, BaseException] = field(default_factory=dict)


async def listing(max_age: float | None = None) -> Listing:
    """Every queue of every connection, connections asked concurrently. One connection that is down
    leaves out only its own queues (`failed` says why); when none answered, the first one's error is
    raised, as a page about a single Redis that is down answers."""
    found = await _gather(max_age)
    if found.failed and len(found.failed) == len(get_config().connections):
        raise next(iter(found.failed.values()))
    return found


async def _gather(max_age: float | None) -> Listing:
    aliases = list(get_config().connections)
    lists = await asyncio.gather(
        *(directory(alias).get(max_age) for alias in aliases), return_exceptions=True
    )
    queues: list[QueueRef] = []
    failed: dict[str, BaseException] = {}
    for alias, listed in zip(aliases, lists, strict=True):
        if isinstance(listed, BaseException):
            if not isinstance(listed, RedisError | OSError):
                raise listed
            failed[alias] = listed
        else:
            queues.extend(listed)
    return Listing(queues, failed)


async def all_queues() -> list[QueueRef]:
    """Every queue of the connections that answer (see `listing`)."""
    return (await listing()).queues


def discovering() -> list[str]:
    """The connections whose first SCAN pass is still running (their queue lists are not whole yet)."""
    return [alias for alias in get_config().connections if directory(alias).scanning]


# Work nobody waits for (throughput samples, alerts) scans for new queues at most this often: with a
# million other keys a pass is about 1,000 SCAN calls, every minute otherwise, whoever views.
BACKGROUND_LISTING_AGE = 300.0


async def reachable_queues(max_age: float | None = None) -> tuple[list[QueueRef], dict[str, str]]:
    """Every queue of the connections that answer, and why each other connection could not be listed
    (for background work, which goes on when no connection answers); lists older than `max_age` are
    scanned again in the background (DISCOVERY_INTERVAL by default)."""
    found = await _gather(max_age)
    return found.queues, {alias: str(exc) for alias, exc in found.failed.items()}


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
