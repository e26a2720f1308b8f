"""A queue's health verdict: healthy, degraded, stuck or idle, and the reasons, in words.

Pure Python over what queues.signals and queues.workers read (no Redis, no Django): the counts, the
paused flag, the global concurrency and rate limit and the rate limiter's state, the worker
connections, the events of a recent window (stalled, deduplicated, finished jobs), the oldest waiting
job and the verdicts of the queues that waiting-children parents wait on. docs/health.md has the
rules; in short:

- **stuck**: nothing can move. Jobs wait (or are active) and the queue is paused, or no worker has
  been connected for NO_WORKERS, or the rate limiter holds them for RATE_LIMITED more, or it is at a
  global concurrency of 0 (or at its cap for AT_CAPACITY with no job finished in the window), or one
  of its keys is of another type than BullMQ's (BullMQ's scripts fail on it), or all it holds waits
  on children in a queue that is itself stuck.
- **degraded**: jobs move, or may, but something needs a look: the same causes before they last long
  enough, paused or without workers with nothing waiting yet, jobs stalled in the window, the job next
  in line older than OLDEST_WAITING, parents waiting on a stuck queue beside other work.
- **idle**: none of those, and nothing waiting or active.
- **healthy**: none of those, and jobs wait or run.

Deduplicated jobs are listed as a reason (they explain where added jobs went) but never change the
verdict: deduplication is BullMQ doing what the producer asked.

How long a condition has held is what this process has seen (HealthMemory): Redis keeps no time of
when a queue was paused or its workers left.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from queues.messages import Message, duration_words, gettext_lazy, ngettext_lazy
from queues.models import QueueRef
from queues.signals import MANUAL_RATE_LIMIT, EventCounts, QueueLimits, QueueSignals


class Status(StrEnum):
    """The verdict."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    STUCK = "stuck"
    IDLE = "idle"


class ReasonCode(StrEnum):
    """Why a queue is not simply healthy (the API's and the Prometheus label's `code`)."""

    BROKEN = "broken"
    PAUSED = "paused"
    NO_WORKERS = "no_workers"
    RATE_LIMITED = "rate_limited"
    AT_CAPACITY = "at_capacity"
    CHILDREN_STUCK = "children_stuck"
    STALLED = "stalled"
    OLDEST_WAITING = "oldest_waiting"
    DEDUPLICATED = "deduplicated"


class Severity(IntEnum):
    """What a reason makes of the verdict."""

    INFO = 0
    DEGRADED = 1
    STUCK = 2


# The order reasons are listed in within a severity: the causes first, then their symptoms.
_ORDER = {code: index for index, code in enumerate(ReasonCode)}


@dataclass(frozen=True)
class Reason:
    """One reason of a verdict: its code, the sentence, since when it holds (ms; None when unknown) and
    the value it is about (jobs, seconds, ms left, a limit, a queue key)."""

    code: ReasonCode
    message: Message
    since: int | None = None
    value: int | float | str | None = None
    severity: Severity = Severity.DEGRADED

    @property
    def level(self) -> str:
        """The severity's name: `stuck`, `degraded` or `info`."""
        return self.severity.name.lower()


@dataclass(frozen=True)
class Verdict:
    """A queue's verdict and its reasons (worst first), as of `checked_at` (ms)."""

    queue: QueueRef
    verdict: Status
    reasons: tuple[Reason, ...]
    checked_at: int

    @property
    def needs_attention(self) -> bool:
        """True when the queue is stuck or degraded."""
        return self.verdict in (Status.STUCK, Status.DEGRADED)

    @property
    def codes(self) -> frozenset[ReasonCode]:
        """The codes of its reasons."""
        return frozenset(reason.code for reason in self.reasons)

    def reason(self, code: ReasonCode) -> Reason | None:
        """The reason with this code, if it is one."""
        return next((reason for reason in self.reasons if reason.code == code), None)


