"""The process's monitor: a background task in the web process (no extra process to run) that reads the
queues' signals every ALERTS["INTERVAL"] seconds and evaluates the alert rules, and records the
throughput samples of queues whose workers keep no BullMQ metrics once a minute (dashboard.throughput).

It starts with the first request to the dashboard (a page, the API, a socket or a Prometheus scrape)
on an ASGI server, when some alert rule is set or sampling is on. Each tick costs one pipelined read per
connection of the queues that rules cover (one EVALSHA each), plus one CLIENT LIST per connection when
a rule checks for workers or the health verdict (PAUSED, RATE_LIMITED, AT_CAPACITY, STUCK: judged by
dashboard.health, whose pages then count events from the monitor's windows); the events tally of a
queue reads only the events since the tick before.
Several processes each evaluate; the database decides which announces a transition (dashboard.alerts).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dashboard import alerts, health, registry, throughput
from dashboard.conf import get_config
from dashboard.live.hub import get_hub
from queues.alerts import AlertBook, EventWindow, Finding, Rule, Thresholds, findings, thresholds_for
from queues.counts import now_ms
from queues.health import Verdict
from queues.live.reachability import REDIS_FAULTS
from queues.models import QueueRef
from queues.parsing import plain_text
from queues.signals import EventCounts, QueueSignals, fetch_signals

logger = logging.getLogger("bullmq_dashboard.monitor")

# Queues evaluated per tick at most (the first covered ones by connection, prefix and name).
MAX_QUEUES = 10_000
# Longer queue keys and aliases are not evaluated: no AlertState row can hold them.
MAX_KEY = 500
MAX_ALIAS = 100
# Seconds between throughput samples (each records the minutes completed since the one before).
SAMPLE_INTERVAL = 60.0


@dataclass
class Tick:
    """What one evaluation read and decided."""

    at_ms: int
    evaluated: list[QueueRef] = field(default_factory=list)
    signals: dict[QueueRef, QueueSignals] = field(default_factory=dict)
    workers: dict[QueueRef, int | None] = field(default_factory=dict)
    firing: list[Finding] = field(default_factory=list)
    announced: list[alerts.Announcement] = field(default_factory=list)
    # Connections that could not be read this tick, with the reason.
    failed: dict[str, str] = field(default_factory=dict)


class Monitor:
    """Evaluates the alert rules over the queues they cover, tick by tick."""

    def __init__(self) -> None:
        self.book = AlertBook()
        self.windows: dict[QueueRef, EventWindow] = {}
        self.workers_absent_since: dict[QueueRef, int] = {}
        # The health verdicts of the last tick, of the queues whose rules watch them.
        self.verdicts: dict[QueueRef, Verdict | None] = {}
        self._firing_now: frozenset[alerts.AlertKey] = frozenset()
        self._task: asyncio.Task[None] | None = None

    async def tick(self, now: int | None = None) -> Tick:
        """Read, evaluate, store and announce once."""
        settings = alerts.alert_settings()
        at = now_ms() if now is None else now
        result = Tick(at)
        if not settings.enabled:
            return result
        covered = self._covered(await self._list(result), settings.rules)
        by_alias: dict[str, list[QueueRef]] = {}
        for queue in covered:
            by_alias.setdefault(queue.connection, []).append(queue)
        reads = await asyncio.gather(
            *(self._read(alias, members, covered, at) for alias, members in by_alias.items()),
            return_exceptions=True,
        )
        for alias, read in zip(by_alias, reads, strict=True):
            if isinstance(read, BaseException):
                if not isinstance(read, REDIS_FAULTS):
                    raise read
                result.failed[alias] = str(read)
                continue
            signals, workers = read
            result.signals.update(signals)
            result.workers.update(workers)
            # A queue whose read failed (an error reply, a BUSY Redis) keeps its alerts as they were,
            # as a connection that cannot be read does: nothing known is not "nothing holds".
            result.evaluated.extend(queue for queue, row in signals.items() if not row.counts.error)
        found: list[Finding] = []
        for queue in result.evaluated:
            found.extend(self._findings(queue, covered[queue], result, at))
        for_seconds = {queue: covered[queue].for_seconds for queue in result.evaluated}
        self.book.update(result.evaluated, found, at, for_seconds)
        evaluated = set(result.evaluated)
        result.firing = [finding for finding in self.book.firing() if finding.queue in evaluated]
        answered = frozenset(alias for alias in get_config().connections if alias not in result.failed)
        evaluation = alerts.Evaluation(result.evaluated, result.firing, answered, frozenset(covered), at)
        result.announced, firing_now = await alerts.reconcile(evaluation)
        if result.announced:
            await alerts.announce(settings, result.announced)
        if firing_now != self._firing_now:
            # Another process may have announced it: every process tells its own viewers.
            self._firing_now = firing_now
            await get_hub().nudge_alerts()
        self._forget(set(covered), set(result.failed))
        return result

    @staticmethod
    def _covered(listed: list[QueueRef], rules: tuple[Rule, ...]) -> dict[QueueRef, Thresholds]:
        """The queues some rule covers, with their thresholds: at most MAX_QUEUES of them, chosen among
        the covered ones (queues no rule names cannot push those out)."""
        covered: dict[QueueRef, Thresholds] = {}
        for queue in listed:
            if len(queue.key) > MAX_KEY or len(queue.connection) > MAX_ALIAS:
                continue  # no row can hold its name; such a name is no production queue's
            thresholds = thresholds_for(queue, rules)
            if thresholds.any:
                covered[queue] = thresholds
                if len(covered) >= MAX_QUEUES:
                    logger.warning(
                        "alerts: rules cover more than %d queues; the others are not evaluated", MAX_QUEUES
                    )
                    break
        return covered

    async def _list(self, result: Tick) -> list[QueueRef]:
        """Every queue of the connections that answer; the others are noted in `result.failed`."""
        queues, failed = await registry.reachable_queues(registry.BACKGROUND_LISTING_AGE)
        result.failed.update(failed)
        return queues

    async def _read(
        self, alias: str, queues: list[QueueRef], covered: dict[QueueRef, Thresholds], at: int
    ) -> tuple[dict[QueueRef, QueueSignals], dict[QueueRef, int | None]]:
        client = registry.client(alias)
        after: dict[QueueRef, str] = {}
        for queue in queues:
            thresholds = covered[queue]
            if not (thresholds.wants_tally or thresholds.wants_health):
                continue
            window = self.windows.get(queue)
            if window is None:
                window = self.windows[queue] = self._new_window(at, thresholds)
            after[queue] = window.last_id
        health_settings = health.health_settings()
        rows = await fetch_signals(
            client,
            queues,
            now=at,
            tally_after=after,
            child_parents=health_settings.child_parents,
            child_keys=health_settings.child_keys,
        )
        signals = {row.queue: row for row in rows}
        for queue, row in signals.items():
            window = self.windows.get(queue)
            if window is None or queue not in after:
                continue
            if row.tally is None or row.tally.future:
                # The stream cannot be counted (another type, an error, ids ahead of the clock that a
                # job author wrote): start again from the window's beginning next time, and judge
                # nothing from it now.
                if not window.unreadable:
                    logger.warning("alerts: %s", plain_text(row.tally_problem or "events not counted")[:500])
                self.windows[queue] = self._new_window(at, covered[queue])
                self.windows[queue].unreadable = True
                continue
            keep_from = at - int(self._window_seconds(covered[queue]) * 1000)
            window.add(row.tally.minutes, keep_from)
            window.last_id = row.tally.last_id
            window.behind = row.tally.capped
            window.unreadable = False
        workers: dict[QueueRef, int | None] = {}
        judging = [queue for queue in queues if covered[queue].wants_health or covered[queue].wants_workers]
        if judging:
            # The verdicts by the pages' own code path; its one CLIENT LIST answers the no-workers
            # rules too. The verdicts are kept of the queues whose rules watch them.
            window_ms = int(health_settings.thresholds.window_seconds * 1000)
            events = {queue: self._events(queue, covered[queue], at, window_ms) for queue in judging}
            watched = {queue for queue in judging if covered[queue].wants_health}
            judged = await health.get_health().judge_rows(
                alias, [signals[queue] for queue in judging], events, keep=watched
            )
            self.verdicts.update(
                (queue, verdict) for queue, verdict in judged.verdicts.items() if queue in watched
            )
            workers.update(judged.workers)
        return signals, workers

    def _events(self, queue: QueueRef, thresholds: Thresholds, at: int, window_ms: int) -> EventCounts | None:
        """The events of the health window, from the queue's window when it keeps that long."""
        window = self.windows.get(queue)
        if window is None or window.unreadable or not thresholds.wants_health:
            return None
        return window.counts(at - window_ms, at)

    @staticmethod
    def _window_seconds(thresholds: Thresholds) -> float:
        """How far back a queue's window keeps events: its rules' window, and the health verdict's when
        a rule watches the verdict (the pages then count from this window too)."""
        if thresholds.wants_health:
            return max(thresholds.window_seconds, health.health_settings().thresholds.window_seconds)
        return thresholds.window_seconds

    def _new_window(self, at: int, thresholds: Thresholds) -> EventWindow:
        start = max(0, at - int(self._window_seconds(thresholds) * 1000))
        return EventWindow(f"{start}-0", start)

    def _findings(self, queue: QueueRef, thresholds: Thresholds, tick: Tick, at: int) -> list[Finding]:
        count = tick.workers.get(queue)
        if count == 0:
            self.workers_absent_since.setdefault(queue, at)
        else:
            self.workers_absent_since.pop(queue, None)
        window = self.windows.get(queue)
        return findings(
            tick.signals[queue],
            thresholds,
            window=None if window is None or window.unreadable else window,
            workers=count,
            workers_absent_since_ms=self.workers_absent_since.get(queue),
            verdict=self.verdicts.get(queue) if thresholds.wants_health else None,
        )

    def _forget(self, covered: set[QueueRef], failed: set[str]) -> None:
        """Drop what is kept of queues no rule covers any more (rules changed, queues removed); a
        connection that could not be listed keeps its queues' state for when it answers again."""

        def gone(queue: QueueRef) -> bool:
            return queue not in covered and queue.connection not in failed

        for kept in (self.windows, self.workers_absent_since, self.verdicts):
            for queue in [queue for queue in kept if gone(queue)]:
                del kept[queue]
        self.book.forget(gone)

    async def run(self) -> None:
        """Evaluate the alerts every ALERTS["INTERVAL"] and record throughput samples every minute,
        until cancelled; a step that fails is logged and tried again at its next time."""
        loop = asyncio.get_running_loop()
        next_alerts = next_samples = loop.time()
        while True:
            now = loop.time()
            if now >= next_alerts:
                next_alerts = now + await self._alerts_step()
            if now >= next_samples:
                next_samples = now + SAMPLE_INTERVAL
                await self._step("throughput sampling", throughput.sample_tick)
            await asyncio.sleep(max(0.05, min(next_alerts, next_samples) - loop.time()))

    async def _alerts_step(self) -> float:
        """One evaluation when rules are set and this process evaluates; the seconds to the next."""
        try:
            settings = alerts.alert_settings()
        except alerts.AlertSettingError:
            return alerts.DEFAULT_INTERVAL  # the system check reports it
        if settings.enabled and settings.evaluate:
            await self._step("alert evaluation", self.tick)
        return settings.interval

    @staticmethod
    async def _step(what: str, step: Callable[[], Awaitable[object]]) -> None:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except REDIS_FAULTS as exc:
            logger.warning("%s could not read Redis: %s", what, exc)
        except Exception:
            logger.exception("%s failed", what)

    @property
    def running(self) -> bool:
        """True while the monitor's task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Run on the current event loop (once)."""
        if self._task is None or self._task.done():
            # A context of its own, not the request's that started it: asgiref ties database calls
            # made from a request's context to that request, and refuses them after it ended.
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name="bullmq-dashboard-monitor", context=contextvars.Context()
            )

    async def stop(self) -> None:
        """Cancel the task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# One monitor per event loop: daphne runs one loop per process; tests run one loop per test.
_monitors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Monitor] = weakref.WeakKeyDictionary()


def get_monitor() -> Monitor:
    """The monitor of the running event loop."""
    loop = asyncio.get_running_loop()
    monitor = _monitors.get(loop)
    if monitor is None:
        monitor = _monitors[loop] = Monitor()
    return monitor


def running_monitor() -> Monitor | None:
    """The monitor of the running event loop while its task runs (None otherwise)."""
    try:
        monitor = _monitors.get(asyncio.get_running_loop())
    except RuntimeError:
        return None
    return monitor if monitor is not None and monitor.running else None


def ensure_started() -> None:
    """Start the monitor of this process when it has work: alert rules to evaluate, or throughput to
    sample (called by requests; cheap)."""
    try:
        settings = alerts.alert_settings()
        evaluates = settings.enabled and settings.evaluate
    except alerts.AlertSettingError:
        evaluates = False  # the system check reports the setting
    if evaluates or throughput.sampling_on():
        get_monitor().start()
