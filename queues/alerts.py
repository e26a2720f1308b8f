"""Alert rules over queue signals, and the state of each (queue, condition) between evaluations.

Pure Python over what queues.signals and queues.workers read: no Redis, no Django. A condition holds
when its threshold is crossed; it is *pending* until it has held for the rule's `for_seconds`, then
*firing* until it no longer holds. The evaluator returns the transitions (fired, resolved) for the
caller to store, announce and audit.

Failure rate and stalls are over a window of minutes, tallied from the events streams
(queues.signals): completed and failed events, not the sizes of the finished sets, which stay constant
under removeOnComplete / removeOnFail {count: N}.
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from queues.health import ReasonCode, Severity, Status, Verdict
from queues.messages import Message, duration_words, gettext_lazy, joined, ngettext_lazy
from queues.models import QueueRef
from queues.signals import MINUTE_MS, EventCounts, MinuteTally, QueueSignals


class Condition(StrEnum):
    """What an alert is about."""

    BACKLOG = "backlog"
    OLDEST_WAITING = "oldest_waiting"
    FAILURE_RATE = "failure_rate"
    NO_WORKERS = "no_workers"
    STALLED = "stalled"
    # The health verdict's reasons (queues.health), the same objects the pages and metrics show.
    PAUSED = "paused"
    RATE_LIMITED = "rate_limited"
    AT_CAPACITY = "at_capacity"
    STUCK = "stuck"


# The conditions that are a reason of the health verdict, by the reason's code.
REASON_CONDITIONS: dict[ReasonCode, Condition] = {
    ReasonCode.PAUSED: Condition.PAUSED,
    ReasonCode.RATE_LIMITED: Condition.RATE_LIMITED,
    ReasonCode.AT_CAPACITY: Condition.AT_CAPACITY,
}


@dataclass(frozen=True)
class Thresholds:
    """When each condition holds (None: not checked)."""

    backlog: int | None = None
    oldest_waiting_seconds: float | None = None
    failure_rate: float | None = None
    # The failure rate is judged only over at least this many finished jobs in the window.
    min_finished: int = 10
    # Worker connections absent for this long.
    no_workers_seconds: float | None = None
    stalled: int | None = None
    # The window of the failure rate and the stalled count.
    window_seconds: float = 600
    # How long a condition holds before it fires.
    for_seconds: float = 0
    # The health verdict's conditions: its reasons PAUSED, RATE_LIMITED, AT_CAPACITY, and "stuck".
    paused: bool = False
    rate_limited: bool = False
    at_capacity: bool = False
    stuck: bool = False

    @property
    def wants_tally(self) -> bool:
        """True when a condition needs the events tally."""
        return self.failure_rate is not None or self.stalled is not None

    @property
    def wants_workers(self) -> bool:
        """True when a condition needs the worker connections."""
        return self.no_workers_seconds is not None

    @property
    def wants_health(self) -> bool:
        """True when a condition is a reason of the health verdict."""
        return self.paused or self.rate_limited or self.at_capacity or self.stuck

    def watches(self, condition: Condition) -> bool:
        """True when the verdict's `condition` is checked."""
        return bool(getattr(self, condition.value, False))

    @property
    def any(self) -> bool:
        """True when some condition is checked."""
        return self.wants_health or any(
            value is not None
            for value in (
                self.backlog,
                self.oldest_waiting_seconds,
                self.failure_rate,
                self.no_workers_seconds,
                self.stalled,
            )
        )


@dataclass(frozen=True)
class Rule:
    """Thresholds for the queues whose names match one of `queues` (fnmatch patterns over
    `prefix:name` and `connection/prefix:name`); later rules override what earlier ones set."""

    queues: tuple[str, ...]
    thresholds: dict[str, object]

    def matches(self, queue: QueueRef) -> bool:
        """True when a pattern matches the queue."""
        names = (queue.key, f"{queue.connection}/{queue.key}")
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.queues for name in names)


def thresholds_for(queue: QueueRef, rules: Iterable[Rule]) -> Thresholds:
    """The thresholds of a queue: every matching rule's values, later ones over earlier ones."""
    merged: dict[str, object] = {}
    for rule in rules:
        if rule.matches(queue):
            merged.update(rule.thresholds)
    return replace(Thresholds(), **merged)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Finding:
    """A condition that holds now, with its value and the sentence that says so."""

    queue: QueueRef
    condition: Condition
    value: float
    message: Message