@dataclass(frozen=True)
class HealthThresholds:
    """When a reason holds, or makes a queue stuck (None: the reason is not checked)."""

    # The events window of STALLED, DEDUPLICATED and "no job finished".
    window_seconds: float = 600
    # The job next in line has waited this long: degraded.
    oldest_waiting_seconds: float | None = 600
    # This many stalled events in the window: degraded.
    stalled: int | None = 1
    # This many deduplicated events in the window: listed (never changes the verdict).
    deduplicated: int | None = 1
    # No worker for this long, with jobs waiting or active: stuck (degraded before).
    no_workers_seconds: float = 60
    # The rate limiter holds waiting jobs for at least this much longer: stuck (degraded below).
    rate_limited_seconds: float = 300
    # At the global concurrency cap with jobs waiting for this long and no job finished in the
    # window: stuck (degraded before).
    at_capacity_seconds: float = 600


class HealthMemory:
    """Since when this process has seen each condition of each queue hold (at most `size` of them;
    those not seen holding for longest are dropped first: dropping the longest held would turn the
    queues stuck longest back to degraded, and end their alerts, whenever many queues are judged)."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._since: OrderedDict[tuple[QueueRef, ReasonCode], int] = OrderedDict()

    def since(self, queue: QueueRef, code: ReasonCode, holds: bool, now_ms: int) -> int | None:
        """Record whether the condition holds at `now_ms`; when it does, since when (ms)."""
        key = (queue, code)
        if not holds:
            self._since.pop(key, None)
            return None
        known = self._since.get(key)
        if known is None:
            known = self._since[key] = now_ms
            if len(self._since) > self.size:
                self._since.popitem(last=False)
        else:
            self._since.move_to_end(key)
        return known

    def known(self, queue: QueueRef, code: ReasonCode) -> int | None:
        """Since when the condition holds, without recording anything."""
        return self._since.get((queue, code))

    def forget(self, queue: QueueRef) -> None:
        """Drop what is known of a queue."""
        for key in [key for key in self._since if key[0] == queue]:
            del self._since[key]


def backlog(signals: QueueSignals) -> int:
    """Jobs waiting to be taken: waiting, prioritized and (BullMQ < 6) the paused list."""
    counts = signals.counts.counts
    return sum(counts.get(state, 0) for state in ("waiting", "prioritized", "paused"))


def rate_limited_ms(limits: QueueLimits, waiting: int, active: int) -> int | None:
    """How long the rate limiter holds the queue's workers from taking a job (ms), or None.

    As BullMQ's getRateLimitTTL: the limiter key counts jobs started in its window and holds while the
    count is at the max and its PTTL is positive (a key without expiry holds nothing). The max is the
    global rate limit (`meta` max) when set; Worker.rateLimit / Queue.rateLimit set the count to 2^53 - 1,
    over any max. A worker's own `limiter` option is not in Redis: when the key lives, jobs wait and
    none is active, that limiter is what holds them (workers take jobs whenever nothing else does).
    """
    ttl, count = limits.limiter_ttl_ms, limits.limiter_count
    if ttl is None or count is None or ttl <= 0:
        return None
    if limits.rate_max is not None:
        return ttl if limits.rate_max <= count else None
    if count >= MANUAL_RATE_LIMIT:
        return ttl
    if waiting > 0 and active == 0 and count > 0:
        return ttl
    return None


def _span(events: EventCounts, thresholds: HealthThresholds) -> str:
    return duration_words(round(min(thresholds.window_seconds * 1000, events.span_ms) / 1000))


def judge(
    signals: QueueSignals,
    thresholds: HealthThresholds,
    *,
    workers: int | None = None,
    events: EventCounts | None = None,
    memory: HealthMemory | None = None,
    children: Iterable[Verdict] = (),
) -> Verdict | None:
    """The verdict of one queue; None when its read failed (nothing can be said).

    `workers` is None when the worker connections are unknown (CLIENT LIST refused), `events` None
    when its stream was not counted, `children` the verdicts of the queues its sampled
    waiting-children parents wait on. With a `memory`, how long conditions have held is tracked (and
    recorded); without one, nothing is stuck for having lasted.
    """
    counts = signals.counts
    if counts.error:
        return None
    queue = signals.queue
    at = signals.read_at
    waiting = backlog(signals)
    active = counts.counts.get("active", 0)
    later = counts.counts.get("delayed", 0) + counts.counts.get("waiting-children", 0)
    reasons: list[Reason] = []

    def held(code: ReasonCode, holds: bool) -> int | None:
        return memory.since(queue, code, holds, at) if memory is not None else None

    def seconds_since(since: int | None) -> float:
        return 0.0 if since is None else max(0, at - since) / 1000

    if counts.broken_keys:
        message = gettext_lazy(
            "%(problem)s: BullMQ's scripts fail on this queue until it is repaired", problem=counts.problem
        )
        reasons.append(Reason(ReasonCode.BROKEN, message, None, len(counts.broken_keys), Severity.STUCK))
    for name, what in signals.limits.problems:
        message = gettext_lazy(
            "%(key)s holds %(field)s = %(what)s; BullMQ reads it as a number",
            key=queue.key_prefix + ("limiter" if name == "limiter" else "meta"),
            field=name,
            what=what,
        )
        reasons.append(Reason(ReasonCode.BROKEN, message, None, name))

    since = held(ReasonCode.PAUSED, counts.paused)
    if counts.paused:
        if waiting:
            message = ngettext_lazy(
                "paused with %(count)s job waiting", "paused with %(count)s jobs waiting", waiting
            )
            reasons.append(Reason(ReasonCode.PAUSED, message, since, waiting, Severity.STUCK))
        else:
            message = gettext_lazy("paused: jobs added now will wait")
            reasons.append(Reason(ReasonCode.PAUSED, message, since, 0))

    if workers is not None:
        since = held(ReasonCode.NO_WORKERS, workers == 0)
        if workers == 0 and (waiting or active or later):
            absent = seconds_since(since)
            if absent >= 1:
                message = gettext_lazy("no worker connected for %(absent)s", absent=duration_words(absent))
            else:
                message = gettext_lazy("no worker connected")
            stuck = (waiting or active) and absent >= thresholds.no_workers_seconds
            severity = Severity.STUCK if stuck else Severity.DEGRADED
            reasons.append(Reason(ReasonCode.NO_WORKERS, message, since, absent, severity))

    left = rate_limited_ms(signals.limits, waiting, active)
    since = held(ReasonCode.RATE_LIMITED, left is not None and waiting > 0)
    if left is not None and waiting > 0:
        message = gettext_lazy("rate-limited for %(left)s more", left=duration_words(math.ceil(left / 1000)))
        severity = Severity.STUCK if left >= thresholds.rate_limited_seconds * 1000 else Severity.DEGRADED
        reasons.append(Reason(ReasonCode.RATE_LIMITED, message, since, left, severity))

    cap = signals.limits.concurrency
    capped = cap is not None and active >= cap and waiting > 0
    since = held(ReasonCode.AT_CAPACITY, capped)
    if cap is not None and capped:
        message = gettext_lazy(
            "at its global concurrency of %(limit)s with %(active)s active", limit=cap, active=active
        )
        lasted = seconds_since(since) >= thresholds.at_capacity_seconds
        stuck = cap <= 0 or (lasted and events is not None and events.finished == 0)
        severity = Severity.STUCK if stuck else Severity.DEGRADED
        reasons.append(Reason(ReasonCode.AT_CAPACITY, message, since, cap, severity))

    for child in children:
        if child.verdict is Status.STUCK and child.queue != queue:
            message = gettext_lazy("waiting on children in %(queue)s which is stuck", queue=child.queue.key)
            severity = Severity.DEGRADED if waiting or active else Severity.STUCK
            reasons.append(Reason(ReasonCode.CHILDREN_STUCK, message, None, child.queue.key, severity))

    if events is not None:
        start = at - min(int(thresholds.window_seconds * 1000), events.span_ms)
        span = _span(events, thresholds)
        if thresholds.stalled is not None and events.stalled >= max(1, thresholds.stalled):
            # A window still counting its events (a capped read) has lower bounds: "at least".
            if events.behind:
                message = ngettext_lazy(
                    "at least %(count)s job stalled in the last %(span)s",
                    "at least %(count)s jobs stalled in the last %(span)s",
                    events.stalled,
                    span=span,
                )
            else:
                message = ngettext_lazy(
                    "%(count)s job stalled in the last %(span)s",
                    "%(count)s jobs stalled in the last %(span)s",
                    events.stalled,
                    span=span,
                )
            reasons.append(Reason(ReasonCode.STALLED, message, start, events.stalled))
        if thresholds.deduplicated is not None and events.deduplicated >= max(1, thresholds.deduplicated):
            if events.behind:
                message = ngettext_lazy(
                    "at least %(count)s job deduplicated in the last %(span)s",
                    "at least %(count)s jobs deduplicated in the last %(span)s",
                    events.deduplicated,
                    span=span,
                )
            else:
                message = ngettext_lazy(
                    "%(count)s job deduplicated in the last %(span)s",
                    "%(count)s jobs deduplicated in the last %(span)s",
                    events.deduplicated,
                    span=span,
                )
            reasons.append(
                Reason(ReasonCode.DEDUPLICATED, message, start, events.deduplicated, Severity.INFO)
            )

    age = signals.oldest_waiting_seconds
    if (
        thresholds.oldest_waiting_seconds is not None
        and age is not None
        and age >= thresholds.oldest_waiting_seconds
    ):
        message = gettext_lazy("oldest waiting job %(age)s old", age=duration_words(age))
        reasons.append(Reason(ReasonCode.OLDEST_WAITING, message, signals.oldest_waiting_since, age))

    reasons.sort(key=lambda reason: (-reason.severity, _ORDER[reason.code]))
    worst = max((reason.severity for reason in reasons), default=Severity.INFO)
    if worst is Severity.STUCK:
        status = Status.STUCK
    elif worst is Severity.DEGRADED:
        status = Status.DEGRADED
    elif waiting == 0 and active == 0:
        status = Status.IDLE
    else:
        status = Status.HEALTHY
    return Verdict(queue, status, tuple(reasons), at)


def waited_on(signals: QueueSignals, by_prefix: Mapping[str, QueueRef]) -> list[QueueRef]:
    """The queues (among `by_prefix`: key prefix → queue, of the same connection) that the sampled
    waiting-children parents of a queue wait on, other than the queue itself, each once."""
    found: dict[QueueRef, None] = {}
    for key in signals.waiting_on:
        queue = child_queue(key, by_prefix)
        if queue is not None and queue != signals.queue:
            found[queue] = None
    return list(found)


# The colons of a job key that may end its queue's part (`<prefix>:<name>:`, a prefix may hold colons).
# A job author writes the keys a parent waits on: a key of a thousand colons would otherwise cost a
# thousand slices of up to a kilobyte each (about 10 ms of the event loop per sampled queue).
MAX_PREFIX_COLONS = 32


def child_queue(job_key: str, by_prefix: Mapping[str, QueueRef]) -> QueueRef | None:
    """The known queue of a job key (`<prefix>:<name>:<id>`; the longest matching key prefix): ids
    and prefixes may hold colons, so each of the first MAX_PREFIX_COLONS colons is a candidate end
    of the queue's part."""
    best: QueueRef | None = None
    at = job_key.find(":")
    for _ in range(MAX_PREFIX_COLONS):
        if at < 0:
            break
        queue = by_prefix.get(job_key[: at + 1])
        if queue is not None and len(job_key) > at + 1:
            best = queue
        at = job_key.find(":", at + 1)
    return best
