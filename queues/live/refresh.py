"""Re-reading what events touched, and publishing what changed.

Each queue touched by events is re-counted at most once per `count_interval` and each watched job
re-read at most once per `interval`, after a burst of events
was let gather for `COALESCE_SECONDS`. Counts of the touched queues are read in one
pipelined round trip per connection, watched jobs a few at a time. Every viewed queue is re-counted
every `resync_interval` even without events, which heals events trimmed from a stream (MAXLEN) or
missed while Redis was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from queues.connections import ConnectionSettings, client_for
from queues.counts import fetch_counts
from queues.live.backoff import Backoff
from queues.live.count_cache import QUIET_RESYNC_FACTOR, CountCache
from queues.live.interest import Interest, JobRef, Viewers
from queues.live.options import WatcherOptions
from queues.live.pending import PendingWork
from queues.live.reachability import UNREACHABLE, Reachability
from queues.live.watched_jobs import WatchedJobs
from queues.models import JobDetail, QueueCounts, QueueRef

logger = logging.getLogger(__name__)

# Watched jobs read at once per connection (each read holds a pooled connection).
PARALLEL_JOB_READS = 4
# How long the refresh loop lets a burst of events gather before it reads (seconds).
COALESCE_SECONDS = 0.02
# The resync re-counts the viewed queues in this many slices spread over its interval, not in one
# burst (50 rows on a page were 50 script calls, about 800 commands, every 10 s).
RESYNC_SLICES = 10


@dataclass
class LiveUpdate:
    """What one refresh found."""

    # Every queue counted in this refresh (changed or not).
    counts: dict[QueueRef, QueueCounts] = field(default_factory=dict)
    # Queues whose counts or paused flag differ from the previous refresh (or were never counted).
    changed: set[QueueRef] = field(default_factory=set)
    # Watched jobs read in this refresh; None when the job no longer exists.
    jobs: dict[JobRef, JobDetail | None] = field(default_factory=dict)
    # Per queue, how many jobs reached the head of each state's list since the previous refresh.
    arrivals: dict[QueueRef, dict[str, int]] = field(default_factory=dict)
    # The tokens passed to `watch` that this refresh answers with fresh data of their interest.
    answered: list[tuple[object, Interest]] = field(default_factory=list)
    # True when this refresh re-counted every viewed queue (a resync): published even when nothing
    # changed, so that what changes without an event (a queue's health) reaches the pages.
    resynced: bool = False

    def __bool__(self) -> bool:
        return bool(self.changed or self.jobs or self.arrivals or self.answered or self.resynced)


Publish = Callable[[LiveUpdate], Awaitable[None]]


class Refresher:
    """The refresh loop: reads what is due and hands each non-empty update to `publish`."""

    def __init__(
        self,
        connections: Mapping[str, ConnectionSettings],
        options: WatcherOptions,
        viewers: Viewers,
        pending: PendingWork,
        counts: CountCache,
        reachability: Reachability,
        publish: Publish,
        relist: Callable[[], Awaitable[None]],
        stopping: asyncio.Event,
        tailed: Callable[[QueueRef], bool] = lambda queue: False,
    ) -> None:
        self._connections = connections
        self._options = options
        self._viewers = viewers
        self._pending = pending
        self._counts = counts
        self._reachability = reachability
        self._publish = publish
        # Lists every queue again and follows new ones (a resync while someone views every queue).
        self._relist = relist
        self._stopping = stopping
        # Whether a queue's events stream is tailed: its counts change only with events then.
        self._tailed = tailed
        self._jobs = WatchedJobs(options.limits)
        self._read_at: dict[QueueRef | JobRef, float] = {}
        # When each followed queue was last counted (for any reason): the resync re-counts the stalest.
        self._counted_at: dict[QueueRef, float] = {}

    def forget_queue(self, queue: QueueRef) -> None:
        """Drop what is kept of a queue no longer followed."""
        self._read_at.pop(queue, None)
        self._counted_at.pop(queue, None)

    def forget_unwatched_jobs(self) -> None:
        """Drop what is kept of jobs nobody watches any more."""
        for job in {*self._jobs.known(), *self._pending.jobs}:
            if not self._viewers.watches(job):
                self._jobs.forget(job)
                self._read_at.pop(job, None)
                self._pending.jobs.discard(job)

    def _polled_jobs(self) -> list[JobRef]:
        """Watched jobs that are being processed: their logs are polled (adding a log line has no event)."""
        return self._jobs.polled(self._viewers.watched_jobs())

    def _resync_slice(self, counted: set[QueueRef], now: float) -> set[QueueRef]:
        """The viewed queues due first among those not counted for half their resync period, as many a
        tick as spreads each one's re-count over its period, and all that are overdue. The period is
        the resync interval, QUIET_RESYNC_FACTOR times it for a quiet queue (its events stream is
        tailed and brought nothing since it was counted: only what comes without an event can have
        changed, such as another program's writes or failures ageing out of the last hour)."""
        interval = self._options.resync_interval
        never = -float("inf")
        periods = {
            queue: interval * (QUIET_RESYNC_FACTOR if self._quiet(queue) else 1.0) for queue in counted
        }
        due_at = {queue: self._counted_at.get(queue, never) + period for queue, period in periods.items()}
        ready = [queue for queue in counted if now - self._counted_at.get(queue, never) >= periods[queue] / 2]
        ready.sort(key=lambda queue: (due_at[queue], queue))
        # Each queue's share of a tick, and every one overdue (after a burst of counts they come due
        # together).
        share = math.ceil(sum(1.0 / RESYNC_SLICES * interval / period for period in periods.values()))
        overdue = sum(due_at[queue] <= now for queue in ready)
        return set(ready[: max(overdue, share)])

    def _quiet(self, queue: QueueRef) -> bool:
        """No event touched the queue since it was counted, and its events stream is tailed."""
        return queue not in self._pending.queues and self._tailed(queue)

    def _interval(self, key: QueueRef | JobRef) -> float:
        """How often a queue's counts or a job are re-read at most."""
        if isinstance(key, QueueRef):
            return min(self._options.count_interval, self._options.interval)
        return self._options.interval

    def _due(self, key: QueueRef | JobRef, now: float) -> bool:
        return now >= self._read_at.get(key, -float("inf")) + self._interval(key)

    def _next_due(self, now: float, next_resync: float, next_poll: float) -> float:
        """When the refresh loop next has work: a request, a due dirty queue or job, a poll, a resync."""
        pending = self._pending
        if pending.requests or pending.resync_due or pending.resync_aliases:
            return now
        counted = set(self._viewers.counted_queues())
        times = [next_resync]
        never = -float("inf")
        times.extend(self._read_at.get(q, never) + self._interval(q) for q in pending.queues if q in counted)
        times.extend(self._read_at.get(j, never) + self._interval(j) for j in pending.jobs)
        if self._polled_jobs():
            times.append(next_poll)
        return min(times)

    async def loop(self) -> None:
        """Refresh whenever something is due, until `stopping` is set."""
        options = self._options
        pending = self._pending
        next_resync = time.monotonic() + options.resync_interval
        next_poll = 0.0
        retry_at = 0.0
        backoff = Backoff(options.backoff_min, options.backoff_max)
        while not self._stopping.is_set():
            pending.wake.clear()
            now = time.monotonic()
            due_at = max(retry_at, self._next_due(now, next_resync, next_poll))
            if due_at > now:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due_at - now):
                        await pending.wake.wait()
                continue
            # Let a burst (a job added, taken and finished within milliseconds) land in one read.
            await asyncio.sleep(COALESCE_SECONDS)
            now = time.monotonic()
            full = pending.resync_due
            back, pending.resync_aliases = pending.resync_aliases, set()
            resync = full or now >= next_resync
            poll = now >= next_poll
            pending.resync_due = False
            update, failed = await self._refresh(resync, poll, full, back)
            if resync:
                next_resync = time.monotonic() + options.resync_interval / RESYNC_SLICES
            if poll:
                next_poll = now + options.interval
            if failed:
                # A failed slice's queues were put back as pending; a failed full resync or
                # reconnection resync is tried again whole, only for what failed.
                pending.resync_due = pending.resync_due or (resync and full)
                pending.resync_aliases |= back & failed
                retry_at = time.monotonic() + backoff.next()
            else:
                backoff.reset()
                retry_at = 0.0
            if update:
                try:
                    await self._publish(update)
                except Exception:
                    logger.exception("live updates: publishing failed")

    async def _refresh(
        self, resync: bool, poll: bool, full: bool = True, back: set[str] | None = None
    ) -> tuple[LiveUpdate, set[str]]:
        """Re-read what is due (on a resync the stalest slice of the viewed queues, everything when
        `full`); returns the update and failed aliases.

        A queue or job touched by events is re-read at most once per interval: the first event is
        answered at once, later ones within the interval wait for its end (a trailing read).
        """
        pending = self._pending
        viewers = self._viewers
        if resync and viewers.all_queues:
            await self._relist()
        now = time.monotonic()
        counted = set(viewers.counted_queues())
        due_queues = {queue for queue in pending.queues & counted if self._due(queue, now)}
        due_jobs = {job for job in pending.jobs if viewers.watches(job) and self._due(job, now)}
        # A queue marked by an event but no longer counted (its stream still tailed for a watched job)
        # loses its mark here: its kept counts predate the event, and unmarked they would pass for
        # quiet and serve views for QUIET_RESYNC_FACTOR + 1 resync intervals. They are dropped instead.
        for queue in pending.queues - counted:
            self._counts.forget(queue)
        pending.queues = {queue for queue in pending.queues if queue in counted} - due_queues
        pending.jobs = {job for job in pending.jobs if viewers.watches(job)} - due_jobs
        for queue in due_queues:
            self._read_at[queue] = now
        for job in due_jobs:
            self._read_at[job] = now
        if full and resync:
            queues = set(counted)
        elif resync:
            queues = set(due_queues) | self._resync_slice(counted, now)
        else:
            queues = set(due_queues)
        # The viewed queues of connections that came back (what happened meanwhile has no events read).
        queues |= {queue for queue in counted if queue.connection in (back or set())}
        jobs = set(due_jobs)
        requests, pending.requests = pending.requests, []
        for _token, interest in requests:
            queues.update(viewers.listed if interest.all_queues else ())
            queues.update(interest.queues)
            jobs.update(job for job in interest.jobs if viewers.watches(job))
        queues &= counted
        arrivals = {
            queue: dict(pending.arrivals.pop(queue))
            for queue in list(pending.arrivals)
            if queue in due_queues
        }
        pending.arrivals = {queue: states for queue, states in pending.arrivals.items() if queue in counted}

        update = LiveUpdate(
            arrivals={queue: states for queue, states in arrivals.items() if states}, resynced=resync
        )
        failed: set[str] = set()
        polled = [job for job in self._polled_jobs() if job not in jobs] if poll else []
        aliases = sorted(
            {queue.connection for queue in queues} | {job.queue.connection for job in [*jobs, *polled]}
        )
        results = await asyncio.gather(
            *(
                self._refresh_alias(
                    alias,
                    sorted(queue for queue in queues if queue.connection == alias),
                    sorted(job for job in jobs if job.queue.connection == alias),
                    [job for job in polled if job.queue.connection == alias],
                    update,
                )
                for alias in aliases
            ),
            return_exceptions=True,
        )
        for alias, result in zip(aliases, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                if isinstance(result, UNREACHABLE):
                    await self._reachability.set_down(alias, result)
                else:
                    logger.warning("live updates: reading %s failed: %s", alias, result)
                failed.add(alias)
                pending.queues.update(queue for queue in queues if queue.connection == alias)
                pending.jobs.update(job for job in jobs if job.queue.connection == alias)
                for queue in queues:
                    if queue.connection == alias:
                        self._read_at.pop(queue, None)
                for job in jobs:
                    if job.queue.connection == alias:
                        self._read_at.pop(job, None)
            else:
                await self._reachability.set_up(alias)
        if failed:
            pending.requests = requests + pending.requests
        else:
            update.answered = requests
        return update, failed

    async def _refresh_alias(
        self,
        alias: str,
        queues: list[QueueRef],
        jobs: list[JobRef],
        polled: list[JobRef],
        update: LiveUpdate,
    ) -> None:
        """Read the due queues and jobs of one connection into `update`."""
        client = client_for(self._connections[alias])
        if polled:
            jobs = jobs + await self._jobs.logs_moved(client, polled)
        counts = await fetch_counts(client, queues)
        # Watched jobs are read a few at a time: hundreds of job pages open must not take every
        # pooled connection (page views would then find Redis "busy").
        gate = asyncio.Semaphore(PARALLEL_JOB_READS)

        async def read(job: JobRef) -> JobDetail | None:
            async with gate:
                return await self._jobs.read(client, job)

        details = await asyncio.gather(*(read(job) for job in jobs))
        read_at = time.monotonic()
        for row in counts:
            self._counted_at[row.queue] = read_at
            if self._counts.record(row, read_at):
                update.changed.add(row.queue)
            update.counts[row.queue] = row
        for job, detail in zip(jobs, details, strict=True):
            update.jobs[job] = detail
