"""What alerts and the Prometheus scrape read of many queues beyond their counts, in one pipeline.

Per queue, one read-only script (queues/lua/signals.lua): the counts as the overview reads them,
Node BullMQ's completed / failed totals (the `metrics:*` hashes' `count`), when the job next in line
started waiting, and optionally a tally of the `completed`, `failed` and `stalled` events of its
stream since the id the caller read up to last time. The tally is what makes failure rates and
stalls cheap to follow: each tick reads only the events since the one before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.counts import now_ms, parse_counts
from queues.messages import gettext_lazy
from queues.models import QueueCounts, QueueRef
from queues.parsing import integer, text
from queues.scripts import run_pipeline, script

SIGNALS = script("signals")
# What one tick of the events tally reads of one queue's stream at most.
TALLY_ENTRIES = 2000
TALLY_BYTES = 1024 * 1024
MINUTE_MS = 60_000


@dataclass(frozen=True)
class MinuteTally:
    """Events of one minute of a queue's stream (the minute its entry ids fall in)."""

    minute_ms: int
    completed: int = 0
    failed: int = 0
    stalled: int = 0


@dataclass(frozen=True)
class EventTally:
    """What one read of a queue's events stream counted after the id it was given."""

    last_id: str
    # True when the entry or byte cap stopped the read: there is more to count on the next tick.
    capped: bool = False
    minutes: tuple[MinuteTally, ...] = ()
    # "future" when the stream holds ids over a minute ahead of the clock (written by hand: nothing is
    # counted), "error: ..." when Redis refused the read; "" otherwise.
    problem: str = ""

    @property
    def future(self) -> bool:
        """True when the stream holds ids ahead of the clock, so nothing was counted."""
        return self.problem == "future"


@dataclass(frozen=True)
class QueueSignals:
    """A queue's counts and what alerts and metrics need beside them (None: unknown or unreadable)."""

    counts: QueueCounts
    read_at: int
    completed_total: int | None = None
    failed_total: int | None = None
    oldest_waiting_since: int | None = None
    tally: EventTally | None = None
    # Why the events could not be tallied (the stream key holds another type), or "".
    tally_problem: str = field(default="")

    @property
    def queue(self) -> QueueRef:
        """The queue these signals are of."""
        return self.counts.queue

    @property
    def oldest_waiting_seconds(self) -> float | None:
        """How long the job next in line has waited, at the read (None when nothing waits)."""
        if self.oldest_waiting_since is None:
            return None
        return max(0, self.read_at - self.oldest_waiting_since) / 1000


async def fetch_signals(
    client: Redis,
    queues: list[QueueRef],
    *,
    now: int | None = None,
    tally_after: Mapping[QueueRef, str] | None = None,
    tally_entries: int = TALLY_ENTRIES,
    tally_bytes: int = TALLY_BYTES,
) -> list[QueueSignals]:
    """Each queue's signals, in order: one EVALSHA per queue, all in one pipeline.

    `tally_after` names, per queue, the events stream id to count after; queues it does not name are
    not tallied. An error reply for one queue becomes that queue's `error`; only an unreachable Redis
    fails the call.
    """
    if not queues:
        return []
    at = now_ms() if now is None else now
    after = tally_after or {}

    def build(pipe: Pipeline) -> None:
        for queue in queues:
            SIGNALS.queue(pipe, [queue.key_prefix], [at, after.get(queue, ""), tally_entries, tally_bytes])

    replies = await run_pipeline(client, build, [SIGNALS], per_command_errors=True)
    return [
        parse_signals(queue, reply, at, tally_asked=queue in after)
        for queue, reply in zip(queues, replies, strict=True)
    ]


def parse_signals(queue: QueueRef, reply: object, read_at: int, *, tally_asked: bool = False) -> QueueSignals:
    """QueueSignals from one reply of signals.lua."""
    if isinstance(reply, Exception) or not isinstance(reply, list) or len(reply) < 3:
        message = gettext_lazy("Redis answered with an error: %(error)s", error=str(reply))
        return QueueSignals(QueueCounts.failed(queue, message), read_at)
    counts_reply, totals, oldest, tally = reply[:-3], reply[-3], reply[-2], reply[-1]
    completed, failed = [*(totals if isinstance(totals, list) else []), None, None][:2]
    parsed_tally = parse_tally(tally) if isinstance(tally, list) else None
    tally_problem = ""
    if tally_asked and parsed_tally is None:
        tally_problem = gettext_lazy(
            "%(key)s is not a stream; its events cannot be counted.", key=queue.key_prefix + "events"
        )
    elif parsed_tally is not None and parsed_tally.future:
        tally_problem = gettext_lazy(
            "%(key)s holds entries with ids ahead of the clock (not written by BullMQ); its events "
            "are not counted until they are past.",
            key=queue.key_prefix + "events",
        )
    elif parsed_tally is not None and parsed_tally.problem:
        tally_problem = gettext_lazy(
            "The events of %(key)s cannot be counted: %(error)s",
            key=queue.key_prefix + "events",
            error=parsed_tally.problem.removeprefix("error: "),
        )
        parsed_tally = None
    return QueueSignals(
        parse_counts(queue, counts_reply),
        read_at,
        completed_total=_total(completed),
        failed_total=_total(failed),
        oldest_waiting_since=None if oldest in (None, False) else integer(oldest),
        tally=parsed_tally,
        tally_problem=tally_problem,
    )


def parse_tally(reply: list[object]) -> EventTally:
    """An EventTally from the tally part of signals.lua's reply."""
    last_id = text(reply[0]) if reply else ""
    capped = bool(integer(reply[1])) if len(reply) > 1 else False
    problem = text(reply[2]) if len(reply) > 2 else ""
    rows = reply[3:]
    minutes = tuple(
        MinuteTally(
            integer(rows[index]) or 0,
            integer(rows[index + 1]) or 0,
            integer(rows[index + 2]) or 0,
            integer(rows[index + 3]) or 0,
        )
        for index in range(0, len(rows) - 3, 4)
    )
    return EventTally(last_id, capped, minutes, problem)


def _total(value: object) -> int | None:
    # Node reads the field with parseInt(… || '0'): a number, possibly followed by anything.
    if value in (None, False):
        return None
    return integer(value)
