"""A queue's metrics page in one round trip: throughput over a window (queues/throughput.py) and how long
its jobs wait and run (queues/latency.py)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.latency import LATENCY, RECENT_JOBS, Latency, parse_latency, queue_latency
from queues.models import QueueRef
from queues.scripts import run_pipeline
from queues.throughput import (
    THROUGHPUT,
    Throughput,
    Window,
    parse_throughput,
    queue_throughput,
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
    key_prefix: str,
    recent_jobs: int = RECENT_JOBS,
) -> Activity:
    """The queue's throughput over `window` and its latency at `now_ms`, in one pipeline; an error reply
    becomes the problem of its part, only an unreachable Redis raises."""
    bounds = window_bounds(window, now_ms)

    def build(pipe: Pipeline) -> None:
        queue_throughput(pipe, queue, bounds, key_prefix)
        queue_latency(pipe, queue, recent_jobs)

    throughput, latency = await run_pipeline(client, build, [THROUGHPUT, LATENCY], per_command_errors=True)
    return Activity(
        parse_throughput(queue, window, *bounds, throughput),
        parse_latency(queue, now_ms, latency),
    )
