"""What the health verdict costs Redis (docs/health.md): reads of N queues (signals and CLIENT LIST) while
their events tally catches up and after, a re-judge from kept inputs, and counts.lua for comparison, on a
throwaway Redis. Not a test: `.venv/bin/python -m bench.health 20 200 1000`."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

# Events written per queue (what a busy queue's stream holds for its window), every tenth `stalled`.
EVENTS = 200


async def _stats(client: Any) -> dict[str, tuple[int, int]]:
    found = await client.info("commandstats")
    return {name: (values.get("calls", 0), values.get("usec", 0)) for name, values in found.items()}


def _delta(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], name: str
) -> tuple[int, float]:
    old, new = before.get(f"cmdstat_{name}", (0, 0)), after.get(f"cmdstat_{name}", (0, 0))
    return new[0] - old[0], (new[1] - old[1]) / 1000


async def measure(url: str, size: int) -> None:
    """Fill a Redis with `size` queues and print what each kind of read costs."""
    from bullmq import Queue
    from django.test import override_settings
    from redis.asyncio import Redis

    from dashboard.health import HealthService
    from dashboard.registry import all_queues, reset_directories
    from queues.connections import close_clients
    from queues.counts import fetch_counts
    from queues.signals import fetch_signals
    from tests.support.dashboard import dashboard_settings

    raw = Redis.from_url(url)
    for index in range(size):
        queue = Queue(f"q{index}", {"connection": url})
        for job in range(3):
            await queue.add("x", {"i": job})
        await queue.close()
    pipe = raw.pipeline(transaction=False)
    for index in range(size):
        for event in range(EVENTS):
            kind = "completed" if event % 10 else "stalled"
            pipe.xadd(f"bull:q{index}:events", {"event": kind, "jobId": str(event), "returnvalue": "null"})
    await pipe.execute()
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(url, OVERVIEW_MAX_QUEUES=10_000)):
        reset_directories()
        queues = await all_queues()
        service = HealthService()
        reads: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("first read", lambda: service.read("default", queues)),
            ("second read", lambda: service.read("default", queues)),
            ("third read", lambda: service.read("default", queues)),
            ("fourth read", lambda: service.read("default", queues)),
            ("counts.lua alone", lambda: fetch_counts(raw, queues)),
            ("signals.lua, no tally", lambda: fetch_signals(raw, queues)),
            ("re-judged from kept inputs", lambda: service.verdicts(queues)),
        ]
        for label, call in reads:
            before = await _stats(raw)
            started = time.perf_counter()
            await call()
            wall = (time.perf_counter() - started) * 1000
            after = await _stats(raw)
            scripts, in_redis = _delta(before, after, "evalsha")
            lists, listing = _delta(before, after, "client|list")
            print(
                f"{size:5d} queues  {label:28s} {wall:7.1f} ms wall | {scripts:5d} EVALSHA, "
                f"{in_redis:7.1f} ms in Redis | {lists} CLIENT LIST, {listing:.2f} ms"
            )
        await close_clients()
    await raw.aclose()


def main(sizes: list[int]) -> None:
    """Measure each size on its own throwaway Redis."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from queues.throwaway_redis import ThrowawayRedis

    for size in sizes:
        with ThrowawayRedis() as server:
            asyncio.run(measure(server.url, size))


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [20, 200, 1000])
