"""Every write the dashboard makes, as thin calls of the official BullMQ Lua scripts (PyPI `bullmq`).

Nothing here edits a key by hand, so Node and Python workers keep working on the same queues. Each
script checks the job's state atomically; when it says the job moved on (a worker took it, another
operator removed it) the call raises `Conflict` and nothing has changed.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bullmq import Job, Queue

from queues.connections import ConnectionSettings
from queues.models import QueueRef

# Jobs a batch script call moves or deletes at once: large enough to be quick, small enough that
# one call never blocks Redis for long (BullMQ itself uses 1000).
BATCH_SIZE = 1000
CLEANABLE_STATES = ("completed", "failed", "delayed", "waiting", "prioritized")
RETRYABLE_STATES = ("failed", "completed")
EDITABLE_STATES = ("waiting", "delayed", "failed", "prioritized")
PRIORITY_STATES = ("waiting", "prioritized")
# BullMQ's limit for priorities (2 ** 21).
MAX_PRIORITY = 2_097_152

Progress = Callable[[int], Awaitable[None]]


class Conflict(Exception):
    """The job or queue is not in a state that allows the action (anymore); nothing was changed."""


class Invalid(ValueError):
    """A parameter of the action is not acceptable; nothing was changed."""


@dataclass(frozen=True)
class Outcome:
    """What an action did: jobs (or other units) done and skipped, and a sentence for humans."""

    done: int
    skipped: int
    message: str
    job_ids: tuple[str, ...] = ()


@asynccontextmanager
async def writer(settings: ConnectionSettings, queue: QueueRef) -> AsyncIterator[QueueWriter]:
    """A QueueWriter with its own BullMQ connection, closed when the block ends."""
    bullmq_queue = Queue(queue.name, {"connection": settings.url, "prefix": queue.prefix})
    try:
        yield QueueWriter(queue, bullmq_queue)
    finally:
        await bullmq_queue.close()


class QueueWriter:
    """The actions on one queue, through one BullMQ Queue object."""

    def __init__(self, queue: QueueRef, bullmq_queue: Queue) -> None:
        self.queue = queue
        self.bullmq = bullmq_queue

    async def state(self, job_id: str) -> str:
        """The job's state as BullMQ's getState script reports it ("unknown" when it is gone)."""
        state = await self.bullmq.getJobState(job_id)
        return str(state)

    async def require_state(self, job_id: str, allowed: tuple[str, ...]) -> str:
        """The job's state, or Conflict when it is not one of `allowed`."""
        state = await self.state(job_id)
        if state == "unknown":
            raise Conflict(f"Job {job_id} no longer exists.")
        if state not in allowed:
            raise Conflict(f"Job {job_id} is {state} now; this needs it {' or '.join(allowed)}.")
        return state

    async def retry(self, job_id: str) -> Outcome:
        """Move a failed or completed job back to wait (BullMQ reprocessJob)."""
        state = await self.require_state(job_id, RETRYABLE_STATES)
        job = await Job.fromId(self.bullmq, job_id)
        if job is None:
            raise Conflict(f"Job {job_id} no longer exists.")
        try:
            await job.retry(state)
        except Exception as exc:  # the script refuses a job that left `state` meanwhile
            raise Conflict(f"Job {job_id} could not be retried: {exc}") from exc
        return Outcome(1, 0, f"Job {job_id} moved from {state} to waiting.", (job_id,))

    async def remove(self, job_id: str, remove_children: bool = True) -> Outcome:
        """Remove a job, its logs and (by BullMQ's choice) its children (BullMQ removeJob)."""
        if await self.state(job_id) == "unknown":
            raise Conflict(f"Job {job_id} no longer exists.")
        removed = await self.bullmq.remove(job_id, {"removeChildren": remove_children})
        if not removed:
            raise Conflict(f"Job {job_id} is locked by a worker and was not removed.")
        return Outcome(1, 0, f"Job {job_id} removed.", (job_id,))

    async def promote(self, job_id: str) -> Outcome:
        """Move a delayed job to wait now (BullMQ promote)."""
        try:
            await self.bullmq.backend.promote(job_id)
        except TypeError as exc:  # BullMQ's finishedErrors: missing or not delayed
            raise Conflict(str(exc).split(". ")[0] + ".") from exc
        return Outcome(1, 0, f"Job {job_id} promoted to waiting.", (job_id,))

    async def change_priority(self, job_id: str, priority: int) -> Outcome:
        """Give a waiting job a new priority (BullMQ changePriority)."""
        if not 0 <= priority <= MAX_PRIORITY:
            raise Invalid(f"priority must be between 0 and {MAX_PRIORITY}.")
        await self.require_state(job_id, PRIORITY_STATES)
        try:
            await self.bullmq.backend.changePriority(job_id, priority, False)
        except TypeError as exc:
            raise Conflict(str(exc).split(". ")[0] + ".") from exc
        return Outcome(1, 0, f"Job {job_id} now has priority {priority}.", (job_id,))

    async def update_data(self, job_id: str, data: Any) -> Outcome:
        """Replace a waiting, delayed or failed job's data (BullMQ updateData)."""
        check_json(data)
        await self.require_state(job_id, EDITABLE_STATES)
        try:
            await self.bullmq.backend.updateData(job_id, data)
        except TypeError as exc:
            raise Conflict(str(exc).split(". ")[0] + ".") from exc
        return Outcome(1, 0, f"Data of job {job_id} updated.", (job_id,))

    async def add(self, name: str, data: Any, opts: dict[str, Any]) -> Outcome:
        """Add a new job (BullMQ addStandardJob / addDelayedJob / addPrioritizedJob)."""
        check_json(data)
        job = await self.bullmq.add(name, data, job_options(opts))
        return Outcome(1, 0, f"Job {job.id} added.", (str(job.id),))

    async def duplicate(self, job_id: str, data: Any | None = None) -> Outcome:
        """Add a copy of a job (same name and options, optionally new data) with a new id."""
        job = await Job.fromId(self.bullmq, job_id)
        if job is None:
            raise Conflict(f"Job {job_id} no longer exists.")
        opts = {key: value for key, value in dict(job.opts).items() if key in COPIED_OPTIONS}
        new_data = job.data if data is None else data
        check_json(new_data)
        copy = await self.bullmq.add(job.name, new_data, opts)
        return Outcome(1, 0, f"Job {job_id} duplicated as {copy.id}.", (str(copy.id),))

    async def pause(self) -> Outcome:
        """Pause the queue: workers take no new jobs (BullMQ pause)."""
        await self.bullmq.pause()
        return Outcome(1, 0, f"Queue {self.queue.name} paused.")

    async def resume(self) -> Outcome:
        """Resume a paused queue (BullMQ pause, resumed)."""
        await self.bullmq.resume()
        return Outcome(1, 0, f"Queue {self.queue.name} resumed.")

    async def clean(self, state: str, grace_ms: int, limit: int, progress: Progress | None = None) -> Outcome:
        """Remove up to `limit` jobs older than `grace_ms` from a state, in batches (cleanJobsInSet)."""
        if state not in CLEANABLE_STATES:
            raise Invalid(f"state must be one of {', '.join(CLEANABLE_STATES)}.")
        if grace_ms < 0 or limit < 0:
            raise Invalid("grace and limit must not be negative.")
        key_type = "wait" if state == "waiting" else state
        removed: list[str] = []
        # limit 0 means "all": go batch by batch so no single script call runs long.
        remaining = limit if limit else math.inf
        while remaining > 0:
            batch = int(min(BATCH_SIZE, remaining))
            ids = await self.bullmq.clean(grace_ms, batch, key_type)
            removed.extend(str(job_id) for job_id in ids)
            remaining -= len(ids)
            if progress is not None:
                await progress(len(removed))
            if len(ids) < batch:
                break
        message = f"Removed {len(removed)} {state} jobs from {self.queue.name}."
        return Outcome(len(removed), 0, message, tuple(removed))

    async def retry_all(self, state: str = "failed", progress: Progress | None = None) -> Outcome:
        """Move every failed (or completed) job back to wait, 1000 per script call (moveJobsToWait)."""
        if state not in RETRYABLE_STATES:
            raise Invalid("state must be failed or completed.")
        return await self._move_all(
            state, progress, lambda: self.bullmq.backend.retryJobs(state, BATCH_SIZE, 0)
        )

    async def promote_all(self, progress: Progress | None = None) -> Outcome:
        """Move every delayed job to wait, 1000 per script call (moveJobsToWait)."""
        return await self._move_all("delayed", progress, lambda: self.bullmq.backend.promoteJobs(BATCH_SIZE))

    async def _move_all(
        self, state: str, progress: Progress | None, step: Callable[[], Awaitable[Any]]
    ) -> Outcome:
        key = self.queue.key_prefix + state
        client = self.bullmq.client
        before = int(await client.zcard(key))
        while True:
            cursor = await step()
            if progress is not None:
                await progress(before - int(await client.zcard(key)))
            if not cursor:
                break
        moved = before - int(await client.zcard(key))
        return Outcome(
            max(moved, 0), 0, f"Moved {max(moved, 0)} {state} jobs of {self.queue.name} to waiting."
        )

    async def drain(self, delayed: bool = True) -> Outcome:
        """Remove all waiting (and delayed) jobs; active, completed and failed stay (BullMQ drain)."""
        client = self.bullmq.client
        keys = [self.queue.key_prefix + suffix for suffix in ("wait", "prioritized", "delayed")]
        before = [int(await client.llen(keys[0])), *[int(await client.zcard(key)) for key in keys[1:]]]
        await self.bullmq.drain(delayed)
        after = [int(await client.llen(keys[0])), *[int(await client.zcard(key)) for key in keys[1:]]]
        removed = sum(before) - sum(after)
        return Outcome(max(removed, 0), 0, f"Drained {max(removed, 0)} jobs from {self.queue.name}.")

    async def obliterate(self, force: bool = False) -> Outcome:
        """Delete the queue and all its jobs, in batches (BullMQ obliterate; pauses it first)."""
        try:
            await self.bullmq.obliterate(force)
        except Exception as exc:  # BullMQ refuses with active jobs unless forced
            raise Conflict(str(exc)) from exc
        return Outcome(1, 0, f"Queue {self.queue.name} obliterated.")