@dataclass
class _Tracked:
    since_ms: int
    firing: bool = False
    finding: Finding | None = None


@dataclass(frozen=True)
class Transition:
    """An alert that started or stopped firing."""

    queue: QueueRef
    condition: Condition
    firing: bool
    at_ms: int
    # When the condition began to hold (for a resolved alert: when it had fired).
    since_ms: int
    value: float
    message: Message


@dataclass
class EventWindow:
    """The tallied events of one queue by minute, the stream id read up to, and since when."""

    last_id: str
    started_ms: int
    minutes: deque[MinuteTally] = field(default_factory=deque)
    # True while a capped read left events to count (the window lags behind the stream).
    behind: bool = False
    # True when the stream could not be counted at the last read (nothing is judged from it).
    unreadable: bool = False

    def add(self, tallies: Iterable[MinuteTally], keep_from_ms: int) -> None:
        """Merge one read's minutes and drop those before `keep_from_ms`."""
        for tally in tallies:
            if self.minutes and self.minutes[-1].minute_ms == tally.minute_ms:
                last = self.minutes[-1]
                self.minutes[-1] = MinuteTally(
                    last.minute_ms,
                    last.completed + tally.completed,
                    last.failed + tally.failed,
                    last.stalled + tally.stalled,
                    last.deduplicated + tally.deduplicated,
                )
            else:
                self.minutes.append(tally)
        while self.minutes and self.minutes[0].minute_ms < keep_from_ms - MINUTE_MS:
            self.minutes.popleft()

    def counts(self, since_ms: int, read_at: int) -> EventCounts:
        """The events of the minutes from `since_ms` on, as of a read at `read_at`."""
        completed = failed = stalled = deduplicated = 0
        for minute in self.minutes:
            if minute.minute_ms + MINUTE_MS > since_ms:
                completed += minute.completed
                failed += minute.failed
                stalled += minute.stalled
                deduplicated += minute.deduplicated
        span = max(0, read_at - max(since_ms, self.started_ms))
        return EventCounts(completed, failed, stalled, deduplicated, span, self.behind)

    def totals(self, since_ms: int) -> tuple[int, int, int]:
        """Completed, failed and stalled events of the minutes from `since_ms` on."""
        completed = failed = stalled = 0
        for minute in self.minutes:
            if minute.minute_ms + MINUTE_MS > since_ms:
                completed += minute.completed
                failed += minute.failed
                stalled += minute.stalled
        return completed, failed, stalled


def findings(
    signals: QueueSignals,
    thresholds: Thresholds,
    *,
    window: EventWindow | None = None,
    workers: int | None = None,
    workers_absent_since_ms: int | None = None,
    verdict: Verdict | None = None,
) -> list[Finding]:
    """The conditions that hold for one queue now (those of the health verdict from `verdict`)."""
    queue = signals.queue
    found: list[Finding] = []
    counts = signals.counts
    if counts.error:
        return found
    if verdict is not None:
        found.extend(verdict_findings(verdict, thresholds))
    if thresholds.backlog is not None:
        backlog = sum(counts.counts.get(state, 0) for state in ("waiting", "prioritized", "paused"))
        if backlog >= thresholds.backlog:
            message = ngettext_lazy(
                "%(count)s job waiting (threshold %(threshold)s)",
                "%(count)s jobs waiting (threshold %(threshold)s)",
                backlog,
                threshold=thresholds.backlog,
            )
            found.append(Finding(queue, Condition.BACKLOG, backlog, message))
    age = signals.oldest_waiting_seconds
    if (
        thresholds.oldest_waiting_seconds is not None
        and age is not None
        and age >= thresholds.oldest_waiting_seconds
    ):
        message = gettext_lazy(
            "the oldest waiting job has waited %(age)s (threshold %(threshold)s)",
            age=duration_words(age),
            threshold=duration_words(thresholds.oldest_waiting_seconds),
        )
        found.append(Finding(queue, Condition.OLDEST_WAITING, age, message))
    if window is not None and thresholds.wants_tally:
        since = signals.read_at - int(thresholds.window_seconds * 1000)
        completed, failed, stalled = window.totals(since)
        span = duration_words(min(thresholds.window_seconds, (signals.read_at - window.started_ms) / 1000))
        finished = completed + failed
        if thresholds.failure_rate is not None and finished >= max(1, thresholds.min_finished):
            rate = failed / finished
            if rate >= thresholds.failure_rate:
                message = gettext_lazy(
                    "%(percent)s of %(finished)s finished jobs failed in the last %(span)s "
                    "(threshold %(threshold)s)",
                    percent=f"{rate:.0%}",
                    finished=finished,
                    span=span,
                    threshold=f"{thresholds.failure_rate:.0%}",
                )
                found.append(Finding(queue, Condition.FAILURE_RATE, rate, message))
        if thresholds.stalled is not None and stalled >= thresholds.stalled:
            message = ngettext_lazy(
                "%(count)s job stalled in the last %(span)s (threshold %(threshold)s)",
                "%(count)s jobs stalled in the last %(span)s (threshold %(threshold)s)",
                stalled,
                span=span,
                threshold=thresholds.stalled,
            )
            found.append(Finding(queue, Condition.STALLED, stalled, message))
    if thresholds.no_workers_seconds is not None and workers == 0 and workers_absent_since_ms is not None:
        absent = (signals.read_at - workers_absent_since_ms) / 1000
        if absent >= thresholds.no_workers_seconds:
            message = gettext_lazy(
                "no worker connected for %(absent)s (threshold %(threshold)s)",
                absent=duration_words(absent),
                threshold=duration_words(thresholds.no_workers_seconds),
            )
            found.append(Finding(queue, Condition.NO_WORKERS, absent, message))
    return found


