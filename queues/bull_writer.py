"""The writes the dashboard makes on Bull 3/4 queues (npm `bull`, the library BullMQ grew out of), through
Bull's own Lua scripts (queues/lua/bull/, copied from bull 4.16.5).

Bull keeps its states under BullMQ's key names (`wait`, `active`, `paused` lists; `delayed`, `completed`,
`failed` zsets) but runs other scripts with other arguments: BullMQ's would write what Bull's workers
never read (a `meta` version, `events`, `prioritized`), and would make the queue look like BullMQ's. What
Bull has no script for (priorities, adding jobs, rate limits, schedulers, deduplication) is refused.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import cache, partial
from pathlib import Path
from typing import Any

from bullmq import Queue
from redis.client import NEVER_DECODE
from redis.exceptions import NoScriptError, RedisError, WatchError

from queues import kinds
from queues.actions import (
    BATCH_SIZE,
    EDITABLE_STATES,
    PROMOTABLE_STATES,
    RETRYABLE_STATES,
    CleanRequest,
    Conflict,
    Interrupted,
    Invalid,
    NewJob,
    Outcome,
    Progress,
    QueueWriter,
    check_json,
    check_retry_state,
    drained,
    gone,
    moved_all,
)
from queues.clean_estimate import estimate_clean
from queues.connections import is_cluster
from queues.keys import not_a_job
from queues.messages import gettext_lazy, ngettext_lazy
from queues.models import QueueRef
from queues.parsing import identifier, integer
from queues.states import state_name

BULL_LUA = Path(__file__).with_name("lua") / "bull"
# Bull's build (lib/scripts/*.js) puts each included file in place of its line, each file once.
_INCLUDE = re.compile(r'^--- @include "([^"]+)"[ \t]*\n?', re.MULTILINE)

# The dashboard's action names a Bull queue is offered (`bulk` is made of retry, remove and promote).
BULL_ACTIONS = frozenset(
    {
        "retry",
        "remove",
        "promote",
        "update_data",
        "pause",
        "resume",
        "clean",
        "retry_all",
        "promote_all",
        "drain",
        "obliterate",
        "bulk",
    }
)
# What a Bull Queue object passes as its own uuid: only the `waiting@<token>` channel Bull publishes
# to carries it, so that a Queue tells its own adds from others'.
TOKEN = "bullmq-dashboard"
# Bull's clean compares each job's time with its cutoff as text, and, given a limit, takes a sorted set's
# jobs by score up to the same cutoff read as a number. Twenty nines: as text later than every
# millisecond timestamp (a drain removes every waiting and delayed job, whatever the clocks of the hosts
# that added them said); as a number above every delayed job's score (its due time in ms * 4096).
FAR_FUTURE_MS = "9" * 20
# The digits put after a delayed clean's cutoff (see _delayed_cutoff).
_SCORE_DIGITS = "9" * 7
# Tries of a checked write when the watched keys change between the check and the write.
WATCH_TRIES = 5


@cache
def bull_source(name: str) -> str:
    """Bull's script `name` (e.g. `removeJob-11`) with its `--- @include` lines filled in."""
    return _inlined(BULL_LUA / f"{name}.lua", set())


def _inlined(path: Path, seen: set[Path]) -> str:
    def include(match: re.Match[str]) -> str:
        target = (path.parent / f"{match[1]}.lua").resolve()
        if not target.is_relative_to(BULL_LUA.resolve()):
            raise ValueError(f"{path.name} includes {match[1]!r}, outside {BULL_LUA}")
        if target in seen:
            return ""
        seen.add(target)
        body = _inlined(target, seen)
        return body if body.endswith("\n") else body + "\n"

    return _INCLUDE.sub(include, path.read_text(encoding="utf-8"))


def _truthy(value: Any) -> bool:
    """JavaScript's truth of a JSON value (Bull reads `opts.lifo` so)."""
    return value not in (None, False, 0, "") and not (isinstance(value, float) and math.isnan(value))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _delayed_cutoff(cutoff_ms: int) -> str:
    """A cutoff for Bull's clean of delayed jobs with a limit: as text (Bull compares each job's 13-digit
    time with it so) it is below `cutoff_ms` for exactly the times before it, since a time one less is a
    prefix of it; as a number (Bull's ZRANGEBYSCORE reads it so) it is above the score of every job due
    before the year 100,000 (due time in ms * 4096)."""
    return f"{cutoff_ms - 1}{_SCORE_DIGITS}"


