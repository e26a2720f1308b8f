"""How long a queue's jobs wait and run: the age of the job next in line, and percentiles of processing
and wait time over the newest completed jobs, read by one script per queue (queues/lua/latency.lua).

Processing time is finishedOn - processedOn (the last attempt); wait time is processedOn - timestamp -
delay, from when the job was added (or, delayed, became due) to when a worker last took it, so a retried
job counts its earlier attempts and backoff in it. Percentiles are nearest-rank over the jobs read:
p50 of 200 jobs is the 100th shortest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.parsing import integer, text
from queues.scripts import run_pipeline, script

LATENCY = script("latency")
# Completed jobs read for the percentiles by default, at most MAX_RECENT_JOBS, JOBS_PER_CALL of them a
# script call (a call holds Redis while it runs: docs/security.md has what 10,000 in one took), and the
# bytes of their ids one call copies at most (job ids are chosen by job authors).
RECENT_JOBS = 200
MAX_RECENT_JOBS = 10_000
JOBS_PER_CALL = 500
ID_BUDGET = 256 * 1024
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Percentiles:
    """Nearest-rank percentiles of durations (ms) and how many durations they are of."""

    p50: int
    p90: int
    p99: int
    count: int


def percentile(ordered: Sequence[int], rank: float) -> int:
    """The nearest-rank `rank`th percentile of non-empty ascending `ordered` values."""
    if not ordered:
        raise ValueError("no values")
    position = max(1, math.ceil(rank / 100 * len(ordered)))
    return ordered[min(position, len(ordered)) - 1]


def percentiles(values: Sequence[int]) -> Percentiles | None:
    """p50, p90 and p99 of `values`; None without any."""
    if not values:
        return None
    ordered = sorted(values)
    p50, p90, p99 = (percentile(ordered, rank) for rank in PERCENTILES)
    return Percentiles(p50, p90, p99, len(ordered))


@dataclass(frozen=True)
class Latency:
    """A queue's waiting and processing times at `read_at` (ms)."""

    queue: QueueRef
    read_at: int
    # When the job next in line started waiting (ms), None when nothing waits.
    oldest_waiting_since: int | None = None
    # Completed jobs read, and the percentiles of those with the fields they need.
    jobs_read: int = 0
    processing: Percentiles | None = None
    waiting: Percentiles | None = None
    problem: str = ""

    @property
    def oldest_waiting_ms(self) -> int | None:
        """How long the job next in line has waited at the read."""
        if self.oldest_waiting_since is None:
            return None
        return max(0, self.read_at - self.oldest_waiting_since)


def queue_latency(pipe: Pipeline, queue: QueueRef, recent_jobs: int) -> int:
    """Add one queue's latency read to a pipeline: one call per JOBS_PER_CALL jobs, the first one also
    reading the job next in line; returns how many (parse their replies with parse_latency)."""
    wanted = max(0, min(recent_jobs, MAX_RECENT_JOBS))
    calls = max(1, -(-wanted // JOBS_PER_CALL))
    for call in range(calls):
        size = max(0, min(JOBS_PER_CALL, wanted - call * JOBS_PER_CALL))
        LATENCY.queue(pipe, [queue.key_prefix], [size, ID_BUDGET, call * JOBS_PER_CALL, int(call == 0)])
    return calls


async def fetch_latency(
    client: Redis, queues: list[QueueRef], now_ms: int, recent_jobs: int = RECENT_JOBS
) -> list[Latency]:
    """Each queue's latency, in order, in one pipeline; an error reply becomes that queue's problem."""
    if not queues:
        return []
    sizes: list[int] = []

    def build(pipe: Pipeline) -> None:
        sizes[:] = [queue_latency(pipe, queue, recent_jobs) for queue in queues]

    replies = await run_pipeline(client, build, [LATENCY], per_command_errors=True)
    found: list[Latency] = []
    at = 0
    for queue, size in zip(queues, sizes, strict=True):
        found.append(parse_latency(queue, now_ms, *replies[at : at + size]))
        at += size
    return found


def parse_latency(queue: QueueRef, now_ms: int, reply: object, *more: object) -> Latency:
    """A Latency from the replies of latency.lua's calls (queue_latency), the first one with the job next
    in line; an exception in place of a reply is the queue's problem."""
    replies: list[list[object]] = []
    for one in (reply, *more):
        if isinstance(one, BaseException) or not isinstance(one, list) or len(one) < 4:
            return Latency(
                queue, now_ms, problem=gettext_lazy("Redis answered with an error: %(error)s", error=str(one))
            )
        replies.append(one)
    since, kind = replies[0][0], replies[0][3]
    processing: list[int] = []
    waiting: list[int] = []
    read = 0
    for one in replies:
        read += integer(one[1]) or 0
        flat = one[2]
        fields = flat if isinstance(flat, list) else []
        for at in range(0, len(fields) - 3, 4):
            timestamp, delay, processed_on, finished_on = (integer(value) for value in fields[at : at + 4])
            if processed_on is None:
                continue
            if finished_on is not None:
                processing.append(max(0, finished_on - processed_on))
            if timestamp is not None:
                waiting.append(max(0, processed_on - timestamp - (delay or 0)))
    problem = ""
    if kind not in (None, False):
        problem = gettext_lazy(
            "%(key)s is a %(type)s, not what BullMQ keeps there",
            key=f"{queue.key_prefix}completed",
            type=text(kind),
        )
    return Latency(
        queue,
        now_ms,
        oldest_waiting_since=integer(since),
        jobs_read=read,
        processing=percentiles(processing),
        waiting=percentiles(waiting),
        problem=problem,
    )
