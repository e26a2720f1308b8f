"""Queue state built through the Python `bullmq` package, the way producers and workers make it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bullmq import Queue, Worker


async def add_jobs(
    url: str, name: str, jobs: list[tuple[str, Any, dict[str, Any]]], prefix: str = "bull"
) -> None:
    """Add (name, data, opts) jobs to a queue."""
    queue = Queue(name, {"connection": url, "prefix": prefix})
    try:
        for job_name, data, opts in jobs:
            await queue.add(job_name, data, opts)
    finally:
        await queue.close()


async def process(
    url: str,
    name: str,
    processor: Callable[[Any, str], Awaitable[Any]],
    until: int,
    prefix: str = "bull",
    wait_seconds: float = 20.0,
) -> None:
    """Run a worker until `until` jobs have completed or failed for good."""
    finished = asyncio.Event()
    count = 0

    def on_done(*_: Any) -> None:
        nonlocal count
        count += 1
        if count >= until:
            finished.set()

    worker = Worker(name, processor, {"connection": url, "prefix": prefix, "autorun": False})
    worker.on("completed", on_done)
    worker.on(
        "failed", lambda job, *rest: on_done() if job.attemptsMade >= job.opts.get("attempts", 1) else None
    )
    runner = asyncio.ensure_future(worker.run())
    try:
        await asyncio.wait_for(finished.wait(), wait_seconds)
    finally:
        await worker.close()
        await runner
        # The Python Worker's loop can take a connection from a pool after close() disconnected it (an
        # unclosed-connection warning now and then under load, an error with warnings as errors).
        for connection in (worker.redisConnection, worker.blockingRedisConnection):
            if connection is not None:
                await connection.conn.connection_pool.disconnect()


async def pause(url: str, name: str, prefix: str = "bull") -> None:
    """Pause a queue."""
    queue = Queue(name, {"connection": url, "prefix": prefix})
    try:
        await queue.pause()
    finally:
        await queue.close()