class BullWriter(QueueWriter):
    """The actions on one Bull 3/4 queue, through Bull's scripts; the others raise Invalid."""

    def __init__(self, queue: QueueRef, bullmq_queue: Queue) -> None:
        if kinds.is_mixed(queue):
            raise Conflict(
                gettext_lazy(
                    "%(queue)s holds keys that only Bull 3/4 (npm bull) writes beside keys that only BullMQ"
                    " writes: both libraries wrote to it, and either one's scripts would leave jobs where the"
                    " other's workers never look. The dashboard takes no action on it; nothing was changed.",
                    queue=queue.name,
                )
            )
        super().__init__(queue, bullmq_queue)
        self._scripts: dict[str, Any] = {}

    def _script(self, name: str) -> Any:
        """Bull's script as a redis-py Script on the write client (EVALSHA, loaded on NOSCRIPT; queued on
        a pipeline, loaded before it runs)."""
        found = self._scripts.get(name)
        if found is None:
            found = self._scripts[name] = self.client.register_script(bull_source(name))
        return found

    async def _loaded(self, name: str) -> Any:
        """The script, loaded first on a Redis Cluster, whose MULTI only queues EVALSHA and never loads."""
        found = self._script(name)
        if is_cluster(self.client):
            await self.client.script_load(found.script)
        return found

    def _key(self, suffix: str) -> str:
        return self.queue.key_prefix + suffix

    def _unsupported(self, action: str) -> Invalid:
        return Invalid(
            gettext_lazy(
                "%(queue)s is a Bull 3/4 queue (npm bull), which has no %(action)s: nothing was changed.",
                queue=self.queue.name,
                action=action,
            )
        )

    async def _moved_on(self, job_id: str, allowed: tuple[str, ...], fallback: Conflict) -> Conflict:
        """The Conflict that says where a job went after a script found it out of `allowed`."""
        try:
            await self.require_state(job_id, allowed)
        except Conflict as exc:
            return exc
        return fallback

    async def _watched(
        self,
        watched: list[str],
        check: Callable[[Any], Awaitable[None]],
        name: str,
        keys: list[str],
        args: list[Any],
    ) -> Any:
        """One call of Bull's script `name`, run only if `check(<the pipeline, reading at once>)` raised
        nothing and no key of `watched` changed from before the check until the script ran (WATCH, then
        MULTI)."""
        for _ in range(WATCH_TRIES):
            script = await self._loaded(name)
            try:
                async with self.client.pipeline(transaction=True) as pipe:
                    await pipe.watch(*watched)
                    await check(pipe)
                    pipe.multi()
                    await script(keys=keys, args=args, client=pipe)
                    (reply,) = await pipe.execute()
                    return reply
            except (WatchError, NoScriptError):
                # A change to a watched key, or a SCRIPT FLUSH before EXEC: the script did not run.
                continue
        message = gettext_lazy(
            "%(queue)s kept changing while the action was checked; nothing was changed. Try again.",
            queue=self.queue.name,
        )
        raise Conflict(message)

    # ---- job actions ----

    async def retry(self, job_id: str) -> Outcome:
        """Move a failed or completed job back to wait, or to paused while the queue is paused (Bull's
        reprocessJob, as job.retry() calls it for failed jobs; its other state is completed): attempts,
        stack traces and return values are kept, a priority is not taken up again (as in Bull)."""
        state = await self.require_state(job_id, RETRYABLE_STATES)
        opts = await self._opts(job_id)
        job_key = self.queue.job_key(job_id)
        state_key = self._key(state)
        # Bull's own words for its answers -2 and -1 (lib/errors.js).
        not_there = Conflict(
            gettext_lazy(
                "Job %(job)s could not be retried: %(reason)s.",
                job=job_id,
                reason="the job has been already retried or has not failed",
            )
        )

        # Bull's script clears finishedOn, processedOn and failedReason before it finds the job missing
        # from the state's set: whether it is there is checked under WATCH of the job's hash, which
        # every move out of failed or completed writes.
        async def check(pipe: Any) -> None:
            if await pipe.zscore(state_key, job_id) is None:
                raise await self._moved_on(job_id, (state,), not_there)

        keys = [job_key, f"{job_key}:lock", state_key, *map(self._key, ("wait", "meta-paused", "paused"))]
        push = "RPUSH" if _truthy(opts.get("lifo")) else "LPUSH"
        args = [job_id, push, TOKEN, _now_ms()]
        reply = integer(await self._watched([job_key], check, "reprocessJob-6", keys, args))
        if reply == 0:
            raise Conflict(gone(job_id))
        if reply == -1:
            raise Conflict(
                gettext_lazy(
                    "Job %(job)s could not be retried: %(reason)s.", job=job_id, reason="the job is locked"
                )
            )
        if reply != 1:
            raise await self._moved_on(job_id, (state,), not_there)
        message = gettext_lazy(
            "Job %(job)s moved from %(state)s to %(waiting)s.",
            job=job_id,
            state=state_name(state),
            waiting=state_name("waiting"),
        )
        return Outcome(1, 0, message, (job_id,))

    async def remove(self, job_id: str, remove_children: bool = True) -> Outcome:
        """Remove a job and its logs unless a worker holds its lock (Bull's removeJob; Bull has no flows,
        so `remove_children` changes nothing)."""
        if await self.state(job_id) == "none":
            raise Conflict(gone(job_id))
        job_key = self.queue.job_key(job_id)
        keys = [
            *map(self._key, ("active", "wait", "delayed", "paused", "completed", "failed", "priority")),
            job_key,
            f"{job_key}:logs",
            self._key("limiter"),
            self.queue.key_prefix,
        ]
        # Bull's removeJob answers 1 for a job that is gone too: whether it was there is taken in the same
        # MULTI, so two operators removing it at once are not both told they did.
        call = partial(await self._loaded("removeJob-11"), keys=keys, args=[job_id, TOKEN])
        existed, removed = await self._exists_around(job_key, call)
        if not existed:
            raise Conflict(gone(job_id))
        if not integer(removed):
            raise Conflict(gettext_lazy("Job %(job)s is locked by a worker and was not removed.", job=job_id))
        return Outcome(1, 0, gettext_lazy("Job %(job)s removed.", job=job_id), (job_id,))

    async def promote(self, job_id: str) -> Outcome:
        """Move a delayed job to wait (or paused) now, with its priority (Bull's promote)."""
        await self.require_state(job_id, PROMOTABLE_STATES)
        if integer(await self._promote_call(job_id)) != 0:  # -1: no longer delayed; nothing was written
            fallback = Conflict(gone(job_id))
            raise await self._moved_on(job_id, PROMOTABLE_STATES, fallback)
        message = gettext_lazy(
            "Job %(job)s promoted to %(waiting)s.", job=job_id, waiting=state_name("waiting")
        )
        return Outcome(1, 0, message, (job_id,))

    async def _promote_call(self, job_id: str, client: Any = None) -> Any:
        keys = [self._key(suffix) for suffix in ("delayed", "wait", "paused", "meta-paused", "priority")]
        args = [self.queue.key_prefix, job_id, TOKEN]
        return await self._script("promote-5")(keys=keys, args=args, client=client)

    async def update_data(self, job_id: str, data: Any) -> Outcome:
        """Replace a waiting, delayed or failed job's data (Bull's updateData, as job.update() calls it)."""
        check_json(data)
        await self.require_state(job_id, EDITABLE_STATES)
        # As JSON.stringify writes it, which Bull's workers parse.
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        keys = [self.queue.job_key(job_id)]
        if integer(await self._script("updateData-1")(keys=keys, args=[encoded])) != 0:
            raise Conflict(gone(job_id))
        return Outcome(1, 0, gettext_lazy("Data of job %(job)s updated.", job=job_id), (job_id,))

    async def change_priority(self, job_id: str, priority: int) -> Outcome:
        """Refused: Bull has no script that moves a waiting job to another priority."""
        raise self._unsupported("change_priority")

    async def add(self, job: NewJob, copied_opts: dict[str, Any] | None = None) -> Outcome:
        """Refused: Bull's addJob takes its options msgpacked, in a shape each Bull version changes."""
        raise self._unsupported("add")

    async def duplicate(self, job_id: str, data: Any | None = None, new_id: str | None = None) -> Outcome:
        """Refused: a duplicate is an add."""
        raise self._unsupported("duplicate")

    # ---- queue actions ----

    async def pause(self) -> Outcome:
        """Pause the queue: Bull's pause renames `wait` to `paused` and sets `meta-paused`."""
        await self._pause_script("paused")
        return Outcome(1, 0, gettext_lazy("Queue %(queue)s paused.", queue=self.queue.name))

    async def resume(self) -> Outcome:
        """Resume the queue: Bull's pause script, resumed (`paused` back to `wait` in one RENAME)."""
        await self._pause_script("resumed")
        return Outcome(1, 0, gettext_lazy("Queue %(queue)s resumed.", queue=self.queue.name))

    async def _pause_script(self, how: str) -> None:
        source, target = ("wait", "paused") if how == "paused" else ("paused", "wait")
        source_key, target_key = self._key(source), self._key(target)

        # Bull's RENAME would replace a target list that holds jobs (pushed there by another program or
        # a Bull 3 client that ignored the pause): refused while both exist, checked under WATCH.
        async def check(pipe: Any) -> None:
            if await pipe.exists(source_key, target_key) == 2:
                message = gettext_lazy(
                    "%(queue)s has jobs both in its %(source)s and its %(target)s list (another program put"
                    " them there); Bull's pause script would overwrite one with the other, so nothing was"
                    " changed.",
                    queue=self.queue.name,
                    source=source,
                    target=target,
                )
                raise Conflict(message)

        keys = [source_key, target_key, self._key("meta-paused"), self._key(how), self._key("meta")]
        await self._watched([source_key, target_key], check, "pause-5", keys, [how])

    async def clean(self, request: CleanRequest, progress: Progress | None = None) -> Outcome:
        """Remove up to `limit` jobs older than `grace_ms` from a state (Bull's cleanJobsInSet; a paused
        queue's waiting jobs are in its `paused` list). Locked jobs stay."""
        if request.state == "prioritized":
            message = gettext_lazy(
                "Bull 3/4 queues keep prioritized jobs among the waiting ones: clean the waiting jobs."
            )
            raise Invalid(message)
        sets = ("wait", "paused") if request.state == "waiting" else (request.state,)
        cutoff_ms = _now_ms() - request.grace_ms
        cutoff = str(cutoff_ms)  # as Bull's queue.clean() passes it
        removed: list[str] = []
        if request.state == "delayed":
            removed = await self._clean_delayed(cutoff_ms, request.limit, progress)
        else:
            remaining = request.limit if request.limit else math.inf
            for set_name in sets:
                clean_set = self._clean_list if set_name in ("wait", "paused") else self._clean_batches
                batch_removed = await clean_set(set_name, cutoff, remaining, progress, len(removed))
                removed.extend(batch_removed)
                remaining -= len(batch_removed)
                if remaining <= 0:
                    break
        if not removed:  # say why: no such jobs, all of them newer, or locked (cheap reads)
            estimate = await estimate_clean(
                self.client, self.queue, request.state, request.grace_ms, request.limit
            )
            if request.state == "waiting":  # the estimate reads `wait`; a paused queue's are in `paused`
                paused = int(await self.client.llen(self._key("paused")))
                estimate = replace(estimate, total=estimate.total + paused)
            return Outcome(0, 0, estimate.nothing_removed())
        message = ngettext_lazy(
            "Removed %(count)d %(state)s job from %(queue)s.",
            "Removed %(count)d %(state)s jobs from %(queue)s.",
            len(removed),
            state=state_name(request.state),
            queue=self.queue.name,
        )
        return Outcome(len(removed), 0, message, tuple(removed))

    def _clean_args(self, set_name: str, cutoff: str, limit: int) -> tuple[list[str], list[Any]]:
        keys = [self._key(set_name), self._key("priority"), self._key("limiter")]
        return keys, [self.queue.key_prefix, cutoff, limit, set_name]

    async def _clean_call(self, set_name: str, cutoff: str, limit: int) -> Any:
        keys, args = self._clean_args(set_name, cutoff, limit)
        return await self._script("cleanJobsInSet-3")(keys=keys, args=args)

    async def _clean_batches(
        self,
        set_name: str,
        cutoff: str,
        remaining: float,
        progress: Progress | None,
        before: int,
        until_none: bool = False,
    ) -> list[str]:
        """Bull's clean of one list or sorted set, BATCH_SIZE jobs a call (limit 0 would be one call of any
        length). A call that removes fewer than asked ends it, or with `until_none` one that removes none
        (a delayed clean looks at the first jobs due, where newer or locked ones may stay)."""
        removed: list[str] = []
        while remaining > 0:
            batch = int(min(BATCH_SIZE, remaining))
            ids = [str(job_id) for job_id in await self._clean_call(set_name, cutoff, batch)]
            removed.extend(ids)
            remaining -= len(ids)
            if progress is not None:
                await progress(before + len(removed))
            if not ids or (len(ids) < batch and not until_none):
                break
        return removed

    async def _clean_list(
        self, set_name: str, cutoff: str, remaining: float, progress: Progress | None, before: int
    ) -> list[str]:
        """Bull's clean of a waiting (or paused) list, in calls bounded like BullMQ's. Given a limit,
        Bull's script walks the list from its tail a window of `limit` jobs at a time until it removed
        that many: when few of its jobs are old enough it reads the whole list in one call (a million
        waiting jobs: seconds of Redis). So each call's limit is the number of jobs it would remove among
        the last BATCH_SIZE, read first as the script reads them; at 0 the clean ends (as BullMQ's, which
        looks at one window per call)."""
        removed: list[str] = []
        while remaining > 0:
            removable = min(await self._removable_at_tail(self._key(set_name), cutoff), remaining)
            if not removable:
                break
            ids = [str(job_id) for job_id in await self._clean_call(set_name, cutoff, int(removable))]
            removed.extend(ids)
            remaining -= len(ids)
            if progress is not None:
                await progress(before + len(removed))
            if not ids:
                break
        return removed

    async def _removable_at_tail(self, key: str, cutoff: str) -> int:
        """How many of the last BATCH_SIZE jobs of a list Bull's clean would remove now: no lock, and a
        time (finishedOn, processedOn or timestamp, the first there; a job with none keeps the time of the
        job before it, as the script's variable does) below `cutoff` as text, or none at all."""
        ids = await self.client.execute_command("LRANGE", key, -BATCH_SIZE, -1, **{NEVER_DECODE: True})
        if not ids:
            return 0
        prefix = self.queue.key_prefix.encode()
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.execute_command("EXISTS", prefix + job_id + b":lock")
            times = ("finishedOn", "processedOn", "timestamp")
            pipe.execute_command("HMGET", prefix + job_id, *times, **{NEVER_DECODE: True})
        replies = await pipe.execute(raise_on_error=False)
        bound = cutoff.encode()
        job_time: bytes | None = None
        removable = 0
        for locked, times in zip(replies[::2], replies[1::2], strict=True):
            if locked != 0:
                continue
            if not isinstance(times, list):  # not a hash: the script stops there, and says why
                removable += 1
                continue
            job_time = next((value for value in times if value is not None), job_time)
            if job_time is None or job_time < bound:
                removable += 1
        return removable

    async def _clean_delayed(self, cutoff_ms: int, limit: int, progress: Progress | None) -> list[str]:
        """Bull's clean of delayed jobs. Given a limit, Bull's script takes delayed jobs by score up to
        its cutoff, a time in ms, where their scores are due times * 4096: with the cutoff as Bull's
        queue.clean() passes it, it finds none. So a limit below their number is refused; up to
        BATCH_SIZE of them are cleaned in one call with no limit (checked under WATCH), more in calls of
        BATCH_SIZE with a cutoff written to mean the same time as text and to reach every score as a
        number (_delayed_cutoff): one call over a million delayed jobs would block Redis for seconds."""
        delayed = self._key("delayed")

        def check_limit(count: int) -> None:
            if limit and count > limit:
                message = gettext_lazy(
                    "Bull's clean script cannot stop at a limit for delayed jobs, and %(queue)s has %(count)d"
                    " of them, more than %(limit)d: clean them with limit 0 (all), or a limit of at least"
                    " %(count)d. Nothing was changed.",
                    queue=self.queue.name,
                    count=count,
                    limit=limit,
                )
                raise Invalid(message)

        total = int(await self.client.zcard(delayed))
        if total > BATCH_SIZE:
            check_limit(total)
            cutoff = _delayed_cutoff(cutoff_ms)
            return await self._clean_batches(
                "delayed", cutoff, limit or math.inf, progress, 0, until_none=True
            )

        async def check(pipe: Any) -> None:
            check_limit(int(await pipe.zcard(delayed)))

        keys, args = self._clean_args("delayed", str(cutoff_ms), 0)
        reply = await self._watched([delayed], check, "cleanJobsInSet-3", keys, args)
        removed = [str(job_id) for job_id in reply or []]
        if progress is not None:
            await progress(len(removed))
        return removed

    async def retry_all(self, state: str = "failed", progress: Progress | None = None) -> Outcome:
        """Move every failed (or completed) job back to wait or paused, 1000 per call (Bull's retryJobs,
        as queue.retryJobs() calls it; for completed jobs with that set as its second key, which the
        script reads as it reads failed: it clears the same fields as a retry of one completed job)."""
        check_retry_state(state)
        key = self._key(state)
        await self._refuse_foreign_types({state: "zset", "wait": "list", "paused": "list"})
        keys = [self.queue.key_prefix, key, *map(self._key, ("wait", "meta-paused", "paused"))]
        call = partial(await self._loaded("retryJobs-5"), keys=keys, args=[BATCH_SIZE])
        before: int | None = None
        moved = 0
        while True:
            # Counted in the same MULTI as each call: workers fail jobs between calls, never inside one.
            size, more, left = await self._counted({key: "zset"}, call)
            before = size if before is None else before
            moved += size - left
            if progress is not None:
                await progress(moved)
            if integer(more) != 1:
                break
        return self._moved(state, before or 0, moved, 0)

    async def promote_all(self, progress: Progress | None = None) -> Outcome:
        """Move every delayed job to wait or paused now, each with Bull's promote (Bull has no script for
        many), 1000 calls a pipeline."""
        delayed = self._key("delayed")
        total = int(await self.client.zcard(delayed))
        moved = skipped = 0
        while True:
            # Undecoded: an id written by another program may not be UTF-8; such ids, and ids that name
            # the queue's own keys (promote would ZREM them, then fail on the key), are stepped over.
            members = await self.client.execute_command(
                "ZRANGE", delayed, skipped, skipped + BATCH_SIZE - 1, **{NEVER_DECODE: True}
            )
            if not members:
                break
            ids = []
            for member in members:
                job_id, exact = identifier(member)
                if exact and not_a_job(job_id) is None:
                    ids.append(job_id)
                else:
                    skipped += 1
            moved += await self._promote_batch(ids, moved)
            if progress is not None:
                await progress(moved)
            if len(members) < BATCH_SIZE:
                break
        return self._moved("delayed", total, moved, skipped)

    async def _promote_batch(self, ids: list[str], done: int) -> int:
        """How many of `ids` Bull's promote moved (each call on its own: those gone meanwhile answer -1)."""
        if not ids:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            await self._promote_call(job_id, client=pipe)
        replies = await pipe.execute(raise_on_error=False)
        moved = sum(1 for reply in replies if not isinstance(reply, Exception) and integer(reply) == 0)
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors and not all(isinstance(error, NoScriptError) for error in errors):
            if done + moved:
                done_message = gettext_lazy(
                    "%(count)s delayed jobs of %(queue)s were promoted",
                    count=done + moved,
                    queue=self.queue.name,
                )
                raise Interrupted(done_message) from errors[0]
            raise errors[0]
        return moved  # NOSCRIPT (a SCRIPT FLUSH meanwhile): those jobs are still delayed, read again

    def _moved(self, state: str, before: int, moved: int, skipped: int) -> Outcome:
        return moved_all(self.queue, state, before, moved, skipped)

    async def drain(self, delayed: bool = True) -> Outcome:
        """Remove every waiting (and delayed) job that no worker holds; active, completed and failed stay
        (Bull's cleanJobsInSet on wait, paused and delayed, with no age limit, BATCH_SIZE jobs a call)."""
        sets = ("wait", "paused", "delayed") if delayed else ("wait", "paused")
        # Bull's script stops at a key of another type after the calls before it removed their jobs.
        await self._refuse_foreign_types({"wait": "list", "paused": "list", "delayed": "zset"})
        removed = 0
        try:
            for set_name in sets:
                ids = await self._clean_batches(
                    set_name, FAR_FUTURE_MS, math.inf, None, 0, until_none=set_name == "delayed"
                )
                removed += len(ids)
        except Exception as exc:
            if not removed:
                raise
            done = gettext_lazy(
                "at least %(count)s jobs of %(queue)s were drained", count=removed, queue=self.queue.name
            )
            raise Interrupted(done) from exc
        return drained(self.queue, removed or None)

    async def obliterate(self, force: bool = False) -> Outcome:
        """Delete the queue and all its jobs, 1000 a call (Bull's queue.obliterate(): pause, then its
        obliterate script until it is done)."""
        # Bull pauses before its script finds an active job and refuses: asked first, so that a refusal
        # leaves the queue as it was.
        if not force and int(await self.client.llen(self._key("active"))):
            message = gettext_lazy(
                "%(queue)s has active jobs: obliterate it with force, or once they are done. Nothing was"
                " changed.",
                queue=self.queue.name,
            )
            raise Conflict(message)
        was_paused = bool(await self.client.exists(self._key("meta-paused")))
        await self._pause_script("paused")
        paused = gettext_lazy(
            "%(queue)s was paused and may have lost some of its jobs", queue=self.queue.name
        )
        keys = [self._key("meta-paused"), self.queue.key_prefix]
        call = self._script("obliterate-2")
        calls = 0
        while True:
            try:
                reply = integer(await call(keys=keys, args=[BATCH_SIZE, "force" if force else ""]))
            except RedisError as exc:
                raise Interrupted(paused) from exc
            if reply == 0:
                break
            if reply in (-1, -2):
                said = (
                    "Cannot obliterate non-paused queue"
                    if reply == -1
                    else "Cannot obliterate queue with active jobs"
                )  # Bull's own words
                refusal = Conflict(said)
                if calls:
                    raise Interrupted(paused) from refusal
                if was_paused or reply == -1:
                    raise refusal
                # A job became active since the check: the pause taken first stays.
                message = gettext_lazy(
                    "%(said)s %(queue)s was paused first: it stays paused.", said=said, queue=self.queue.name
                )
                raise Conflict(message)
            calls += 1
        return Outcome(1, 0, gettext_lazy("Queue %(queue)s obliterated.", queue=self.queue.name))

    async def set_global_concurrency(self, concurrency: int | None) -> Outcome:
        """Refused: Bull has no global concurrency."""
        raise self._unsupported("set_global_concurrency")

    async def remove_rate_limit_key(self) -> Outcome:
        """Refused: Bull's limiter is a counter with group indexes of its own."""
        raise self._unsupported("remove_rate_limit_key")

    async def promote_oldest_delayed(self) -> Outcome:
        """Refused (a health fix of BullMQ's)."""
        raise self._unsupported("promote_oldest_delayed")

    async def release_deduplication(self, dedup_id: str) -> Outcome:
        """Refused: Bull's debounce keys are not BullMQ's deduplication."""
        raise self._unsupported("release_deduplication")

    async def remove_scheduler(self, scheduler_id: str) -> Outcome:
        """Refused: Bull's repeatables are removed by their repeat key, with Bull's removeRepeatable."""
        raise self._unsupported("remove_scheduler")
