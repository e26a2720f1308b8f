"""Attacks (a)/(e): an error reply for a queue's signals read is taken as "nothing holds", so the queue's
firing alerts are resolved (and announced) and its conditions are never seen while the error lasts."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import redis
from django.test import override_settings
from redis.asyncio import Redis

from dashboard.models import AlertState, AuditEntry
from dashboard.monitor import Monitor
from dashboard.registry import reset_directories
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings


def alerting(redis_url: str, rules: list[dict[str, Any]]) -> Any:
    alerts = {"RULES": rules, "INTERVAL": 1, "EVALUATE": False}
    return override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS=alerts))


async def test_the_largest_stream_id_does_not_silence_the_queue(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    """A job author XADDs the largest id: the next tick asks XRANGE for `(<largest>`, Redis answers an
    error, the whole signals script of the queue fails, and its backlog alert (nothing to do with the
    stream) is resolved and announced as resolved, then never fires again."""
    await add_jobs(redis_url, "jobs", [("run", {}, {}) for _ in range(5)])
    with alerting(redis_url, [{"BACKLOG": 5, "STALLED": 100, "WINDOW": "10m"}]):
        reset_directories()
        monitor = Monitor()
        assert [f.condition for f in (await monitor.tick()).firing] == ["backlog"]
        await redis_client.xadd(
            "bull:jobs:events", {"event": "x"}, id="18446744073709551615-18446744073709551615"
        )
        await monitor.tick()  # reads the entry: the window's last id is now the largest
        tick = await monitor.tick()
        assert [f.condition for f in tick.firing] == ["backlog"], next(
            iter(tick.signals.values())
        ).counts.error
        assert not await AuditEntry.objects.filter(action="alert_resolved").aexists()


async def test_a_busy_redis_does_not_resolve_every_alert(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    """Another client's slow script (BUSY replies): every queue's read is an error reply, so every
    firing alert resolves (audit entries, webhook posts), to fire again on the next tick."""
    await add_jobs(redis_url, "jobs", [("run", {}, {}) for _ in range(5)])
    with alerting(redis_url, [{"BACKLOG": 5}]):
        reset_directories()
        monitor = Monitor()
        assert (await monitor.tick()).announced
        await redis_client.config_set("busy-reply-threshold", 50)
        blocker = redis.Redis.from_url(redis_url)
        thread = threading.Thread(
            target=lambda: _quiet(lambda: blocker.eval("while true do end", 0)), daemon=True
        )
        thread.start()
        await asyncio.sleep(0.3)
        try:
            tick = await monitor.tick()
        finally:
            killer = redis.Redis.from_url(redis_url)
            for _ in range(50):
                try:
                    killer.script_kill()
                    break
                except redis.ResponseError:
                    await asyncio.sleep(0.05)
            killer.close()
            thread.join(5)
            blocker.close()
            await redis_client.config_set("busy-reply-threshold", 5000)
        errors = {row.counts.error for row in tick.signals.values()}
        assert not tick.announced, ([(a.condition, a.firing) for a in tick.announced], errors)
        assert await AlertState.objects.acount() == 1


def _quiet(call: Any) -> None:
    with contextlib.suppress(redis.RedisError):
        call()
