"""Read-only Redis users: which queues the connection's ACL lets the dashboard change, asked once a
minute per queue (queues/write_access.py), so that pages offer no action the Redis user may not take
and an action refused anyway says why.

The verdict is kept per process in memory; a queue that Redis did not answer for is asked again on its
next page, and until then counts as writable (the write itself is then refused and answered clearly).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard import registry
from dashboard.conf import get_config
from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.write_access import WriteAccess, probe_write_access

logger = logging.getLogger("bullmq_dashboard")

# Seconds a verdict is kept: an ACL changed by an operator is seen within this.
KEEP_SECONDS = 60.0
# Verdicts kept at most (of queues that exist); past it the oldest is dropped.
MAX_KEPT = 10_000
_verdicts: dict[tuple[str, str], tuple[float, WriteAccess]] = {}


def _key(queue: QueueRef) -> tuple[str, str]:
    return (queue.connection, queue.key_prefix)


async def refresh(queue: QueueRef) -> None:
    """Ask Redis whether its user may change this queue, unless a verdict younger than KEEP_SECONDS is
    kept. Nothing is asked when settings make the queue read-only anyway."""
    config = get_config()
    if config.read_only or queue.key in config.read_only_queues or queue.connection not in config.connections:
        return
    kept = _verdicts.get(_key(queue))
    if kept is not None and time.monotonic() - kept[0] < KEEP_SECONDS:
        return
    try:
        # Only a queue that is there: a made-up queue key in a URL would cost a probe per request and,
        # MAX_KEPT of them, push out the verdicts of real queues (its page answers 404 anyway).
        await registry.find_queue(queue.connection, queue.key)
        verdict = await probe_write_access(registry.client(queue.connection), queue)
    except registry.UnknownQueue:
        return
    except (RedisConnectionError, RedisTimeoutError, OSError):
        # Redis away or slow: the page would wait for it again, so it answers now with this fault.
        raise
    except RedisError as exc:  # an error reply: the probe could not tell; the page reads on
        logger.debug("write access of %s not known: %s", queue.key, type(exc).__name__)
        return
    if verdict.writable is False and (kept is None or kept[1].writable is not False):
        logger.info(
            "the Redis user of connection %s may not change %s (%s): actions there are off",
            queue.connection,
            queue.key,
            ", ".join(verdict.denied),
        )
    _verdicts.pop(_key(queue), None)
    while len(_verdicts) >= MAX_KEPT:  # the oldest verdict goes, never all of them at once
        del _verdicts[next(iter(_verdicts))]
    _verdicts[_key(queue)] = (time.monotonic(), verdict)


def redis_read_only(queue: QueueRef | None) -> bool:
    """True when Redis's ACL was seen to forbid the dashboard's user to change this queue."""
    if queue is None:
        return False
    kept = _verdicts.get(_key(queue))
    return kept is not None and kept[1].writable is False


def refusal_message(queue: QueueRef) -> str:
    """Why an action on a queue that the Redis user may only read is not taken."""
    return gettext_lazy(
        "The dashboard's Redis user on connection %(connection)s may only read %(queue)s (a read-only"
        " Redis user: its ACL denies BullMQ's writes), so actions are off here. Nothing was changed.",
        connection=queue.connection,
        queue=queue.key,
    )


def forget() -> None:
    """Drop every kept verdict (settings changed; tests)."""
    _verdicts.clear()


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "BULLMQ_DASHBOARD":
        forget()
