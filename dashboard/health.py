"""The health verdicts the pages, the API, the live updates and the Prometheus scrape show (the rules are
queues.health's; docs/health.md explains them and what they cost).

A process keeps one HealthService per event loop: what it has seen hold since when (HealthMemory, shared
with the alert monitor), an events window per queue it judged (stalled, deduplicated and finished jobs,
tallied incrementally: each read counts only the events since the previous one), and each verdict's
inputs for CACHE_SECONDS. A read of N queues of one connection costs one pipeline of N read-only scripts
(queues.signals), one CLIENT LIST, and for queues whose waiting-children parents wait on other queues
one more pipeline of those queues' scripts. Within CACHE_SECONDS a verdict is judged again from the
cached inputs and fresh counts (the counts the page or the live refresh read anyway) without Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections import OrderedDict
from collections.abc import Container, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dashboard import registry
from dashboard.conf import DEFAULTS, get_config
from dashboard.permissions import permission_depends_on_queue
from queues.alerts import EventWindow
from queues.counts import now_ms
from queues.health import HealthMemory, HealthThresholds, Verdict, judge, waited_on
from queues.live.reachability import REDIS_FAULTS
from queues.models import QueueCounts, QueueRef
from queues.signals import (
    TALLY_BYTES,
    TALLY_ENTRIES,
    EventCounts,
    QueueSignals,
    fetch_signals,
)
from queues.timeline import stream_ms
from queues.workers import WorkerReport, fetch_workers

logger = logging.getLogger("bullmq_dashboard.health")

# What one read tallies of the events streams in all (the queues share it), and at least per queue:
# the first read of a queue counts its window from the start; later reads only what came since.
TALLY_TOTAL_ENTRIES = 20_000
TALLY_TOTAL_BYTES = 4 * 1024 * 1024
TALLY_MIN_ENTRIES = 4
TALLY_MIN_BYTES = 2 * 1024
# Queues whose window and verdict inputs a process keeps (the least recently judged are dropped).
MAX_KEPT = 10_000
# Worker connections one CLIENT LIST reading keeps per Redis.
MAX_WORKERS = 100_000
# Bounds of the settings (E013 beyond them).
MAX_WINDOW = 86_400.0
MAX_CACHE = 300.0
MAX_SAMPLE = 20
HEALTH_KEYS = frozenset(DEFAULTS["HEALTH"])


class HealthSettingError(ValueError):
    """A value of `HEALTH` the verdict cannot use (check E013)."""


@dataclass(frozen=True)
class HealthSettings:
    """`BULLMQ_DASHBOARD["HEALTH"]`, read (defaults in dashboard.conf.DEFAULTS)."""

    thresholds: HealthThresholds
    cache_seconds: float
    child_parents: int
    child_keys: int


def _duration(name: str, value: object, *, least: float = 0.0, most: float = 30 * 86_400.0) -> float:
    from dashboard.alerts import AlertSettingError, duration_seconds

    try:
        seconds = duration_seconds(value, most=most)
    except AlertSettingError as exc:
        raise HealthSettingError(f"HEALTH['{name}']: {exc}") from None
    if seconds < least:
        raise HealthSettingError(f"HEALTH['{name}'] must be at least {least:g} seconds, not {value!r}")
    return seconds


def _count(name: str, value: object, *, least: int = 0, most: int = 10**12) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HealthSettingError(f"HEALTH['{name}'] must be a whole number, not {value!r}")
    if value != int(value) or not least <= value <= most:
        raise HealthSettingError(
            f"HEALTH['{name}'] must be a whole number from {least} to {most:,}, not {value!r}"
        )
    return int(value)


def parse_settings(raw: Mapping[str, Any]) -> HealthSettings:
    """HealthSettings from the merged settings dict; HealthSettingError says what is wrong."""
    given = raw.get("HEALTH", {})
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise HealthSettingError(f"HEALTH must be a dict, not {type(given).__name__}")
    unknown = sorted(str(key) for key in set(given) - HEALTH_KEYS)
    if unknown:
        raise HealthSettingError(
            f"HEALTH has unknown keys {', '.join(unknown)} (known: {', '.join(sorted(HEALTH_KEYS))})"
        )
    merged = {**DEFAULTS["HEALTH"], **given}

    def optional_duration(name: str) -> float | None:
        return None if merged[name] is None else _duration(name, merged[name])

    def optional_count(name: str) -> int | None:
        return None if merged[name] is None else _count(name, merged[name], least=1)

    thresholds = HealthThresholds(
        window_seconds=_duration("WINDOW", merged["WINDOW"], least=60, most=MAX_WINDOW),
        oldest_waiting_seconds=optional_duration("OLDEST_WAITING"),
        stalled=optional_count("STALLED"),
        deduplicated=optional_count("DEDUPLICATED"),
        no_workers_seconds=_duration("NO_WORKERS", merged["NO_WORKERS"]),
        rate_limited_seconds=_duration("RATE_LIMITED", merged["RATE_LIMITED"]),
        at_capacity_seconds=_duration("AT_CAPACITY", merged["AT_CAPACITY"]),
    )
    return HealthSettings(
        thresholds=thresholds,
        cache_seconds=_duration("CACHE_SECONDS", merged["CACHE_SECONDS"], most=MAX_CACHE),
        child_parents=_count("CHILD_PARENTS", merged["CHILD_PARENTS"], most=MAX_SAMPLE),
        child_keys=_count("CHILD_KEYS", merged["CHILD_KEYS"], least=1, most=MAX_SAMPLE),
    )


def health_settings() -> HealthSettings:
    """The current HEALTH settings (the system check reports a bad value; the defaults stand in)."""
    try:
        return parse_settings(get_config().raw)
    except HealthSettingError:
        return parse_settings(DEFAULTS)


@dataclass(frozen=True)
class Inputs:
    """What a verdict was judged from, kept to judge it again with fresh counts."""

    signals: QueueSignals
    workers: int | None
    events: EventCounts | None
    children: tuple[Verdict, ...]
    # time.monotonic() of the read.
    read_at: float


@dataclass(frozen=True)
class Judged:
    """What a read found of some queues: their signals, worker counts and verdicts (None for a queue
    whose read failed)."""

    signals: dict[QueueRef, QueueSignals]
    workers: dict[QueueRef, int | None]
    verdicts: dict[QueueRef, Verdict | None]


class HealthService:
    """Verdicts of queues, from one bounded read per connection, kept briefly."""

    def __init__(self) -> None:
        self.memory = HealthMemory()
        self.windows: OrderedDict[QueueRef, EventWindow] = OrderedDict()
        self._inputs: OrderedDict[QueueRef, Inputs] = OrderedDict()
        # Per connection: when its CLIENT LIST was last read, and the worker counts it gave.
        self._worker_counts: dict[str, tuple[float, dict[QueueRef, int | None]]] = {}

    async def verdicts(
        self,
        queues: list[QueueRef],
        counts: Mapping[QueueRef, QueueCounts] | None = None,
        *,
        max_age: float | None = None,
        strict: bool = False,
    ) -> dict[QueueRef, Verdict | None]:
        """The verdicts of `queues`: judged again from the kept inputs when read within `max_age`
        seconds (CACHE_SECONDS by default; with `counts` when given, counts read since), the others
        read (one pipeline per connection, connections in parallel). A connection that cannot be read
        gives its queues None (raises, when `strict`)."""
        settings = health_settings()
        age = settings.cache_seconds if max_age is None else max_age
        fresh_after = time.monotonic() - age
        result: dict[QueueRef, Verdict | None] = {}
        missing: dict[str, list[QueueRef]] = {}
        for queue in queues:
            kept = self._inputs.get(queue)
            if kept is not None and age > 0 and kept.read_at >= fresh_after:
                row = (counts or {}).get(queue)
                result[queue] = self._again(kept, row, settings)
            else:
                missing.setdefault(queue.connection, []).append(queue)
        reads = await asyncio.gather(
            *(self.read(alias, members, workers_age=age) for alias, members in missing.items()),
            return_exceptions=True,
        )
        for (alias, members), read in zip(missing.items(), reads, strict=True):
            if isinstance(read, BaseException):
                if strict or not isinstance(read, REDIS_FAULTS):
                    raise read
                logger.warning("health of %s not read: %s", alias, read)
                result.update(dict.fromkeys(members))
                continue
            result.update(read.verdicts)
        return {queue: result.get(queue) for queue in queues}

    def _again(self, kept: Inputs, row: QueueCounts | None, settings: HealthSettings) -> Verdict | None:
        """The verdict of kept inputs as of now: with fresh counts when given, the rate limiter's TTL
        counted down by the time since the read (the oldest waiting job's age and how long conditions
        have held grow with it)."""
        signals = kept.signals
        at = max(signals.read_at, now_ms())
        limits = signals.limits
        if limits.limiter_ttl_ms is not None and limits.limiter_ttl_ms > 0:
            left = limits.limiter_ttl_ms - (at - signals.read_at)
            limits = replace(limits, limiter_ttl_ms=left if left > 0 else None)
        counts = row if row is not None and not row.error else signals.counts
        signals = replace(signals, counts=counts, read_at=at, limits=limits)
        return judge(
            signals,
            settings.thresholds,
            workers=kept.workers,
            events=kept.events,
            memory=self.memory,
            children=kept.children,
        )

    async def read(self, alias: str, queues: list[QueueRef], *, workers_age: float | None = None) -> Judged:
        """Read and judge `queues` of one connection now (and keep what was read): one pipeline of their
        scripts with the events since each window's last read, then judge_rows."""
        settings = health_settings()
        window_ms = int(settings.thresholds.window_seconds * 1000)
        at = now_ms()
        monitored = _monitor_windows()
        after = {
            queue: self._window(queue, at, window_ms).last_id for queue in queues if queue not in monitored
        }
        # The queues share the read's budget: the first read of many busy queues counts part of their
        # windows (lower bounds, marked behind) and later reads catch up.
        entries = max(TALLY_MIN_ENTRIES, min(TALLY_ENTRIES, TALLY_TOTAL_ENTRIES // max(1, len(after))))
        budget = max(TALLY_MIN_BYTES, min(TALLY_BYTES, TALLY_TOTAL_BYTES // max(1, len(after))))
        rows = await fetch_signals(
            registry.client(alias),
            queues,
            now=at,
            tally_after=after,
            tally_entries=entries,
            tally_bytes=budget,
            child_parents=settings.child_parents,
            child_keys=settings.child_keys,
        )
        events = {
            row.queue: self._count(
                row.queue, row, at, window_ms, monitored.get(row.queue), row.queue in after
            )
            for row in rows
        }
        return await self.judge_rows(alias, rows, events, workers_age=workers_age)

    async def judge_rows(
        self,
        alias: str,
        rows: list[QueueSignals],
        events: Mapping[QueueRef, EventCounts | None],
        keep: Container[QueueRef] | None = None,
        workers_age: float | None = None,
    ) -> Judged:
        """Judge signals read of one connection (their events counted by the caller): one CLIENT LIST for
        their workers and those of the queues their waiting-children parents wait on, whose signals are
        read in the same round trip (the CLIENT LIST's answer is reused for `workers_age` seconds,
        CACHE_SECONDS by default). The inputs of the queues in `keep` (all by default) are kept for the
        pages."""
        settings = health_settings()
        thresholds = settings.thresholds
        client = registry.client(alias)
        queues = [row.queue for row in rows]
        at = max((row.read_at for row in rows), default=now_ms())
        signals = {row.queue: row for row in rows}
        children = await self._children(alias, signals)
        others = list(
            dict.fromkeys(child for found in children.values() for child in found if child not in signals)
        )
        wanted = [*queues, *others]
        other_rows, workers = await asyncio.gather(
            fetch_signals(client, others, now=at, child_parents=0),
            self._workers(alias, wanted, settings.cache_seconds if workers_age is None else workers_age),
        )
        # Each queue's own verdict first; then those whose parents wait on another queue, with that
        # queue's verdict (one level: a child's own children are not followed).
        verdicts: dict[QueueRef, Verdict | None] = {
            row.queue: judge(
                row,
                thresholds,
                workers=workers.get(row.queue),
                events=events.get(row.queue),
                memory=self.memory,
            )
            for row in [*other_rows, *rows]
        }
        read_at = time.monotonic()
        judged: dict[QueueRef, Verdict | None] = {}
        for queue, row in signals.items():
            waits = tuple(
                found for child in children.get(queue, []) if (found := verdicts.get(child)) is not None
            )
            judged[queue] = verdicts[queue]
            if waits:
                judged[queue] = judge(
                    row,
                    thresholds,
                    workers=workers.get(queue),
                    events=events[queue],
                    memory=self.memory,
                    children=waits,
                )
            if not row.counts.error and (keep is None or queue in keep):
                self._keep(queue, Inputs(row, workers.get(queue), events[queue], waits, read_at))
        return Judged(signals, {queue: workers.get(queue) for queue in queues}, judged)

    async def _workers(
        self, alias: str, queues: list[QueueRef], max_age: float
    ) -> dict[QueueRef, int | None]:
        """Worker connections of the queues: from the connection's last CLIENT LIST when it was read within
        `max_age` seconds for all of them (a live refresh judges a few queues at a time), else read."""
        kept = self._worker_counts.get(alias)
        if (
            kept is not None
            and kept[0] >= time.monotonic() - max_age
            and all(queue in kept[1] for queue in queues)
        ):
            return {queue: kept[1][queue] for queue in queues}
        report = await fetch_workers(registry.client(alias), queues, held_jobs=False, max_workers=MAX_WORKERS)
        counts = _worker_counts(report, queues)
        self._worker_counts[alias] = (time.monotonic(), counts)
        return counts

    def _window(self, queue: QueueRef, at: int, window_ms: int) -> EventWindow:
        """The queue's window, started again at the window's beginning when it was last read before it
        (nothing older counts; reading what came since would only read events to drop)."""
        window = self.windows.get(queue)
        start = max(0, at - window_ms)
        if window is None or stream_ms(window.last_id) < start:
            window = EventWindow(f"{start}-0", start)
            self.windows[queue] = window
        self.windows.move_to_end(queue)
        while len(self.windows) > MAX_KEPT:
            self.windows.popitem(last=False)
        return window

    def _count(
        self,
        queue: QueueRef,
        row: QueueSignals,
        at: int,
        window_ms: int,
        monitored: EventWindow | None,
        tallied: bool,
    ) -> EventCounts | None:
        """The events of the queue's window: the monitor's when it keeps one, else this service's."""
        if monitored is not None:
            return None if monitored.unreadable else monitored.counts(at - window_ms, at)
        window = self.windows.get(queue)
        if not tallied or window is None:
            return None
        if row.tally is None or row.tally.future:
            self.windows.pop(queue, None)
            return None
        window.add(row.tally.minutes, at - window_ms)
        window.last_id = row.tally.last_id
        window.behind = row.tally.capped
        return window.counts(at - window_ms, at)

    async def _children(
        self, alias: str, signals: Mapping[QueueRef, QueueSignals]
    ) -> dict[QueueRef, list[QueueRef]]:
        """The queues each queue's sampled waiting-children parents wait on (known queues only).

        Not followed when the permission callable decides per queue: the verdict is shared by every viewer
        (cache, live pushes), and naming a child queue, or turning stuck with it, would tell a viewer of
        the parent about a queue they may not view."""
        if permission_depends_on_queue() or not any(row.waiting_on for row in signals.values()):
            return {}
        by_prefix = {queue.key_prefix: queue for queue in await registry.directory(alias).get()}
        return {queue: waited_on(row, by_prefix) for queue, row in signals.items() if row.waiting_on}

    def _keep(self, queue: QueueRef, inputs: Inputs) -> None:
        self._inputs[queue] = inputs
        self._inputs.move_to_end(queue)
        while len(self._inputs) > MAX_KEPT:
            self._inputs.popitem(last=False)

    def invalidate(self, queue: QueueRef) -> None:
        """Read the queue again at its next verdict (an action changed it)."""
        self._inputs.pop(queue, None)
        self._worker_counts.pop(queue.connection, None)

    def forget(self) -> None:
        """Drop every kept input (settings changed, tests)."""
        self._inputs.clear()
        self.windows.clear()
        self._worker_counts.clear()


def _worker_counts(report: WorkerReport, queues: list[QueueRef]) -> dict[QueueRef, int | None]:
    if report.problem or report.capped:
        return dict.fromkeys(queues)
    return {queue: len(report.of(queue).workers) for queue in queues}


def _monitor_windows() -> dict[QueueRef, EventWindow]:
    """The alert monitor's events windows of the queues whose verdicts it judges, when it runs (it keeps
    those at least as long as the health window)."""
    from dashboard.monitor import running_monitor

    monitor = running_monitor()
    if monitor is None:
        return {}
    return {queue: window for queue, window in monitor.windows.items() if queue in monitor.verdicts}


# One service per event loop: daphne runs one loop per process; tests run one loop per test.
_services: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HealthService] = weakref.WeakKeyDictionary()


def get_health() -> HealthService:
    """The health service of the running event loop."""
    loop = asyncio.get_running_loop()
    service = _services.get(loop)
    if service is None:
        service = _services[loop] = HealthService()
    return service


async def queue_verdicts(
    queues: list[QueueRef],
    counts: Mapping[QueueRef, QueueCounts] | None = None,
    *,
    max_age: float | None = None,
    strict: bool = False,
) -> dict[QueueRef, Verdict | None]:
    """The verdicts of these queues (see HealthService.verdicts)."""
    return await get_health().verdicts(queues, counts, max_age=max_age, strict=strict)


def invalidate(queue: QueueRef) -> None:
    """Read the queue's health again at its next verdict in this process (call after an action on it)."""
    with contextlib.suppress(RuntimeError):  # no running loop: nothing is kept outside one
        get_health().invalidate(queue)
