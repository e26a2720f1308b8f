"""The `actions` maps: which actions this user may take on a job or queue now, with their URLs."""

from __future__ import annotations

from typing import Any

from dashboard import links
from dashboard.actions import ACTIONS, BULK_ACTIONS, JOB_ACTIONS, QUEUE_ACTIONS
from dashboard.permissions import apermitted
from queues.models import JobDetail, QueueCounts, QueueRef


async def job_actions(user: Any, job: JobDetail) -> dict[str, str]:
    """Job actions that apply in the job's state and that the user may take."""
    candidates = [name for name in JOB_ACTIONS if job.state in ACTIONS[name].states]
    allowed = await apermitted(user, candidates, job.queue)
    return {name: links.job_action_url(job.queue, name, job.id) for name in candidates if name in allowed}


async def queue_actions(user: Any, counts: QueueCounts) -> dict[str, str]:
    """Queue actions (pause or resume, by the paused flag) and `bulk`, as the user may take them."""
    skip = "pause" if counts.paused else "resume"
    candidates = [name for name in QUEUE_ACTIONS if name != skip]
    allowed = await apermitted(user, [*candidates, "bulk"], counts.queue)
    result = {name: links.queue_action_url(counts.queue, name) for name in candidates if name in allowed}
    if "bulk" in allowed:
        result["bulk"] = links.bulk_url(counts.queue)
    return result


async def row_actions(user: Any, queue: QueueRef, state: str) -> set[str]:
    """The per-row (and bulk) job actions for a list of jobs in `state`."""
    candidates = [name for name in BULK_ACTIONS if state in ACTIONS[name].states]
    return await apermitted(user, candidates, queue)
