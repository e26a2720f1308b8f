"""What alerts and the Prometheus scrape read of many queues beyond their counts, in one pipeline.

Per queue, one read-only script (queues/lua/signals.lua): the counts as the overview reads them,
Node BullMQ's completed / failed totals (the `metrics:*` hashes' `count`), when the job next in line
started waiting, the global concurrency and rate limit and the rate limiter's state (what the health
verdict, queues.health, needs), what the oldest parents of `waiting-children` wait on, and optionally
a tally of the `completed`, `failed`, `stalled` and `deduplicated` events of its stream since the id
the caller read up to last time. The tally is what makes failure rates and stalls cheap to follow:
each tick reads only the events since the one before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.counts import now_ms, parse_counts
from queues.messages import gettext_lazy
from queues.models import QueueCounts, QueueRef
from queues.parsing import identifier, integer, text
from queues.scripts import run_pipeline, script

SIGNALS = script("signals")
# What one tick of the events tally reads of one queue's stream at most.
TALLY_ENTRIES = 2000
TALLY_BYTES = 1024 * 1024
MINUTE_MS = 60_000
# Parents of `waiting-children` sampled per queue, and dependency keys read of each.
CHILD_PARENTS = 5
CHILD_KEYS = 3
# The `limiter` value Worker.rateLimit / Queue.rateLimit set (Number.MAX_SAFE_INTEGER): over any max.
MANUAL_RATE_LIMIT = 2**53 - 1


@dataclass(frozen=True)
class MinuteTally:
    """Events of one minute of a queue's stream (the minute its entry ids fall in)."""

    minute_ms: int
    completed: int = 0
    failed: int = 0
    stalled: int = 0
    deduplicated: int = 0


@dataclass(frozen=True)
class EventCounts:
    """Events of a queue's stream over a span of time ending at a read (what a window counted)."""

    completed: int
    failed: int
    stalled: int
    deduplicated: int
    # The span the counts cover (shorter than asked when the window started later), in ms.
    span_ms: int
    # True when events of the span are still to be counted (a capped read): the counts are lower bounds.
    behind: bool = False

    @property
    def finished(self) -> int:
        """Jobs that completed or failed in the span."""
        return self.completed + self.failed


@dataclass(frozen=True)
class QueueLimits:
    """The global concurrency and rate limit of a queue (`meta` fields of BullMQ >= 5) and its rate
    limiter key now; None where not set (or unreadable, see `problems`)."""

    concurrency: int | float | None = None
    rate_max: int | float | None = None
    rate_duration_ms: int | float | None = None
    # The `limiter` key's counter (jobs started in its window; MANUAL_RATE_LIMIT after rateLimit()),
    # None without the key.
    limiter_count: int | None = None
    # Its PTTL in ms: None without the key, -1 for a key without expiry.
    limiter_ttl_ms: int | None = None
    # Fields BullMQ would not have written (too long to read, or not a number): (name, what), in
    # words; BullMQ's own scripts compare them as numbers and fail on them.
    problems: tuple[tuple[str, str], ...] = ()


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
    limits: QueueLimits = field(default_factory=QueueLimits)
    # Keys of jobs the oldest parents of `waiting-children` wait on (`<prefix>:<queue>:<id>`), sampled.
    waiting_on: tuple[str, ...] = ()

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
    tally_entries: int | Mapping[QueueRef, int] = TALLY_ENTRIES,
    tally_bytes: int | Mapping[QueueRef, int] = TALLY_BYTES,
    child_parents: int = CHILD_PARENTS,
    child_keys: int = CHILD_KEYS,
) -> list[QueueSignals]:
    """Each queue's signals, in order: one EVALSHA per queue, all in one pipeline.

    `tally_after` names, per queue, the events stream id to count after; queues it does not name are
    not tallied. The tally's caps are one for every queue or one per queue. An error reply for one
    queue becomes that queue's `error`; only an unreachable Redis fails the call.
    """
    if not queues:
        return []
    at = now_ms() if now is None else now
    after = tally_after or {}

    def cap(value: int | Mapping[QueueRef, int], queue: QueueRef, default: int) -> int:
        return value if isinstance(value, int) else value.get(queue, default)

    def build(pipe: Pipeline) -> None:
        for queue in queues:
            SIGNALS.queue(
                pipe,
                [queue.key_prefix],
                [
                    at,
                    after.get(queue, ""),
                    cap(tally_entries, queue, TALLY_ENTRIES),
                    cap(tally_bytes, queue, TALLY_BYTES),
                    child_parents,
                    child_keys,
                ],
            )

    replies = await run_pipeline(client, build, [SIGNALS], per_command_errors=True)
    return [
        parse_signals(queue, reply, at, tally_asked=queue in after)
        for queue, reply in zip(queues, replies, strict=True)
    ]


def parse_signals(queue: QueueRef, reply: object, read_at: int, *, tally_asked: bool = False) -> QueueSignals:
    """QueueSignals from one reply of signals.lua."""
    if isinstance(reply, Exception) or not isinstance(reply, list) or len(reply) < 5:
        message = gettext_lazy("Redis answered with an error: %(error)s", error=str(reply))
        return QueueSignals(QueueCounts.failed(queue, message), read_at)
    counts_reply, totals, oldest = reply[:-5], reply[-5], reply[-4]
    limits, waiting_on, tally = reply[-3], reply[-2], reply[-1]
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
        limits=parse_limits(limits),
        waiting_on=_keys(waiting_on),
    )


def parse_limits(reply: object) -> QueueLimits:
    """QueueLimits from the limits part of signals.lua's reply."""
    if not isinstance(reply, list) or len(reply) < 6:
        return QueueLimits()
    problems: list[tuple[str, str]] = []
    oversized = reply[5] if isinstance(reply[5], list) else []
    for index in range(0, len(oversized) - 1, 2):
        name = text(oversized[index])
        problems.append(
            (
                name,
                gettext_lazy("%(bytes)s bytes, too long for a number", bytes=integer(oversized[index + 1])),
            )
        )

    def number(name: str, value: object) -> int | float | None:
        if value in (None, False):
            return None
        found = _number(text(value))
        if found is None:
            problems.append((name, gettext_lazy("%(value)r is not a number", value=text(value))))
        return found

    concurrency = number("concurrency", reply[0])
    rate_max = number("max", reply[1])
    duration = number("duration", reply[2])
    count = number("limiter", reply[3])
    ttl = integer(reply[4])
    return QueueLimits(
        concurrency=concurrency,
        rate_max=rate_max,
        rate_duration_ms=duration,
        limiter_count=None if count is None else int(count),
        limiter_ttl_ms=None if ttl is None or ttl == -2 else ttl,
        problems=tuple(problems),
    )


def _number(raw: str) -> int | float | None:
    # Lua's tonumber, as BullMQ's scripts read these fields: decimal numbers (spaces around allowed).
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(value) if value.is_integer() else value


def _keys(reply: object) -> tuple[str, ...]:
    if not isinstance(reply, list):
        return ()
    keys = []
    for value in reply:
        key, utf8 = identifier(value)
        if utf8 and key:
            keys.append(key)
    return tuple(keys)


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
            integer(rows[index + 4]) or 0,
        )
        for index in range(0, len(rows) - 4, 5)
    )
    return EventTally(last_id, capped, minutes, problem)


def _total(value: object) -> int | None:
    # Node reads the field with parseInt(… || '0'): a number, possibly followed by anything.
    if value in (None, False):
        return None
    return integer(value)
