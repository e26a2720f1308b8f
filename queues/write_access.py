"""Whether the connection's Redis user may take actions on a queue, asked of Redis's ACL without writing.

A read-only Redis user (an ACL without write commands on the queue's keys) can view everything, but
each of BullMQ's scripts would stop at its first write. Redis 7's `redis.acl_check_cmd`, called from a
read-only script (queues/lua/write_access.lua), tells beforehand, so that the dashboard offers no
action there. `ACL DRYRUN` and `ACL GETUSER` would tell too, but they are admin commands that such a
user rarely has; the script needs only the EVALSHA every read already needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, ResponseError

from queues.models import QueueRef
from queues.parsing import text
from queues.scripts import script

WRITE_ACCESS = script("write_access")


@dataclass(frozen=True)
class WriteAccess:
    """What Redis said: `writable` is None when it cannot tell (Redis < 7); `denied` lists the checks its
    ACL refused ("<command> <key>")."""

    writable: bool | None
    denied: tuple[str, ...] = ()


async def probe_write_access(client: Redis, queue: QueueRef) -> WriteAccess:
    """Whether this client's Redis user may run BullMQ's scripts and their writes on this queue.

    Redis errors other than an ACL refusal of the probe itself are raised (a down Redis tells nothing)."""
    try:
        reply = await WRITE_ACCESS.call(client, [queue.key_prefix + "wait"], [queue.key_prefix])
    except NoPermissionError as exc:
        # The probe's own EVALSHA (or SCRIPT LOAD) was refused: BullMQ's scripts would be too.
        return WriteAccess(False, (str(exc),))
    except ResponseError as exc:
        if "unknown command" in str(exc).lower() or "invalid command" in str(exc).lower():
            return WriteAccess(None)
        raise
    if not isinstance(reply, list):
        return WriteAccess(None)
    denied = tuple(text(item) for item in reply)
    return WriteAccess(not denied, denied)
