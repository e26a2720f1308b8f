"""The `actions` maps: which actions this user may take on a job or queue now, with their URLs."""

from __future__ import annotations

from dashboard import links
from dashboard.actions import ACTIONS, BULK_ACTIONS, JOB_ACTIONS, QUEUE_ACTIONS, bulk_all
from queues import kinds
from queues.bull_writer import BULL_ACTIONS
from queues.models import JobDetail, QueueCounts, QueueRef


def supported(allowed: frozenset[str], queue: QueueRef) -> frozenset[str]:
    """`allowed` less the actions Bull's scripts cannot take, on a Bull 3/4 queue (queues.bull_writer);
    none on a queue holding both libraries' keys (queues.kinds.is_mixed), which no writer acts on."""
    if kinds.is_mixed(queue):
        return frozenset()
    return allowed & BULL_ACTIONS if kinds.is_bull(queue) else allowed


def job_actions(allowed: frozenset[str], job: JobDetail) -> dict[str, str]:
    """Job actions that apply in the job's state, of those `allowed` on its queue."""
    allowed = supported(allowed, job.queue)
    candidates = [name for name in JOB_ACTIONS if job.state in ACTIONS[name].states]
    return {name: links.job_action_url(job.queue, name, job.id) for name in candidates if name in allowed}


# Queue actions that apply only while a state holds jobs: no "Retry all failed" at 0 failed.
NEEDS_JOBS = {"retry_all": "failed", "promote_all": "delayed", "promote_oldest_delayed": "delayed"}


def idle(counts: QueueCounts) -> set[str]:
    """Queue actions that would touch nothing at these counts (their state is empty)."""
    return {name for name, state in NEEDS_JOBS.items() if not counts.counts.get(state, 0)}


def _queue_candidates(counts: QueueCounts) -> list[str]:
    skip = "pause" if counts.paused else "resume"
    return [name for name in QUEUE_ACTIONS if name != skip]


def _row_candidates(state: str) -> list[str]:
    return [name for name in BULK_ACTIONS if state in ACTIONS[name].states]


def all_actions(allowed: frozenset[str], state: str) -> set[str]:
    """Bulk actions this user may apply to every job of `state` (each needs its queue permission)."""
    result = set()
    for name in BULK_ACTIONS:
        try:
            spec, _params = bulk_all(name, state)
        except ValueError:
            continue
        if spec.name in allowed:
            result.add(name)
    return result


def queue_actions(allowed: frozenset[str], counts: QueueCounts, *, keep_idle: bool = False) -> dict[str, str]:
    """Queue actions (pause or resume, by the paused flag; no retry_all at 0 failed nor promote_all at 0
    delayed unless `keep_idle`) and `bulk`, of those `allowed`."""
    allowed = supported(allowed, counts.queue)
    skipped = set() if keep_idle else idle(counts)
    result = {
        name: links.queue_action_url(counts.queue, name)
        for name in _queue_candidates(counts)
        if name in allowed and name not in skipped
    }
    if "bulk" in allowed:
        result["bulk"] = links.bulk_url(counts.queue)
    return result


def queue_page_actions(
    allowed: frozenset[str], counts: QueueCounts, state: str
) -> tuple[dict[str, str], set[str]]:
    """The queue's actions and the per-row (and bulk) job actions for a list of jobs in `state`. The
    idle ones are kept: the page shows them hidden, and shows them when a live count rises."""
    allowed = supported(allowed, counts.queue)
    return queue_actions(allowed, counts, keep_idle=True), {
        name for name in _row_candidates(state) if name in allowed
    }


def list_actions(allowed: frozenset[str], queue: QueueRef, state: str) -> tuple[dict[str, str], set[str]]:
    """What a job list alone shows: `bulk` (when allowed) and the per-row job actions for `state`."""
    allowed = supported(allowed, queue)
    bulk = {"bulk": links.bulk_url(queue)} if "bulk" in allowed else {}
    return bulk, {name for name in _row_candidates(state) if name in allowed}
