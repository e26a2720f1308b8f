"""Event → publish latency and Redis commands per second of the live watcher at a steady event rate.

    .venv/bin/python -m bench.event_rate [--rate 10] [--queues 1] [--seconds 20] [--interval 1.0]

Issue 17, point 3: a count change must reach the page within 250 ms (p50) also when a queue's events
come faster than once a second. This drives the process's `EventWatcher` directly (no daphne, no
browser: what it measures is the watcher's own share, from `Queue.add` returning to the watcher
handing the new count to the hub), on a throwaway Redis: a Python `bullmq` producer adds `--rate`
jobs a second to each of `--queues` queues that have no worker (each add writes two events, `added`
and `waiting`, so 10 jobs/s is 20 events/s), and every add's latency is the time until a published
update shows that queue's waiting count at least as high as after the add. Redis commands per second
are the INFO commandstats calls of the window minus those of the same traffic with no watcher.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from bullmq import Queue
from redis.asyncio import Redis

from queues.connections import ConnectionSettings
from queues.events import EventWatcher, Interest, LiveUpdate, WatcherOptions
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis


async def total_calls(redis: Redis) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


async def produce(url: str, names: list[str], rate: float, seconds: float, added: dict[str, list]) -> None:
    """Add `rate` jobs a second to each queue on a fixed schedule; note (count after, time) per add."""
    queues = [Queue(name, {"connection": url}) for name in names]
    try:
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < seconds:
            tick += 1
            for name, queue in zip(names, queues, strict=True):
                await queue.add("tick", {"n": tick})
                added[name].append((tick, time.monotonic()))
            await asyncio.sleep(max(0.0, start + tick / rate - time.monotonic()))
    finally:
        for queue in queues:
            await queue.close()


async def run(rate: float, queues: int, seconds: float, interval: float) -> dict[str, Any]:
    with ThrowawayRedis() as server:
        url = server.url
        redis = Redis.from_url(url)
        names = [f"rate-{index}" for index in range(queues)]
        for name in names:  # the queues exist (meta) before the watcher looks
            queue = Queue(name, {"connection": url})
            await queue.add("seed", {})
            await queue.close()
        baseline_added: dict[str, list] = {name: [] for name in names}
        before = await total_calls(redis)
        await produce(url, names, rate, seconds / 2, baseline_added)
        baseline = (await total_calls(redis) - before - 1) / (seconds / 2)

        seen: dict[str, list[tuple[int, float]]] = {name: [] for name in names}

        async def publish(update: LiveUpdate) -> None:
            now = time.monotonic()
            for queue, row in update.counts.items():
                seen[queue.name].append((row.counts.get("waiting", 0), now))

        watcher = EventWatcher(
            {"default": ConnectionSettings(alias="default", url=url)},
            publish,
            options=WatcherOptions(interval=interval),
        )
        await watcher.start()
        await watcher.watch(Interest(queues=tuple(QueueRef("default", "bull", name) for name in names)))
        await asyncio.sleep(1.0)
        offset = {name: await redis.llen(f"bull:{name}:wait") for name in names}
        added: dict[str, list] = {name: [] for name in names}
        before = await total_calls(redis)
        await produce(url, names, rate, seconds, added)
        calls = (await total_calls(redis) - before - 1) / seconds
        await asyncio.sleep(interval + 0.5)
        await watcher.stop()
        await redis.aclose()

    latencies = []
    for name in names:
        for tick, at in added[name]:
            wanted = offset[name] + tick
            shown = [when for count, when in seen[name] if count >= wanted and when >= at]
            if shown:
                latencies.append((min(shown) - at) * 1000)
    latencies.sort()
    return {
        "rate_jobs_per_s": rate,
        "events_per_s_per_queue": rate * 2,
        "queues": queues,
        "interval": interval,
        "adds": sum(len(value) for value in added.values()),
        "seen": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1) if latencies else None,
        "watcher_commands_per_s": round(calls - baseline, 1),
        "traffic_commands_per_s": round(baseline, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="jobs a second per queue (2 events each)")
    parser.add_argument("--queues", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0, help="the watcher's REFRESH_INTERVAL")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.rate, args.queues, args.seconds, args.interval)), indent=2))


if __name__ == "__main__":
    main()
