"""The job page's reading aids beyond the job's own read: its timeline (with the events stream's
window), its newest log lines and what a flow parent waits on. Read concurrently after the job, each
bounded, each failing alone (a part that cannot be read is left out and the page says so)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from dashboard.conf import get_config
from dashboard.job_children import ChildrenOverview, children_overview
from dashboard.users import User
from queues.connections import PoolBusy
from queues.jobs import fetch_log_tail
from queues.models import JobDetail, LogPage, NotAJob, QueueRef
from queues.timeline import EventWindow, build_timeline, fetch_job_events

logger = logging.getLogger("bullmq_dashboard")

# The newest log lines shown near the top of the job page.
TAIL_LINES = 5
FAULTS = (RedisError, OSError, PoolBusy, NotAJob)


async def _events(client: Redis, job: JobDetail) -> EventWindow | None:
    try:
        return await fetch_job_events(client, job.queue, job.id)
    except FAULTS as exc:
        logger.warning("events of job %r not read: %s", job.id, exc)
        return None


async def _tail(client: Redis, job: JobDetail) -> LogPage | None:
    logs = job.logs
    if logs.count == 0:
        return None
    if logs.start + len(logs.items) >= logs.count and not logs.not_read:
        # The page read holds the last lines already.
        shown = logs.items[-TAIL_LINES:]
        return LogPage(logs.count, logs.count - len(shown), shown, TAIL_LINES)
    try:
        return await fetch_log_tail(client, job.queue, job.id, logs.count, TAIL_LINES, get_config().limits)
    except FAULTS as exc:
        logger.warning("log tail of job %r not read: %s", job.id, exc)
        return None


async def _children(
    client: Redis, job: JobDetail, known: list[QueueRef], user: User
) -> ChildrenOverview | None:
    try:
        return await children_overview(client, job, known, user)
    except FAULTS as exc:
        logger.warning("children of job %r not read: %s", job.id, exc)
        return None


async def job_reading_aids(
    client: Redis, job: JobDetail, known: list[QueueRef], user: User
) -> dict[str, Any]:
    """Context for the job page: `timeline`, `log_tail`, `children_overview`."""
    window, tail, overview = await asyncio.gather(
        _events(client, job), _tail(client, job), _children(client, job, known, user)
    )
    return {
        "timeline": build_timeline(job, window),
        "log_tail": tail,
        "children_overview": overview,
        "child_info": overview.info if overview is not None else {},
    }
