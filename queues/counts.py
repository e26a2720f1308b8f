"""Job counts of many queues in one pipelined round trip."""

from __future__ import annotations

import time

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ClusterError, TryAgainError

from queues import kinds
from queues.messages import gettext_lazy
from queues.models import QueueCounts, QueueRef
from queues.parsing import integer, text
from queues.scripts import run_pipeline, script
from queues.states import STATE_KEYS

COUNTS = script("counts")
# How a queue of the older npm `bull` is labelled where a BullMQ queue shows its `bullmq:<version>`.
BULL_VERSION = "Bull 3/4"


def now_ms() -> int:
    """This process's clock in ms, the `now` of the failures of the last hour."""
    return int(time.time() * 1000)


async def fetch_counts(client: Redis, queues: list[QueueRef], now: int | None = None) -> list[QueueCounts]:
    """Counts per state, the paused flag and the failure recency of each queue, in the order given.

    An error reply for one queue (a key another program broke) becomes that queue's `error`; the
    others are read as usual. Only a Redis that cannot be reached fails the whole call.
    """
    if not queues:
        return []

    at = now_ms() if now is None else now

    def build(pipe: Pipeline) -> None:
        for queue in queues:
            COUNTS.queue(pipe, [queue.key_prefix], [at])

    replies = await run_pipeline(client, build, [COUNTS], per_command_errors=True)
    return [
        QueueCounts.failed(queue, read_error(reply))
        if isinstance(reply, Exception)
        else parse_counts(queue, reply)
        for queue, reply in zip(queues, replies, strict=True)
    ]


def read_error(error: Exception) -> str:
    """Why one queue's read answered an error, in words."""
    if isinstance(error, TryAgainError | ClusterError):
        # TRYAGAIN until a slot's move between nodes ends (redis-py retries it a while, then "TTL exhausted").
        return gettext_lazy(
            "Redis Cluster is moving this queue's slot between nodes (or failing over): its counts are read"
            " again in a moment (%(error)s).",
            error=str(error) or type(error).__name__,
        )
    return gettext_lazy("Redis answered with an error: %(error)s", error=str(error))


def parse_counts(queue: QueueRef, reply: list[object]) -> QueueCounts:
    """A QueueCounts from one reply of counts.lua."""
    states = len(STATE_KEYS)
    counts = {state.name: integer(value) or 0 for state, value in zip(STATE_KEYS, reply, strict=False)}
    paused_flag = text(reply[states]) if len(reply) > states else ""
    # Bull 3/4 writes no version; its queues are named as such wherever BullMQ's version is shown.
    version = text(reply[states + 1]) if len(reply) > states + 1 else ""
    if not version and kinds.is_bull(queue):
        version = BULL_VERSION
    tail = reply[states + 2] if len(reply) > states + 2 else None
    flat: list[object] = tail if isinstance(tail, list) else []
    broken = tuple((text(flat[i]), text(flat[i + 1])) for i in range(0, len(flat) - 1, 2))
    last_failed_at = _score(reply[states + 3]) if len(reply) > states + 3 else None
    failed_last_hour = integer(reply[states + 4]) if len(reply) > states + 4 else None
    last_completed_at = _score(reply[states + 5]) if len(reply) > states + 5 else None
    return QueueCounts(
        queue,
        counts,
        paused=paused_flag not in ("", "0"),
        version=version,
        broken_keys=broken,
        last_failed_at=last_failed_at,
        failed_last_hour=failed_last_hour,
        last_completed_at=last_completed_at,
    )


def _score(value: object) -> int | None:
    """A zset score (ms) as Lua returns it, a decimal string; None when missing or not a number."""
    try:
        return int(float(text(value))) if value not in (None, False) else None
    except (ValueError, OverflowError):
        return None
