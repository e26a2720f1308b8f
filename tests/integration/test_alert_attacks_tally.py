"""Attacks (a) on the events tally of the alert monitor: a job author who can write the events stream
(XADD with an explicit id, DEL) bends the failure-rate / stall window."""

from __future__ import annotations

import time
from typing import Any

from django.test import override_settings
from redis.asyncio import Redis

from dashboard.monitor import Monitor
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.builders import add_jobs, process
from tests.support.dashboard import dashboard_settings

QUEUE = QueueRef("default", "bull", "jobs")
YEAR_MS = 365 * 86_400_000


def alerting(redis_url: str, rules: list[dict[str, Any]]) -> Any:
    alerts = {"RULES": rules, "INTERVAL": 1, "EVALUATE": False}
    return override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS=alerts))


def now() -> int:
    return int(time.time() * 1000)


async def fail_jobs(redis_url: str, count: int) -> None:
    await add_jobs(redis_url, "jobs", [("run", {}, {"removeOnFail": True}) for _ in range(count)])

    async def work(job: Any, token: str) -> None:
        raise ValueError("broken")

    await process(redis_url, "jobs", work, until=count)


async def test_one_forged_stalled_event_fires_for_the_window_not_for_centuries(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    await add_jobs(redis_url, "jobs", [("run", {}, {})])
    # One entry with an id ten years ahead (XADD accepts any id above the stream's last one).
    await redis_client.xadd(
        "bull:jobs:events", {"event": "stalled", "jobId": "x"}, id=f"{now() + 10 * YEAR_MS}-0"
    )
    with alerting(redis_url, [{"STALLED": 1, "WINDOW": "10m"}]):
        reset_directories()
        monitor = Monitor()
        start = now()
        # An entry ahead of the clock was not written by BullMQ: the stream is not counted while it
        # holds one (the problem is said), so the forged event never fires, now or later.
        first = await monitor.tick(now=start)
        assert first.firing == []
        assert "ahead of the clock" in first.signals[QUEUE].tally_problem
        later = await monitor.tick(now=start + 86_400_000)
        assert later.firing == [], "the forged event is counted until its id's minute, ten years ahead"


async def test_after_one_future_id_real_failures_never_leave_the_window(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    """Any entry with a future id (here a harmless `added`) moves every later event BullMQ writes to that
    future millisecond (Redis' `*` ids never go back): counted, the window would stop sliding and the
    failure-rate alert never resolve."""
    await add_jobs(redis_url, "jobs", [("run", {}, {})])
    await redis_client.xadd("bull:jobs:events", {"event": "added", "jobId": "x"}, id=f"{now() + YEAR_MS}-0")
    await fail_jobs(redis_url, 10)
    with alerting(redis_url, [{"FAILURE_RATE": 0.5, "MIN_FINISHED": 10, "WINDOW": "10m"}]):
        reset_directories()
        monitor = Monitor()
        start = now()
        # Every event BullMQ wrote after the forged entry has an id ahead of the clock too: the stream
        # cannot be counted until they are past (said, not guessed), so nothing fires from it.
        first = await monitor.tick(now=start)
        assert first.firing == [] and "ahead of the clock" in first.signals[QUEUE].tally_problem
        later = await monitor.tick(now=start + 3_600_000)  # an hour later, no failure since
        assert later.firing == [], "failures of an hour ago still count in a 10-minute window"


async def test_the_window_keeps_at_most_its_minutes(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    """Entries a minute apart in the future: each becomes a minute of the window that is never dropped
    (add() drops only minutes before the window): the monitor's memory grows by up to TALLY_ENTRIES
    minutes per queue and tick, for as long as the author keeps writing, and totals() walks them all."""
    await add_jobs(redis_url, "jobs", [("run", {}, {})])
    base = now() + YEAR_MS
    pipe = redis_client.pipeline(transaction=False)
    for index in range(5000):
        pipe.xadd("bull:jobs:events", {"event": "completed", "jobId": "x"}, id=f"{base + index * 60_000}-0")
    await pipe.execute()
    with alerting(redis_url, [{"FAILURE_RATE": 0.5, "WINDOW": "10m"}]):
        reset_directories()
        monitor = Monitor()
        start = now()
        for step in range(4):
            await monitor.tick(now=start + step * 30_000)
        window = monitor.windows[QUEUE]
        assert len(window.minutes) <= 10 + 2, f"{len(window.minutes)} minutes kept for a 10-minute window"


async def test_a_future_id_then_a_new_stream_does_not_blind_the_tally(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    """The author writes one entry with a future id, waits for a tick, deletes the stream: the monitor
    keeps asking for events after the future id, so every real failure of the new stream is skipped
    (until the monitor restarts, or for years)."""
    await add_jobs(redis_url, "jobs", [("run", {}, {})])
    await redis_client.xadd("bull:jobs:events", {"event": "added", "jobId": "x"}, id=f"{now() + YEAR_MS}-0")
    with alerting(redis_url, [{"FAILURE_RATE": 0.5, "MIN_FINISHED": 10, "WINDOW": "1h"}]):
        reset_directories()
        monitor = Monitor()
        assert not (await monitor.tick()).firing
        await redis_client.delete("bull:jobs:events")
        await fail_jobs(redis_url, 10)  # real failures, in a stream that starts again at now
        tick = await monitor.tick()
        assert [f.condition for f in tick.firing] == ["failure_rate"], (
            f"events after {monitor.windows[QUEUE].last_id} only are counted"
        )