def verdict_findings(verdict: Verdict, thresholds: Thresholds) -> list[Finding]:
    """The health conditions a rule checks that hold: one per reason it watches (the reason's own
    sentence and value), and STUCK with the reasons that make the queue stuck."""
    found: list[Finding] = []
    for reason in verdict.reasons:
        condition = REASON_CONDITIONS.get(reason.code)
        if condition is not None and thresholds.watches(condition):
            value = reason.value if isinstance(reason.value, int | float) else 1
            found.append(Finding(verdict.queue, condition, value, reason.message))
    if thresholds.stuck and verdict.verdict is Status.STUCK:
        causes = [reason.message for reason in verdict.reasons if reason.severity is Severity.STUCK]
        message = gettext_lazy("stuck: %(reasons)s", reasons=joined(causes))
        found.append(Finding(verdict.queue, Condition.STUCK, len(causes), message))
    return found


class AlertBook:
    """Which conditions hold, are pending or fire, per queue, between evaluations of one process."""

    def __init__(self) -> None:
        self._tracked: dict[tuple[QueueRef, Condition], _Tracked] = {}

    def forget(self, gone: Callable[[QueueRef], bool]) -> None:
        """Drop the conditions of queues that are `gone` (no longer covered or listed)."""
        for key in [key for key in self._tracked if gone(key[0])]:
            del self._tracked[key]

    def firing(self) -> list[Finding]:
        """The findings of the alerts that fire now."""
        return [each.finding for each in self._tracked.values() if each.firing and each.finding]

    def update(
        self,
        queues: Iterable[QueueRef],
        found: Iterable[Finding],
        now_ms: int,
        for_seconds: dict[QueueRef, float],
    ) -> list[Transition]:
        """Take one evaluation of `queues` (their findings); returns the alerts that fired or resolved.

        Conditions of queues not evaluated this time (a connection down, a queue gone) keep their state.
        """
        evaluated = set(queues)
        holding = {(finding.queue, finding.condition): finding for finding in found}
        transitions: list[Transition] = []
        for key, finding in holding.items():
            tracked = self._tracked.get(key)
            if tracked is None:
                tracked = self._tracked[key] = _Tracked(now_ms)
            tracked.finding = finding
            held = (now_ms - tracked.since_ms) / 1000
            if not tracked.firing and held >= for_seconds.get(finding.queue, 0):
                tracked.firing = True
                transitions.append(
                    Transition(
                        finding.queue,
                        finding.condition,
                        True,
                        now_ms,
                        tracked.since_ms,
                        finding.value,
                        finding.message,
                    )
                )
        for key in [key for key in self._tracked if key[0] in evaluated and key not in holding]:
            tracked = self._tracked.pop(key)
            if tracked.firing and tracked.finding is not None:
                last = tracked.finding
                message = gettext_lazy("resolved: %(message)s", message=last.message)
                transitions.append(
                    Transition(
                        last.queue, last.condition, False, now_ms, tracked.since_ms, last.value, message
                    )
                )
        return transitions
