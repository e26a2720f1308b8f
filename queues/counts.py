"""Job counts of many queues in one pipelined round trip."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.models import QueueCounts, QueueRef
from queues.parsing import integer, text
from queues.scripts import run_pipeline, script
from queues.states import STATE_KEYS

COUNTS = script("counts")


async def fetch_counts(client: Redis, queues: list[QueueRef]) -> list[QueueCounts]:
    """Counts per state and the paused flag of each queue, in the order given."""
    if not queues:
        return []

    def build(pipe: Pipeline) -> None:
        for queue in queues:
            COUNTS.queue(pipe, [queue.key_prefix], [])

    replies = await run_pipeline(client, build, [COUNTS])
    return [parse_counts(queue, reply) for queue, reply in zip(queues, replies, strict=True)]


def parse_counts(queue: QueueRef, reply: list[object]) -> QueueCounts:
    """A QueueCounts from one reply of counts.lua."""
    counts = {state.name: integer(value) or 0 for state, value in zip(STATE_KEYS, reply, strict=False)}
    paused_flag = text(reply[len(STATE_KEYS)]) if len(reply) > len(STATE_KEYS) else ""
    version = text(reply[len(STATE_KEYS) + 1]) if len(reply) > len(STATE_KEYS) + 1 else ""
    return QueueCounts(queue, counts, paused=paused_flag not in ("", "0"), version=version)
