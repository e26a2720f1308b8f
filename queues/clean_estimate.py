"""How many jobs a clean would touch, read before it runs (for the confirm dialog) and after it removed
nothing (to say why): one read-only script call of constant cost, whatever the state holds.

For completed and failed jobs the count is exact at the time of the read: their zsets are scored by
finishedOn, the very score BullMQ's cleanJobsInSet filters by. Delayed, prioritized and waiting jobs are
filtered by each job's own timestamp, which no cheap read can count: for them the estimate is "at most
the jobs in the state", and it says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from queues.messages import gettext_lazy, ngettext_lazy
from queues.models import QueueRef
from queues.parsing import integer, plain_text, text
from queues.scripts import script
from queues.states import state_name

CLEAN_ESTIMATE = script("clean_estimate")
# Clean's state names and the keys they live in (waiting is BullMQ's `wait` list).
_KINDS = {
    "completed": ("completed", "finished"),
    "failed": ("failed", "finished"),
    "delayed": ("delayed", "zset"),
    "prioritized": ("prioritized", "zset"),
    "waiting": ("wait", "list"),
}


@dataclass(frozen=True)
class CleanEstimate:
    """What a clean of `state` older than `grace_ms`, at most `limit` (0 = all), would remove."""

    queue: QueueRef
    state: str
    grace_ms: int
    limit: int
    # Jobs in the state now.
    total: int
    # Jobs old enough (None when the state's ages cannot be counted by score: then up to `total`).
    older: int | None
    # The key's type when it is not of BullMQ's type (nothing can be cleaned).
    wrong_type: str = ""

    @property
    def exact(self) -> bool:
        """True when `older` was counted (completed, failed); False for "at most"."""
        return self.older is not None

    @property
    def newer(self) -> int | None:
        """Jobs in the state that are too young to be removed (None when not counted)."""
        return None if self.older is None else max(self.total - self.older, 0)

    @property
    def count(self) -> int:
        """The jobs the clean would remove (at most, for the states not counted by score)."""
        candidates = self.total if self.older is None else self.older
        return min(candidates, self.limit) if self.limit else candidates

    def message(self) -> str:
        """The dialog's sentence: queue, state, age and the number of jobs, said to be an estimate."""
        state = state_name(self.state)
        if self.wrong_type:
            return gettext_lazy(
                "The %(state)s key of %(queue)s is a %(type)s, not BullMQ's: nothing can be cleaned.",
                state=state,
                queue=plain_text(self.queue.name),
                type=self.wrong_type,
            )
        age = older_than(self.grace_ms)
        capped = bool(self.limit) and (self.older if self.older is not None else self.total) > self.limit
        if self.exact:
            message = ngettext_lazy(
                "About %(count)s %(state)s job of %(queue)s, %(age)s, will be removed (an estimate:"
                " jobs finish while you read this).",
                "About %(count)s %(state)s jobs of %(queue)s, %(age)s, will be removed (an estimate:"
                " jobs finish while you read this).",
                self.count,
                state=state,
                queue=plain_text(self.queue.name),
                age=age,
            )
        else:
            message = ngettext_lazy(
                "At most %(count)s %(state)s job of %(queue)s, %(age)s, will be removed (an estimate:"
                " the ages of %(state)s jobs are checked one by one only when cleaning).",
                "At most %(count)s %(state)s jobs of %(queue)s, %(age)s, will be removed (an estimate:"
                " the ages of %(state)s jobs are checked one by one only when cleaning).",
                self.count,
                state=state,
                queue=plain_text(self.queue.name),
                age=age,
            )
        if capped:
            message = gettext_lazy(
                "%(message)s The limit stops it at %(limit)s.", message=message, limit=self.limit
            )
        return message

    def nothing_removed(self) -> str:
        """Why a clean removed nothing: no jobs in the state, all of them newer, or kept by BullMQ."""
        state = state_name(self.state)
        age = older_than(self.grace_ms)
        if self.total == 0:
            return gettext_lazy(
                "Removed 0 %(state)s jobs from %(queue)s: it has no %(state)s jobs.",
                state=state,
                queue=plain_text(self.queue.name),
            )
        if self.grace_ms and (self.newer is None or self.newer >= self.total):
            if self.newer is None:
                return ngettext_lazy(
                    "Removed 0 %(state)s jobs %(age)s from %(queue)s: its %(count)s %(state)s job is newer"
                    " (or belongs to a job scheduler).",
                    "Removed 0 %(state)s jobs %(age)s from %(queue)s: its %(count)s %(state)s jobs are all"
                    " newer (or belong to job schedulers).",
                    self.total,
                    state=state,
                    age=age,
                    queue=plain_text(self.queue.name),
                )
            return ngettext_lazy(
                "Removed 0 %(state)s jobs %(age)s from %(queue)s: its %(count)s %(state)s job is newer.",
                "Removed 0 %(state)s jobs %(age)s from %(queue)s:"
                " its %(count)s %(state)s jobs are all newer.",
                self.total,
                state=state,
                age=age,
                queue=plain_text(self.queue.name),
            )
        return ngettext_lazy(
            "Removed 0 %(state)s jobs from %(queue)s: BullMQ kept its %(count)s %(state)s job (the next run"
            " of a job scheduler, or a job a worker holds).",
            "Removed 0 %(state)s jobs from %(queue)s: BullMQ kept its %(count)s %(state)s jobs (next runs"
            " of job schedulers, or jobs workers hold).",
            self.total,
            state=state,
            queue=plain_text(self.queue.name),
        )


def older_than(grace_ms: int) -> str:
    """ "older than 1 hour", "older than 7 days", … or "of any age" (grace 0), for a sentence."""
    if grace_ms <= 0:
        return gettext_lazy("of any age")
    # Each sentence written out, so that makemessages finds it.
    if grace_ms % 86_400_000 == 0:
        count = grace_ms // 86_400_000
        return ngettext_lazy("older than %(count)s day", "older than %(count)s days", count)
    if grace_ms % 3_600_000 == 0:
        count = grace_ms // 3_600_000
        return ngettext_lazy("older than %(count)s hour", "older than %(count)s hours", count)
    if grace_ms % 60_000 == 0:
        count = grace_ms // 60_000
        return ngettext_lazy("older than %(count)s minute", "older than %(count)s minutes", count)
    if grace_ms % 1_000 == 0:
        count = grace_ms // 1_000
        return ngettext_lazy("older than %(count)s second", "older than %(count)s seconds", count)
    return gettext_lazy("older than %(ms)s ms", ms=grace_ms)


async def estimate_clean(
    client: Redis, queue: QueueRef, state: str, grace_ms: int, limit: int, now_ms: int | None = None
) -> CleanEstimate:
    """The estimate for a clean of `state` (one of CLEANABLE_STATES) older than `grace_ms`."""
    suffix, kind = _KINDS[state]
    now = round(time.time() * 1000) if now_ms is None else now_ms
    cutoff = max(now - grace_ms, -1)
    reply = await CLEAN_ESTIMATE.call(client, [queue.key_prefix + suffix], [kind, cutoff])
    total = integer(reply[0]) or 0
    wrong = text(reply[2]) if len(reply) > 2 else ""
    older = None if wrong or kind != "finished" else integer(reply[1]) or 0
    return CleanEstimate(queue, state, grace_ms, limit, total, older, wrong)