# Options a duplicate keeps; ids, timestamps and parent links belong to the original only.
COPIED_OPTIONS = frozenset({"attempts", "backoff", "priority", "removeOnComplete", "removeOnFail", "lifo"})
ADD_OPTIONS = {"delay": int, "priority": int, "attempts": int, "jobId": str, "lifo": bool}


def job_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The options a user may set when adding a job, validated."""
    clean: dict[str, Any] = {}
    for name, value in opts.items():
        if value in (None, ""):
            continue
        kind = ADD_OPTIONS.get(name)
        if kind is None:
            raise Invalid(f"Unknown job option {name!r}; use {', '.join(ADD_OPTIONS)}.")
        try:
            clean[name] = kind(value)
        except (TypeError, ValueError):
            raise Invalid(f"{name} must be {kind.__name__}.") from None
    if clean.get("delay", 0) < 0 or clean.get("attempts", 1) < 1:
        raise Invalid("delay must be ≥ 0 and attempts ≥ 1.")
    if not 0 <= clean.get("priority", 0) <= MAX_PRIORITY:
        raise Invalid(f"priority must be between 0 and {MAX_PRIORITY}.")
    return clean


def check_json(data: Any) -> None:
    """Refuse values JSON cannot carry (NaN, infinities) before they reach a script."""
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"data is not valid JSON: {exc}") from exc
