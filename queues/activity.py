"""A queue's metrics page in one round trip: throughput over a window (queues/throughput.py) and how long
its jobs wait and run (queues/latency.py), several script calls of each in one pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.latency import LATENCY, RECENT_JOBS, Latency, parse_latency, queue_latency
from queues.models import QueueRef
from queues.scripts import run_pipeline
from queues.throughput import (
    THROUGHPUT,
    THROUGHPUT_SAMPLES,
    Throughput,
    Window,
    lacks_evalsha_ro,
    parse_replies,
    queue_throughput,
    uses_evalsha_ro,
    window_bounds,
)


@dataclass(frozen=True)
class Activity:
    """What a queue finished over a window, and its waiting and processing times."""

    throughput: Throughput
    latency: Latency


async def fetch_activity(
    client: Redis,
    queue: QueueRef,
    window: Window,
    now_ms: int,
    key_prefix: str | None,
    recent_jobs: int = RECENT_JOBS,
) -> Activity:
    """The queue's throughput over `window` and its latency at `now_ms`, in one pipeline; an error reply
    becomes the problem of its part, only an unreachable Redis raises. Without a key prefix the
    dashboard's samples are not read."""
    bounds = window_bounds(window, now_ms)
    sizes: list[int] = []

    def build(pipe: Pipeline) -> None:
        sizes[:] = [queue_throughput(pipe, queue, window, bounds, key_prefix, uses_evalsha_ro(client))]
        queue_latency(pipe, queue, recent_jobs)

    scripts = [THROUGHPUT, THROUGHPUT_SAMPLES, LATENCY]
    replies = await run_pipeline(client, build, scripts, per_command_errors=True)
    if lacks_evalsha_ro(client, replies):
        replies = await run_pipeline(client, build, scripts, per_command_errors=True)
    throughput, latency = replies[: sizes[0]], replies[sizes[0] :]
    return Activity(
        parse_replies(queue, window, bounds, throughput, key_prefix),
        parse_latency(queue, now_ms, *latency),
    )
