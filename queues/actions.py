"""Every write the dashboard makes, as thin calls of the official BullMQ Lua scripts (PyPI `bullmq`).

Nothing here edits a key by hand, so Node and Python workers keep working on the same queues. Each
script checks the job's state atomically; when it says the job moved on (a worker took it, another
operator removed it) the call raises `Conflict` and nothing has changed. Writes go over the
connection's own write client (`queues.connections.writer_client_for`): the configured URL, timeouts,
TLS and ACL options, and no retries, so a write whose answer is lost is never sent twice.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bullmq import Queue
from redis.client import NEVER_DECODE
from redis.exceptions import AskError, NoScriptError, OutOfMemoryError, TryAgainError

from queues import kinds
from queues.clean_estimate import estimate_clean
from queues.connections import ConnectionSettings, client_for, is_cluster, writer_client_for
from queues.deduplication import DedupStatus, dedup_id_problem, find_dedup_holder, remove_dedup_key
from queues.discovery import confirm
from queues.jobs import fetch_job_state
from queues.keys import new_job_id_problem
from queues.messages import either, gettext_lazy, ngettext_lazy
from queues.models import NotAJob, QueueRef
from queues.parsing import identifier, integer, text
from queues.scripts import PIPELINE_RELOADS, script
from queues.states import state_name

# Jobs a batch script call moves or deletes at once: large enough to be quick, small enough that
# one call never blocks Redis for long (BullMQ itself uses 1000).
BATCH_SIZE = 1000
CLEANABLE_STATES = ("completed", "failed", "delayed", "waiting", "prioritized")
RETRYABLE_STATES = ("failed", "completed")
EDITABLE_STATES = ("waiting", "delayed", "failed", "prioritized")
PRIORITY_STATES = ("waiting", "prioritized")
PROMOTABLE_STATES = ("delayed",)
# BullMQ's limit for priorities (2 ** 21).
MAX_PRIORITY = 2_097_152
# The most of a job's data or options an action reads to copy or re-add it.
MAX_COPIED_BYTES = 16 * 1024 * 1024
# BullMQ's removeJob answer for the current run of a job scheduler, which it does not remove.
SCHEDULER_JOB = -8
# BullMQ sets no bound on a queue's global concurrency; a cap above this is no cap, and a typo.
MAX_GLOBAL_CONCURRENCY = 1_000_000

JOB_PAYLOAD = script("job_payload")
# A MULTI refused again and again while the queue's cluster slot moves (nothing of it ran).
SLOT_MOVING = gettext_lazy(
    "Redis Cluster is moving this queue's slot to another node; nothing was changed. Try again in a moment."
)

Progress = Callable[[int], Awaitable[None]]
# Calls of BullMQ's resume script per resume action (each moves at most 7,000 legacy paused jobs).
MAX_RESUME_CALLS = 1000


class Interrupted(Exception):
    """An action that failed after it had written (BullMQ's obliterate after its pause): never answered as
    "nothing was changed". Its one argument says what was done; the error is its `__cause__`."""


class Conflict(Exception):
    """The job or queue is not in a state that allows the action (anymore); nothing was changed.

    Its one argument is the sentence for people (a `queues.messages.Message`, or BullMQ's own words)."""


class Invalid(ValueError):
    """A parameter of the action is not acceptable; nothing was changed (its argument: the sentence)."""


@dataclass(frozen=True)
class Outcome:
    """What an action did: jobs (or other units) done and skipped, and a sentence for people (a Message)."""

    done: int
    skipped: int
    message: str
    job_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CleanRequest:
    """A valid clean: jobs of `state` older than `grace_ms`, at most `limit` (0 = all)."""

    state: str
    grace_ms: int
    limit: int

    def __post_init__(self) -> None:
        if self.state not in CLEANABLE_STATES:
            raise Invalid(
                gettext_lazy("state must be one of %(states)s.", states=", ".join(CLEANABLE_STATES))
            )
        if self.grace_ms < 0 or self.limit < 0:
            raise Invalid(gettext_lazy("grace and limit must not be negative."))


@dataclass(frozen=True)
class NewJob:
    """A valid job to add: name, JSON data and the options a user may set."""

    name: str
    data: Any
    opts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise Invalid(gettext_lazy("name is required."))
        check_json(self.data)


def check_retry_state(state: str) -> str:
    """`state` when jobs can be retried from it."""
    if state not in RETRYABLE_STATES:
        raise Invalid(gettext_lazy("state must be failed or completed."))
    return state


def check_priority(priority: int) -> int:
    """`priority` when BullMQ accepts it."""
    if not 0 <= priority <= MAX_PRIORITY:
        raise Invalid(gettext_lazy("priority must be between 0 and %(maximum)d.", maximum=MAX_PRIORITY))
    return priority


def check_global_concurrency(concurrency: int) -> int | None:
    """The global concurrency to set, or None (for 0) to remove it."""
    if not 0 <= concurrency <= MAX_GLOBAL_CONCURRENCY:
        raise Invalid(
            gettext_lazy(
                "concurrency must be a whole number from 1 to %(maximum)d, or 0 (or empty) to remove"
                " the cap.",
                maximum=MAX_GLOBAL_CONCURRENCY,
            )
        )
    return concurrency or None


def check_dedup_id(dedup_id: str) -> str:
    """`dedup_id` when it may be looked up and released here."""
    problem = dedup_id_problem(dedup_id)
    if problem is not None:
        raise Invalid(problem)
    return dedup_id


# Options a duplicate keeps; ids, timestamps and parent links belong to the original only.
COPIED_OPTIONS = frozenset({"attempts", "backoff", "priority", "removeOnComplete", "removeOnFail", "lifo"})
ADD_OPTIONS = {"delay": int, "priority": int, "attempts": int, "jobId": str, "lifo": bool}


def job_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The options a user may set when adding a job, validated (a custom jobId as Node BullMQ and the
    queue's own key names allow it)."""
    clean: dict[str, Any] = {}
    for name, value in opts.items():
        if value in (None, ""):
            continue
        kind = ADD_OPTIONS.get(name)
        if kind is None:
            options = ", ".join(ADD_OPTIONS)
            raise Invalid(
                gettext_lazy("Unknown job option %(name)r; use %(options)s.", name=name, options=options)
            )
        if kind is str and not isinstance(value, str):
            raise Invalid(gettext_lazy("%(name)s must be a string.", name=name))
        try:
            clean[name] = kind(value)
        except (TypeError, ValueError):
            raise Invalid(gettext_lazy("%(name)s must be %(type)s.", name=name, type=kind.__name__)) from None
    if clean.get("delay", 0) < 0 or clean.get("attempts", 1) < 1:
        raise Invalid(gettext_lazy("delay must be ≥ 0 and attempts ≥ 1."))
    check_priority(clean.get("priority", 0))
    if "jobId" in clean:
        problem = new_job_id_problem(clean["jobId"])
        if problem is not None:
            raise Invalid(problem)
    return clean


def copied_options(opts: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The options of a job (written by whoever added it) that a copy keeps, each checked against what
    BullMQ accepts; and the names of those dropped because they are not."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name in sorted(COPIED_OPTIONS & opts.keys()):
        value = opts[name]
        if _valid_option(name, value):
            kept[name] = value
        else:
            dropped.append(name)
    return kept, dropped


def _count(value: Any, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _valid_option(name: str, value: Any) -> bool:
    if name == "attempts":
        return _count(value, 1)
    if name == "priority":
        return _count(value) and value <= MAX_PRIORITY
    if name == "lifo":
        return isinstance(value, bool)
    if name == "backoff":
        if isinstance(value, dict):
            return isinstance(value.get("type"), str) and _count(value.get("delay", 0))
        return _count(value)
    # removeOnComplete / removeOnFail: a flag, a count to keep, or {age, count}
    if isinstance(value, dict):
        return set(value) <= {"age", "count", "limit"} and all(_count(v) for v in value.values())
    return isinstance(value, bool) or _count(value)


def check_json(data: Any) -> None:
    """Refuse values JSON cannot carry (NaN, infinities) before they reach a script."""
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise Invalid(gettext_lazy("data is not valid JSON: %(error)s", error=str(exc))) from exc


@asynccontextmanager
async def writer(settings: ConnectionSettings, queue: QueueRef) -> AsyncIterator[QueueWriter]:
    """A QueueWriter on the connection's shared write client (a BullWriter for a Bull 3/4 queue)."""
    # The bullmq Queue only wraps the client (its scripts are registered on it); closing it would
    # close the shared client, so it is dropped instead.
    bullmq_queue = Queue(queue.name, {"connection": writer_client_for(settings), "prefix": queue.prefix})
    # Which library's scripts may write is asked again now (one pipelined read): discovery's answer may
    # be a pass old, and another program may have written the other library's keys since.
    await confirm(client_for(settings), [queue])
    if kinds.is_bull(queue):
        from queues.bull_writer import BullWriter  # it subclasses QueueWriter, defined below

        yield BullWriter(queue, bullmq_queue)
        return
    yield QueueWriter(queue, bullmq_queue)


@dataclass(frozen=True)
class _JobHandle:
    """What BullMQ's reprocessJob reads of a Job: its id and options."""

    id: str
    opts: dict[str, Any]


class QueueWriter:
    """The actions on one queue, through one BullMQ Queue object."""

    def __init__(self, queue: QueueRef, bullmq_queue: Queue) -> None:
        self.queue = queue
        self.bullmq = bullmq_queue

    @property
    def client(self) -> Any:
        """The write client (replies decoded as str)."""
        return self.bullmq.client

    async def state(self, job_id: str) -> str:
        """The job's state, bounded like the pages read it; NotAJob for a key that is no job."""
        state = await fetch_job_state(self.client, self.queue, job_id)
        if state == "not-a-job":
            raise NotAJob(
                gettext_lazy("%(job)r does not name a job of %(queue)s.", job=job_id, queue=self.queue.key)
            )
        return state

    async def require_state(self, job_id: str, allowed: tuple[str, ...]) -> str:
        """The job's state, or Conflict when it is not one of `allowed`."""
        state = await self.state(job_id)
        if state in ("none", "unknown"):
            raise Conflict(gone(job_id))
        if state not in allowed:
            needed = either([state_name(each) for each in allowed])
            message = gettext_lazy(
                "Job %(job)s is %(state)s now; this needs it %(needed)s.",
                job=job_id,
                state=state_name(state),
                needed=needed,
            )
            raise Conflict(message)
        return state

    async def _fields(self, job_id: str, *names: str) -> list[str | None]:
        """Some fields of a job's hash, read boundedly; None for a value over MAX_COPIED_BYTES."""
        self.queue.job_key(job_id)  # NotAJob for the queue's own key names
        reply = await JOB_PAYLOAD.call(
            self.client, [self.queue.key_prefix], [job_id, MAX_COPIED_BYTES, *names]
        )
        if not reply:
            raise Conflict(gone(job_id))
        return [None if value is None else text(value) for value in reply]

    async def _opts(self, job_id: str) -> dict[str, Any]:
        (raw,) = await self._fields(job_id, "opts")
        return _json_object(raw)

    async def retry(self, job_id: str) -> Outcome:
        """Move a failed or completed job back to wait (BullMQ reprocessJob)."""
        state = await self.require_state(job_id, RETRYABLE_STATES)
        opts = await self._opts(job_id)
        try:
            await self.bullmq.backend.reprocessJob(_JobHandle(job_id, opts), state, {})
        except TypeError as exc:  # BullMQ's finishedErrors: the job left `state` meanwhile
            said = str(exc).split(". ")[0]
            raise Conflict(
                gettext_lazy("Job %(job)s could not be retried: %(reason)s.", job=job_id, reason=said)
            ) from exc
        message = gettext_lazy(
            "Job %(job)s moved from %(state)s to %(waiting)s.",
            job=job_id,
            state=state_name(state),
            waiting=state_name("waiting"),
        )
        return Outcome(1, 0, message, (job_id,))

    async def remove(self, job_id: str, remove_children: bool = True) -> Outcome:
        """Remove a job, its logs and (by BullMQ's choice) its children (BullMQ removeJob)."""
        if await self.state(job_id) == "none":
            raise Conflict(gone(job_id))
        # BullMQ's removeJob answers 1 for a job that is gone too: whether the job was there is taken in
        # the same MULTI as the script, so two operators removing it at once are not both told they did.
        scripts = self.bullmq.backend.scripts
        job_key = scripts.toKey(job_id)
        keys = [job_key, scripts.keys["repeat"]]
        args = [job_id, 1 if remove_children else 0, scripts.keys[""]]
        existed, removed = await self._exists_around(
            job_key, partial(scripts.commands["removeJob"], keys=keys, args=args)
        )
        if not existed:
            raise Conflict(gone(job_id))
        removed = integer(removed)
        if removed == SCHEDULER_JOB:
            message = gettext_lazy(
                "Job %(job)s is the next run of a job scheduler; remove the scheduler instead.", job=job_id
            )
            raise Conflict(message)
        if not removed:
            raise Conflict(gettext_lazy("Job %(job)s is locked by a worker and was not removed.", job=job_id))
        return Outcome(1, 0, gettext_lazy("Job %(job)s removed.", job=job_id), (job_id,))

    async def promote(self, job_id: str) -> Outcome:
        """Move a delayed job to wait now (BullMQ promote)."""
        await self.require_state(job_id, PROMOTABLE_STATES)
        try:
            await self.bullmq.backend.promote(job_id)
        except TypeError as exc:  # BullMQ's finishedErrors: missing or not delayed
            raise Conflict(str(exc).split(". ")[0] + ".") from exc
        message = gettext_lazy(
            "Job %(job)s promoted to %(waiting)s.", job=job_id, waiting=state_name("waiting")
        )
        return Outcome(1, 0, message, (job_id,))

    async def change_priority(self, job_id: str, priority: int) -> Outcome:
        """Give a waiting job a new priority (BullMQ changePriority)."""
        check_priority(priority)
        await self.require_state(job_id, PRIORITY_STATES)
        try:
            await self.bullmq.backend.changePriority(job_id, priority, False)
        except TypeError as exc:
            raise Conflict(str(exc).split(". ")[0] + ".") from exc
        message = gettext_lazy("Job %(job)s now has priority %(priority)d.", job=job_id, priority=priority)
        return Outcome(1, 0, message, (job_id,))

    async def update_data(self, job_id: str, data: Any) -> Outcome:
        """Replace a waiting, delayed or failed job's data (BullMQ updateData)."""
        check_json(data)
        await self.require_state(job_id, EDITABLE_STATES)
        try:
            await self.bullmq.backend.updateData(job_id, data)
        except TypeError as exc:
            raise Conflict(str(exc).split(". ")[0] + ".") from exc
        return Outcome(1, 0, gettext_lazy("Data of job %(job)s updated.", job=job_id), (job_id,))

    async def add(self, job: NewJob, copied_opts: dict[str, Any] | None = None) -> Outcome:
        """Add a new job (BullMQ addStandardJob / addDelayedJob / addPrioritizedJob); `copied_opts` are
        options taken over from another job as they are."""
        opts = {**(copied_opts or {}), **job_options(job.opts)}
        custom_id = opts.get("jobId")
        if custom_id is not None and await self.client.exists(self.queue.job_key(custom_id)):
            message = gettext_lazy(
                "A job with id %(job)s already exists in %(queue)s; nothing was added.",
                job=custom_id,
                queue=self.queue.key,
            )
            raise Conflict(message)
        added = await self.bullmq.add(job.name, job.data, opts)
        return Outcome(1, 0, gettext_lazy("Job %(job)s added.", job=str(added.id)), (str(added.id),))

    async def duplicate(self, job_id: str, data: Any | None = None, new_id: str | None = None) -> Outcome:
        """Add a copy of a job (same name and retry options, optionally new data and a chosen id)."""
        own_opts: dict[str, Any] = {"jobId": new_id} if new_id else {}
        job_options(own_opts)  # refuses ids BullMQ or the queue's keys cannot take, before any read
        name, raw_data, raw_opts = await self._fields(job_id, "name", "data", "opts")
        if data is None:
            if raw_data is None:
                message = gettext_lazy(
                    "The data of job %(job)s is too large to copy here; give the copy new data.", job=job_id
                )
                raise Invalid(message)
            try:
                data = json.loads(raw_data) if raw_data else None
            except (ValueError, RecursionError):
                message = gettext_lazy(
                    "The data of job %(job)s is not valid JSON; give the copy new data.", job=job_id
                )
                raise Invalid(message) from None
        copied, dropped = copied_options(_json_object(raw_opts))
        outcome = await self.add(NewJob(name or job_id, data, own_opts), copied)
        copy = outcome.job_ids[0]
        message = gettext_lazy("Job %(job)s duplicated as %(copy)s.", job=job_id, copy=copy)
        if dropped:
            message = gettext_lazy(
                "Job %(job)s duplicated as %(copy)s."
                " Options not copied (not what BullMQ accepts): %(options)s.",
                job=job_id,
                copy=copy,
                options=", ".join(dropped),
            )
        return Outcome(1, 0, message, outcome.job_ids)

    async def pause(self) -> Outcome:
        """Pause the queue: workers take no new jobs (BullMQ pause)."""
        await self.bullmq.pause()
        return Outcome(1, 0, gettext_lazy("Queue %(queue)s paused.", queue=self.queue.name))

    async def resume(self) -> Outcome:
        """Resume a paused queue (BullMQ pause, resumed). A queue paused by BullMQ < 6 keeps its jobs in
        a `paused` list, which BullMQ's script moves back at most 7,000 jobs a call when `wait` holds
        jobs too (it answers how many are left): it is called again until none are, in bounded steps."""
        left = integer(await self.bullmq.resume()) or 0
        for _ in range(MAX_RESUME_CALLS - 1):
            if left <= 0:
                break
            try:
                left = integer(await self.bullmq.resume()) or 0
            except Exception as exc:
                done = gettext_lazy(
                    "%(queue)s was resumed, but jobs are left in its paused list", queue=self.queue.name
                )
                raise Interrupted(done) from exc
        if left > 0:
            message = gettext_lazy(
                "Queue %(queue)s resumed; %(left)s jobs are still in its paused list: resume it again.",
                queue=self.queue.name,
                left=left,
            )
            return Outcome(1, 0, message)
        return Outcome(1, 0, gettext_lazy("Queue %(queue)s resumed.", queue=self.queue.name))

    async def set_global_concurrency(self, concurrency: int | None) -> Outcome:
        """Cap how many jobs of the queue all workers together run at once (BullMQ
        setGlobalConcurrency: `concurrency` in meta), or remove the cap for None (removeGlobalConcurrency)."""
        if concurrency is None:
            removed = integer(await self.bullmq.removeGlobalConcurrency()) or 0
            if not removed:
                message = gettext_lazy(
                    "Queue %(queue)s has no global concurrency; nothing to remove.", queue=self.queue.name
                )
                return Outcome(0, 0, message)
            message = gettext_lazy(
                "Global concurrency of queue %(queue)s removed: its workers' own concurrency applies.",
                queue=self.queue.name,
            )
            return Outcome(1, 0, message)
        await self.bullmq.setGlobalConcurrency(check_global_concurrency(concurrency) or 0)
        message = gettext_lazy(
            "Global concurrency of queue %(queue)s set to %(concurrency)d.",
            queue=self.queue.name,
            concurrency=concurrency,
        )
        return Outcome(1, 0, message)

    async def remove_rate_limit_key(self) -> Outcome:
        """End the queue's current rate limit now (BullMQ removeRateLimitKey: DEL `limiter`); workers
        take jobs again when they next ask (at most their maximumRateLimitDelay later)."""
        # BullMQ's workers keep the limiter as a string; a job may be given the id `limiter`, and its hash
        # has the very name of the key: a DEL of another type would delete that job, never a rate limit.
        kind = text(await self.client.type(self.queue.key_prefix + "limiter"))
        if kind not in ("string", "none"):
            message = gettext_lazy(
                "%(key)s is a %(type)s, not BullMQ's rate limiter (a job with the id `limiter`?); it is left"
                " alone.",
                key=self.queue.key_prefix + "limiter",
                type=kind,
            )
            raise Conflict(message)
        removed = integer(await self.bullmq.removeRateLimitKey()) or 0
        if not removed:
            message = gettext_lazy(
                "Queue %(queue)s is not rate-limited now; nothing to release.", queue=self.queue.name
            )
            return Outcome(0, 0, message)
        message = gettext_lazy(
            "Rate limit of queue %(queue)s released: workers may take jobs again.", queue=self.queue.name
        )
        return Outcome(1, 0, message)

    async def promote_oldest_delayed(self) -> Outcome:
        """Move the delayed job that is due first to wait now (BullMQ promote)."""
        # Undecoded: an id written by another program may not be UTF-8, and its text names another key.
        first = await self.client.execute_command(
            "ZRANGE", self.queue.key_prefix + "delayed", 0, 0, **{NEVER_DECODE: True}
        )
        if not first:
            message = gettext_lazy("Queue %(queue)s has no delayed jobs.", queue=self.queue.name)
            raise Conflict(message)
        job_id, exact = identifier(first[0])
        if not exact:
            message = gettext_lazy(
                "The delayed job due first, %(job)r, has an id that is not valid UTF-8; promote it with"
                " BullMQ's own job.promote().",
                job=job_id,
            )
            raise Conflict(message)
        await self.promote(job_id)
        message = gettext_lazy(
            "Job %(job)s, the delayed job due first, promoted to %(waiting)s.",
            job=job_id,
            waiting=state_name("waiting"),
        )
        return Outcome(1, 0, message, (job_id,))

    async def release_deduplication(self, dedup_id: str) -> Outcome:
        """Delete a deduplication id's key, so the next job added with it is kept (Node BullMQ's
        removeDeduplicationKey), once it is found to be this queue's (queues.deduplication), with
        BullMQ's script that deletes it only while it still names the same job."""
        holder = await find_dedup_holder(self.client, self.queue, check_dedup_id(dedup_id))
        if holder.status is DedupStatus.NONE or not holder.releasable:
            raise Conflict(holder.explanation())
        if not await remove_dedup_key(self.client, holder):
            message = gettext_lazy(
                "Deduplication id %(id)r changed hands meanwhile; nothing was released.", id=dedup_id
            )
            raise Conflict(message)
        message = gettext_lazy(
            "Deduplication id %(id)r of queue %(queue)s released from job %(job)s: the next job added"
            " with it is kept.",
            id=dedup_id,
            queue=self.queue.name,
            job=holder.job_id,
        )
        return Outcome(1, 0, message)

    async def clean(self, request: CleanRequest, progress: Progress | None = None) -> Outcome:
        """Remove up to `limit` jobs older than `grace_ms` from a state, in batches (cleanJobsInSet)."""
        key_type = "wait" if request.state == "waiting" else request.state
        removed: list[str] = []
        # limit 0 means "all": go batch by batch so no single script call runs long.
        remaining = request.limit if request.limit else math.inf
        while remaining > 0:
            batch = int(min(BATCH_SIZE, remaining))
            ids = await self.bullmq.clean(request.grace_ms, batch, key_type)
            removed.extend(str(job_id) for job_id in ids)
            remaining -= len(ids)
            if progress is not None:
                await progress(len(removed))
            if len(ids) < batch:
                break
        if not removed:  # say why: no such jobs, all of them newer, or kept by BullMQ (one cheap read)
            estimate = await estimate_clean(
                self.client, self.queue, request.state, request.grace_ms, request.limit
            )
            return Outcome(0, 0, estimate.nothing_removed())
        message = ngettext_lazy(
            "Removed %(count)d %(state)s job from %(queue)s.",
            "Removed %(count)d %(state)s jobs from %(queue)s.",
            len(removed),
            state=state_name(request.state),
            queue=self.queue.name,
        )
        return Outcome(len(removed), 0, message, tuple(removed))

    async def retry_all(self, state: str = "failed", progress: Progress | None = None) -> Outcome:
        """Move every failed (or completed) job back to wait, 1000 per script call (moveJobsToWait)."""
        check_retry_state(state)
        return await self._move_all(state, progress, 0)

    async def promote_all(self, progress: Progress | None = None) -> Outcome:
        """Move every delayed job to wait, 1000 per script call (moveJobsToWait)."""
        # BullMQ's promoteJobs bound: every delayed job, whenever it is due.
        return await self._move_all("delayed", progress, 1.7976931348623157e308)

    async def _move_all(self, state: str, progress: Progress | None, timestamp: float) -> Outcome:
        # Each batch is counted in the same MULTI as the script (the set's size just before and just
        # after it): workers failing jobs and other operators retrying them change the set between
        # batches, and a count taken around the whole loop said so many were moved that were not.
        key = self.queue.key_prefix + state
        await self._refuse_foreign_types({state: "zset", "wait": "list", "paused": "list", "active": "list"})
        scripts = self.bullmq.backend.scripts  # its add* methods queue scripts on pipelines the same way
        before: int | None = None
        moved = 0
        while True:
            keys, args = scripts.moveJobsToWaitArgs(state, BATCH_SIZE, timestamp)
            size, cursor, left = await self._counted(
                {key: "zset"},
                partial(scripts.commands["moveJobsToWait"], keys=keys, args=args),
            )
            before = size if before is None else before
            moved += size - left
            if progress is not None:
                await progress(moved)
            if not cursor:
                break
        return moved_all(self.queue, state, before, moved)

    async def _exists_around(self, key: str, call: Callable[..., Awaitable[Any]]) -> tuple[bool, Any]:
        """One BullMQ script call, queued by `call(client=<a MULTI>)` right after an EXISTS of `key`:
        whether the key was there when the script ran, and the script's reply."""

        def before(pipe: Any) -> None:
            pipe.exists(key)

        try:
            existed, reply = await self._around(call, before)
        except OutOfMemoryError:
            # At maxmemory Redis refuses every command queued in a MULTI, though a script whose first
            # write frees memory may run on its own: removing jobs is how an operator makes room, so
            # it runs alone, just after the check (two removals of one job at that very moment are
            # then both told they removed it; the job is removed once).
            if not await self.client.exists(key):
                return False, None
            return True, await call()
        return bool(existed), reply

    async def _counted(
        self, sizes: dict[str, str], call: Callable[..., Awaitable[Any]]
    ) -> tuple[int, Any, int]:
        """One BullMQ script call, queued by `call(client=<a MULTI>)` between two counts of the keys of
        `sizes` (each "list" or "zset"): the sum of their sizes just before it, its reply, the sum just
        after. Workers and other operators act between calls, never inside one: the difference is exact."""

        def count(pipe: Any) -> None:
            for key, kind in sizes.items():
                if kind == "list":
                    pipe.llen(key)
                else:
                    pipe.zcard(key)

        replies = await self._around(call, count, count)
        keys = len(sizes)
        before = sum(int(size) for size in replies[:keys])
        after = sum(int(size) for size in replies[keys + 1 :])
        return before, replies[keys], after

    async def _around(
        self,
        call: Callable[..., Awaitable[Any]],
        before: Callable[[Any], None],
        after: Callable[[Any], None] | None = None,
    ) -> list[Any]:
        """The replies of one MULTI: the reads `before` queues, the BullMQ script `call(client=<the
        MULTI>)` queues, the reads `after` queues."""
        for reload in range(PIPELINE_RELOADS + 1):
            try:
                async with self.client.pipeline(transaction=True) as pipe:
                    before(pipe)
                    await call(client=pipe)
                    if after is not None:
                        after(pipe)
                    replies: list[Any] = await pipe.execute()
                    return replies
            except NoScriptError:
                # A SCRIPT FLUSH between redis-py's load of the script and EXEC: the script did not
                # run (only the reads did), so it runs again, its script loaded anew.
                if reload == PIPELINE_RELOADS:
                    raise
                if is_cluster(self.client):
                    # A cluster's MULTI only queues EVALSHA, it never loads a script: load BullMQ's.
                    for command in self.bullmq.backend.scripts.commands.values():
                        await self.client.script_load(command.script)
            except (AskError, TryAgainError) as exc:
                # The queue's slot moves between cluster nodes (MOVED is an AskError): Redis refused the
                # MULTI before EXEC ran anything, so it is sent again, to the node the client now knows.
                if reload == PIPELINE_RELOADS:
                    raise Conflict(SLOT_MOVING) from exc
                await asyncio.sleep(0.05 * (reload + 1))
        raise AssertionError("unreachable: the last reload raises")

    async def _refuse_foreign_types(self, expected: dict[str, str]) -> None:
        """Conflict, before anything is written, when one of these queue keys holds another type than
        BullMQ keeps there (another program wrote it): moveJobsToWait takes a batch out of its set before
        it pushes it to `wait`, so a `wait` that is no list would lose the batch's jobs."""
        pipe = self.client.pipeline(transaction=False)
        for suffix in expected:
            pipe.type(self.queue.key_prefix + suffix)
        kinds = [text(kind) for kind in await pipe.execute()]
        for (suffix, wanted), kind in zip(expected.items(), kinds, strict=True):
            if kind not in (wanted, "none"):
                message = gettext_lazy(
                    "%(key)s is a %(type)s, not the %(wanted)s BullMQ keeps there (another program wrote"
                    " it); nothing was moved.",
                    key=self.queue.key_prefix + suffix,
                    type=kind,
                    wanted=wanted,
                )
                raise Conflict(message)

    async def drain(self, delayed: bool = True) -> Outcome:
        """Remove all waiting (and delayed) jobs; active, completed and failed stay (BullMQ drain)."""
        lists = [self.queue.key_prefix + suffix for suffix in ("wait", "paused")]
        zsets = [self.queue.key_prefix + suffix for suffix in ("prioritized", "delayed")]
        scripts = self.bullmq.backend.scripts
        keys = scripts.getKeys(["wait", "paused", "delayed", "prioritized", "repeat"])
        args = [scripts.keys[""], "1" if delayed else "0"]  # as BullMQ's Scripts.drain passes them
        # Counted in the same MULTI as BullMQ's drain script: workers take jobs around it, never inside.
        before, _, after = await self._counted(
            {**dict.fromkeys(lists, "list"), **dict.fromkeys(zsets, "zset")},
            partial(scripts.commands["drain"], keys, args=args),
        )
        return drained(self.queue, max(before - after, 0) if before else None)

    async def obliterate(self, force: bool = False) -> Outcome:
        """Delete the queue and all its jobs, in batches (BullMQ obliterate; pauses it first)."""
        # BullMQ pauses the queue before its script finds an active job and refuses: asked first, so that a
        # refusal leaves the queue as it was.
        if not force and int(await self.client.llen(self.queue.key_prefix + "active")):
            message = gettext_lazy(
                "%(queue)s has active jobs: obliterate it with force, or once they are done. Nothing was"
                " changed.",
                queue=self.queue.name,
            )
            raise Conflict(message)
        was_paused = bool(await self.client.hexists(self.queue.key_prefix + "meta", "paused"))
        # BullMQ's Queue.obliterate, step by step, so that a failure after the pause is said as such.
        await self.bullmq.pause()
        paused = gettext_lazy(
            "%(queue)s was paused and may have lost some of its jobs", queue=self.queue.name
        )
        try:
            while True:
                cursor = await self.bullmq.backend.obliterate(1000, force)
                if cursor is None or cursor == 0 or cursor == "0":
                    break
        except Exception as exc:
            if type(exc) is not Exception:  # Redis errors and the like: not BullMQ's refusal
                raise Interrupted(paused) from exc
            if was_paused:
                raise Conflict(str(exc)) from exc  # BullMQ refuses with active jobs unless forced
            # A job became active since the check: the pause taken first stays.
            message = gettext_lazy(
                "%(said)s %(queue)s was paused first: it stays paused.", said=str(exc), queue=self.queue.name
            )
            raise Conflict(message) from exc
        return Outcome(1, 0, gettext_lazy("Queue %(queue)s obliterated.", queue=self.queue.name))

    async def remove_scheduler(self, scheduler_id: str) -> Outcome:
        """Remove a job scheduler (or legacy repeatable) and its next delayed job (BullMQ
        removeJobScheduler); Conflict when it is gone."""
        if not scheduler_id:
            raise Invalid(gettext_lazy("%(name)s is required.", name="scheduler"))
        settings_key = f"{self.queue.key_prefix}repeat:{scheduler_id}"
        in_set = await self.client.zscore(f"{self.queue.key_prefix}repeat", scheduler_id)
        if in_set is not None and await self.client.type(settings_key) != "hash":
            # A legacy repeatable (no settings hash): removeJobScheduler would leave its next run queued.
            message = gettext_lazy(
                "%(scheduler)s is a legacy repeatable: remove it with Node BullMQ's removeRepeatableByKey, "
                "which also removes its next run.",
                scheduler=scheduler_id,
            )
            raise Invalid(message)
        missing = integer(await self.bullmq.removeJobScheduler(scheduler_id))
        if missing:
            message = gettext_lazy(
                "Job scheduler %(scheduler)s no longer exists in %(queue)s.",
                scheduler=scheduler_id,
                queue=self.queue.name,
            )
            raise Conflict(message)
        message = gettext_lazy(
            "Job scheduler %(scheduler)s removed from %(queue)s.",
            scheduler=scheduler_id,
            queue=self.queue.name,
        )
        return Outcome(1, 0, message)


def moved_all(queue: QueueRef, state: str, before: int | None, moved: int, skipped: int = 0) -> Outcome:
    """The outcome of moving every job of a state to wait: `moved` of the `before` there were (none: said
    why)."""
    if not before:
        message = gettext_lazy(
            "Moved 0 %(state)s jobs of %(queue)s: it has no %(state)s jobs.",
            state=state_name(state),
            queue=queue.name,
        )
        return Outcome(0, 0, message)
    message = ngettext_lazy(
        "Moved %(count)d %(state)s job of %(queue)s to %(waiting)s.",
        "Moved %(count)d %(state)s jobs of %(queue)s to %(waiting)s.",
        moved,
        state=state_name(state),
        queue=queue.name,
        waiting=state_name("waiting"),
    )
    return Outcome(moved, skipped, message)


def drained(queue: QueueRef, removed: int | None) -> Outcome:
    """A drain's outcome: `removed` jobs, or None when there was nothing to drain (said why)."""
    if removed is None:
        message = gettext_lazy(
            "Drained 0 jobs from %(queue)s: it has no waiting, prioritized or delayed jobs.", queue=queue.name
        )
        return Outcome(0, 0, message)
    message = ngettext_lazy(
        "Drained %(count)d job from %(queue)s.",
        "Drained %(count)d jobs from %(queue)s.",
        removed,
        queue=queue.name,
    )
    return Outcome(removed, 0, message)


def gone(job_id: str) -> str:
    """The sentence for a job that was removed meanwhile."""
    return gettext_lazy("Job %(job)s no longer exists.", job=job_id)


def _json_object(raw: str | None) -> dict[str, Any]:
    """A JSON object field written by another program; {} when it is missing, too long or malformed."""
    try:
        parsed = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
