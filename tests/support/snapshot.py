"""What Redis holds, key by key, to prove that a request wrote nothing (or exactly what it should).

Each key is compared by its type and content, not by DUMP: Valkey 8 serialises a hashtable-encoded
hash in its table's current order, which a read can change (incremental rehashing), so two DUMPs of an
unchanged hash may differ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis
from redis.asyncio import Redis

Snapshot = dict[bytes, Any]


def _never(key: bytes) -> bool:
    return False


async def content(client: Redis, key: bytes) -> Any:
    """A key's type and content, in an order that does not depend on how the server stores it."""
    kind = (await client.type(key)).decode()
    if kind == "hash":
        return kind, sorted((await client.hgetall(key)).items())
    if kind == "set":
        return kind, sorted(await client.smembers(key))
    if kind == "stream":
        return kind, (await client.xrange(key), await client.xinfo_groups(key))
    readers: dict[str, Callable[[], Awaitable[Any]]] = {
        "string": lambda: client.get(key),
        "list": lambda: client.lrange(key, 0, -1),
        "zset": lambda: client.zrange(key, 0, -1, withscores=True),
    }
    return kind, await readers.get(kind, lambda: client.dump(key))()


async def snapshot(client: Redis, match: str = "*", skip: Callable[[bytes], bool] = _never) -> Snapshot:
    """Every key matching `match` (but those `skip` names) and its content."""
    return {
        key: await content(client, key)
        async for key in client.scan_iter(match=match, count=1000)
        if not skip(key)
    }


def sync_content(client: redis.Redis, key: bytes) -> Any:
    """`content` for a synchronous client."""
    kind = client.type(key).decode()
    readers: dict[str, Callable[[], Any]] = {
        "string": lambda: client.get(key),
        "hash": lambda: sorted(client.hgetall(key).items()),
        "list": lambda: client.lrange(key, 0, -1),
        "set": lambda: sorted(client.smembers(key)),
        "zset": lambda: client.zrange(key, 0, -1, withscores=True),
        "stream": lambda: (client.xrange(key), client.xinfo_groups(key)),
    }
    return kind, readers.get(kind, lambda: client.dump(key))()


def sync_snapshot(client: redis.Redis, match: str = "*", skip: Callable[[bytes], bool] = _never) -> Snapshot:
    """`snapshot` for a synchronous client."""
    return {
        key: sync_content(client, key) for key in client.scan_iter(match=match, count=1000) if not skip(key)
    }


def changed(before: Snapshot, after: Snapshot) -> set[bytes]:
    """Keys added, removed or changed."""
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
