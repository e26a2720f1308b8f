"""Tailing BullMQ's `events` streams: one watcher per process re-reads what its viewers look at.

The watcher never works per viewer. Viewers declare an `Interest` (every queue, some queues, some
jobs); the watcher keeps reference counts, tails the `<prefix>:<name>:events` streams of the queues
involved with one blocking XREAD per connection (on a dedicated connection, re-issued every
`block_ms` so a changed set of streams is picked up), and re-reads what the events touched, each
queue or job at most once per `interval` (the first event at once, later ones at the end of the
interval): counts of the touched queues in one pipelined round trip per connection, and the detail
of watched jobs. Viewed queues are re-counted every `resync_interval` even without events, which
heals events trimmed from a stream (MAXLEN) or missed while Redis was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from queues.connections import ConnectionSettings, client_for
from queues.counts import fetch_counts
from queues.jobs import LOG_MARK, ReadLimits, fetch_job, fetch_logs
from queues.models import JobDetail, NotAJob, QueueCounts, QueueRef
from queues.parsing import integer, text
from queues.scripts import run_pipeline, script

logger = logging.getLogger(__name__)

# An event that puts its job at the head of a state's list (the newest-first first page).
ARRIVAL_STATES: dict[str, str] = {
    "waiting": "waiting",
    "delayed": "delayed",
    "active": "active",
    "completed": "completed",
    "failed": "failed",
    "waiting-children": "waiting-children",
}
# Errors that mean "Redis is not there right now": retried with backoff, never raised to viewers.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
# Any failure of a read: unreachable, or an error reply.
REDIS_FAULTS = (RedisError, OSError)
GONE = "gone"
EVENTS = script("events")
STREAM_TAILS = script("stream_tails")
# Projected reads after one wake-up before the loop blocks again (each is bounded, about 1 MB a stream).
MAX_PROJECTED_READS = 50
# Watched jobs read at once per connection (each read holds a pooled connection).
PARALLEL_JOB_READS = 4
# How long the refresh loop lets a burst of events gather before it reads (seconds).
COALESCE_SECONDS = 0.02


def events_key(queue: QueueRef) -> str:
    """The queue's events stream."""
    return f"{queue.key_prefix}events"


@dataclass(frozen=True, order=True)
class JobRef:
    """One job of one queue."""

    queue: QueueRef
    job_id: str


@dataclass(frozen=True)
class StreamEvent:
    """One entry of an events stream: its id, the event name and the job it is about."""

    queue: QueueRef
    id: str
    name: str
    job_id: str | None
    fields: dict[str, str]


def parse_fields(raw_fields: Mapping[Any, Any]) -> dict[str, str]:
    """The fields the watcher uses of an XREAD entry (the event name and job id), as text."""
    return {
        text(name): text(value)
        for name, value in raw_fields.items()
        if name in (b"event", b"jobId", "event", "jobId")
    }


@dataclass(frozen=True)
class Interest:
    """What one viewer looks at: every queue (the overview), some queues, some jobs."""

    all_queues: bool = False
    queues: tuple[QueueRef, ...] = ()
    jobs: tuple[JobRef, ...] = ()


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

    def __bool__(self) -> bool:
        return bool(self.changed or self.jobs or self.arrivals or self.answered)


@dataclass(frozen=True)
class WatcherOptions:
    """How often and how much the watcher reads."""

    interval: float = 1.0
    resync_interval: float = 10.0
    max_queues: int = 2000
    block_ms: int = 1000
    batch: int = 500
    limits: ReadLimits = field(default_factory=ReadLimits)
    backoff_min: float = 0.25
    backoff_max: float = 10.0


class Backoff:
    """Exponential delays with full jitter, reset on success."""

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high
        self.attempt = 0

    def next(self) -> float:
        """The next delay in seconds."""
        ceiling = min(self.high, self.low * 2.0**self.attempt)
        self.attempt += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.attempt = 0


Publish = Callable[[LiveUpdate], Awaitable[None]]
StatusChange = Callable[[str, bool], Awaitable[None]]
ListQueues = Callable[[], Awaitable[list[QueueRef]]]


class EventWatcher:
    """Tails the events streams of watched queues and publishes what changed, for a whole process."""

    def __init__(
        self,
        connections: Mapping[str, ConnectionSettings],
        publish: Publish,
        *,
        list_queues: ListQueues | None = None,
        on_status: StatusChange | None = None,
        options: WatcherOptions | None = None,
    ) -> None:
        self.connections = dict(connections)
        self.options = options or WatcherOptions()
        self._publish = publish
        self._list_queues = list_queues
        self._on_status = on_status
        # Interest, reference counted over viewers.
        self._all_viewers = 0
        self._queue_viewers: Counter[QueueRef] = Counter()
        self._job_viewers: Counter[JobRef] = Counter()
        self._listed: list[QueueRef] = []
        # What is tailed: stream key -> queue, and the last entry id read (None until resolved).
        self._streams: dict[str, QueueRef] = {}
        self._offsets: dict[str, str | None] = {}
        self._bad_streams: set[str] = set()
        # Work noted by the readers for the next refresh.
        self._dirty_queues: set[QueueRef] = set()
        self._dirty_jobs: set[JobRef] = set()
        self._arrivals: dict[QueueRef, Counter[str]] = {}
        self._requests: list[tuple[object, Interest]] = []
        self._resync_due = False
        # What the previous refreshes saw.
        self._last_counts: dict[QueueRef, tuple[tuple[tuple[str, int], ...], bool, str]] = {}
        # The latest counts of every counted queue and when they were read, for page views.
        self._counts: dict[QueueRef, tuple[QueueCounts, float]] = {}
        self._job_states: dict[JobRef, str] = {}
        self._read_at: dict[QueueRef | JobRef, float] = {}
        self._log_marks: dict[JobRef, tuple[int, str | None]] = {}
        self._down: set[str] = set()
        self._wake = asyncio.Event()
        self._retarget_events = {alias: asyncio.Event() for alias in self.connections}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._capped_warned = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return bool(self._tasks)

    @property
    def down(self) -> frozenset[str]:
        """Connection aliases that are unreachable right now."""
        return frozenset(self._down)

    async def start(self) -> None:
        """Start one reader per connection and the refresh loop on the running loop."""
        if self._tasks:
            return
        self._stopping = False
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._refresh_loop(), name="live-refresh")]
        for alias in self.connections:
            self._tasks.append(loop.create_task(self._read_loop(alias), name=f"live-events-{alias}"))

    async def stop(self) -> None:
        """Stop the readers and the refresh loop and wait until their connections are closed."""
        self._stopping = True
        tasks, self._tasks = self._tasks, []
        self._wake.set()
        for event in self._retarget_events.values():
            event.set()
        for task in tasks:
            task.cancel()
        pending = set(tasks)
        while pending:
            _done, pending = await asyncio.wait(pending, timeout=1.0)
            for task in pending:
                task.cancel()  # a library swallowed the first request (a read and its timeout raced)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                logger.error("live updates: %s had failed", task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------------ interest

    async def watch(self, interest: Interest, token: object | None = None) -> None:
        """Add a viewer's interest; with a token, the next refresh answers it with fresh data."""
        if interest.all_queues:
            self._all_viewers += 1
            if self._all_viewers == 1:
                await self._relist()
        self._queue_viewers.update(interest.queues)
        self._job_viewers.update(interest.jobs)
        added = self._retarget()
        if added:
            await self._resolve_offsets(added)
        if token is not None:
            self._requests.append((token, interest))
        self._wake.set()

    def unwatch(self, interest: Interest) -> None:
        """Remove a viewer's interest (the inverse of one `watch`)."""
        if interest.all_queues:
            self._all_viewers = max(0, self._all_viewers - 1)
        self._queue_viewers.subtract(interest.queues)
        self._job_viewers.subtract(interest.jobs)
        self._queue_viewers = +self._queue_viewers
        self._job_viewers = +self._job_viewers
        for job in {*self._job_states, *self._log_marks, *self._dirty_jobs}:
            if job not in self._job_viewers:
                self._job_states.pop(job, None)
                self._log_marks.pop(job, None)
                self._read_at.pop(job, None)
                self._dirty_jobs.discard(job)
        self._retarget()

    def fresh_counts(self, queues: list[QueueRef]) -> dict[QueueRef, QueueCounts]:
        """Counts this watcher knows to be current: read within the interval, or read since the last
        event of the queue's stream (the stream is tailed, so a later change would have marked it).

        Page views use these instead of reading Redis, so their cost does not grow with viewers.
        """
        now = time.monotonic()
        fresh: dict[QueueRef, QueueCounts] = {}
        for queue in queues:
            known = self._counts.get(queue)
            if known is None or queue.connection in self._down:
                continue
            row, read_at = known
            quiet = queue not in self._dirty_queues and events_key(queue) in self._streams
            if now - read_at < self.options.interval or (
                quiet and now - read_at < self.options.resync_interval * 2
            ):
                fresh[queue] = row
        return fresh

    def remember_counts(self, rows: list[QueueCounts], read_at: float) -> None:
        """Counts a page view read itself (at `read_at`, after the streams were tailed): kept like the
        watcher's own reads, so the next view of a quiet queue needs no Redis read."""
        for row in rows:
            known = self._counts.get(row.queue)
            if events_key(row.queue) in self._streams and (known is None or known[1] < read_at):
                self._counts[row.queue] = (row, read_at)

    def counted_queues(self) -> list[QueueRef]:
        """Queues whose counts someone views, viewed queues first, at most `max_queues`."""
        wanted = dict.fromkeys(sorted(self._queue_viewers))
        if self._all_viewers:
            wanted.update(dict.fromkeys(self._listed))
        return list(wanted)[: self.options.max_queues]

    def tailed_queues(self) -> list[QueueRef]:
        """Queues whose events stream is read: counted ones and those of watched jobs."""
        wanted = dict.fromkeys(job.queue for job in sorted(self._job_viewers))
        wanted.update(dict.fromkeys(self.counted_queues()))
        queues = list(wanted)
        if len(queues) > self.options.max_queues and not self._capped_warned:
            self._capped_warned = True
            logger.warning(
                "live updates follow %d of %d queues (BULLMQ_DASHBOARD['LIVE']['MAX_QUEUES'])",
                self.options.max_queues,
                len(queues),
            )
        return [queue for queue in queues[: self.options.max_queues] if queue.connection in self.connections]

    def _retarget(self) -> list[str]:
        """Align the tailed streams with the interest; returns the stream keys added."""
        wanted = {events_key(queue): queue for queue in self.tailed_queues()}
        added = [key for key in wanted if key not in self._streams]
        for key in [key for key in self._streams if key not in wanted]:
            queue = self._streams.pop(key)
            self._offsets.pop(key, None)
            self._last_counts.pop(queue, None)
            self._counts.pop(queue, None)
            self._read_at.pop(queue, None)
        for key in added:
            self._streams[key] = wanted[key]
            self._offsets[key] = None
        for event in self._retarget_events.values():
            event.set()
        return added

    async def _relist(self) -> None:
        """Refresh the list of every queue (for overview viewers)."""
        if self._list_queues is None:
            return
        try:
            self._listed = sorted(await self._list_queues())
        except REDIS_FAULTS as exc:
            logger.warning("live updates could not list queues: %s", exc)

    async def _resolve_offsets(self, keys: list[str], clients: Mapping[str, Redis] | None = None) -> None:
        """Start each new stream after its newest entry (`$`, made concrete so no event is skipped)."""
        by_alias: dict[str, list[str]] = {}
        for key in keys:
            queue = self._streams.get(key)
            if queue is not None and self._offsets.get(key) is None:
                by_alias.setdefault(queue.connection, []).append(key)
        for alias, alias_keys in by_alias.items():
            client = clients[alias] if clients else client_for(self.connections[alias])
            try:
                tails = await STREAM_TAILS.call(client, alias_keys, [])
            except REDIS_FAULTS:
                if clients:
                    raise  # the reader's own connection: it backs off and reconnects
                continue  # the reader resolves them once Redis answers again (or is not busy)
            for key, tail in zip(alias_keys, tails, strict=True):
                if key not in self._offsets or self._offsets[key] is not None:
                    continue
                if tail is None:
                    self._bad_stream(key, ResponseError(f"{key} is not a stream"))
                else:
                    self._offsets[key] = text(tail)

    def _bad_stream(self, key: str, error: Exception) -> None:
        if key not in self._bad_streams:
            logger.warning("live updates skip %s: %s", key, error)
        self._bad_streams.add(key)

    # ------------------------------------------------------------------ reading events

    def _dedicated_client(self, settings: ConnectionSettings) -> Redis:
        """A client of its own for XREAD BLOCK, so a blocked read never holds a pooled connection."""
        return Redis.from_url(
            settings.url,
            decode_responses=False,
            socket_timeout=settings.socket_timeout + self.options.block_ms / 1000,
            socket_connect_timeout=settings.connect_timeout,
            single_connection_client=True,
            client_name="bullmq-dashboard-events",
            **settings.options,  # type: ignore[arg-type]
        )

    async def _read_loop(self, alias: str) -> None:
        settings = self.connections[alias]
        client: Redis | None = None
        backoff = Backoff(self.options.backoff_min, self.options.backoff_max)
        retarget = self._retarget_events[alias]
        try:
            while not self._stopping:
                retarget.clear()
                keys = [
                    key
                    for key, queue in self._streams.items()
                    if queue.connection == alias and key not in self._bad_streams
                ]
                if not keys:
                    await retarget.wait()
                    continue
                try:
                    if client is None:
                        client = self._dedicated_client(settings)
                    if any(self._offsets.get(key) is None for key in keys):
                        await self._resolve_offsets(keys, {alias: client})
                    offsets = {key: self._offsets[key] for key in keys if self._offsets.get(key) is not None}
                    if not offsets:  # the interest changed meanwhile
                        await asyncio.sleep(0.05)
                        continue
                    # The blocking read only wakes the loop (one entry per stream, read whole); what
                    # follows is read projected to the event name and job id (events.lua).
                    reply = await client.xread(
                        offsets,  # type: ignore[arg-type]
                        count=1,
                        block=self.options.block_ms,
                    )
                    if reply:
                        woken = self._note(reply)
                        if woken:
                            await self._read_more(client, woken)
                except UNREACHABLE as exc:
                    await self._set_down(alias, exc)
                    if client is not None:
                        await client.aclose()
                        client = None
                    await asyncio.sleep(backoff.next())
                    continue
                except ResponseError as exc:
                    await self._find_bad_streams(client, keys, exc)
                    await asyncio.sleep(backoff.next())
                    continue
                except RedisError as exc:
                    logger.warning("live updates: reading events of %s failed: %s", alias, exc)
                    await asyncio.sleep(backoff.next())
                    continue
                backoff.reset()
                await self._set_up(alias)
        finally:
            if client is not None:
                await client.aclose()

    async def _find_bad_streams(self, client: Redis | None, keys: list[str], error: ResponseError) -> None:
        """After an XREAD error (a key of another type), stop reading the keys that are not streams."""
        if client is None:
            return
        try:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.type(key)
            types = await pipe.execute()
        except REDIS_FAULTS:
            return
        for key, kind in zip(keys, types, strict=True):
            if text(kind) not in ("stream", "none"):
                self._bad_stream(key, error)

    def _note(self, reply: Any) -> list[str]:
        """Record what an XREAD reply touched, for the next refresh; returns the stream keys it had."""
        items = reply.items() if isinstance(reply, dict) else reply
        woken = []
        for raw_key, entries in items:
            key = text(raw_key)
            if not entries:
                continue
            if isinstance(entries[0], list) and entries[0] and isinstance(entries[0][0], list | tuple):
                entries = entries[0]  # RESP3 wraps each stream's entries once more
            events = [(text(entry_id), fields or {}) for entry_id, fields in entries]
            if self._note_events(key, [(entry_id, parse_fields(fields)) for entry_id, fields in events]):
                woken.append(key)
        self._wake.set()
        return woken

    async def _read_more(self, client: Redis, keys: list[str]) -> None:
        """Read, projected, the entries after the ones an XREAD woke on until the streams are caught up
        (each call bounded per stream; at most MAX_PROJECTED_READS calls, then the next XREAD of the
        loop answers at once with whatever is left)."""
        for _ in range(MAX_PROJECTED_READS):
            keys = [key for key in keys if self._offsets.get(key) is not None]
            if not keys:
                return
            reply = await EVENTS.call(
                client, keys, [self.options.batch, *[self._offsets[key] for key in keys]]
            )
            behind = []
            for key, flat in zip(keys, reply, strict=True):
                events = [
                    (text(flat[i]), {"event": text(flat[i + 1]), "jobId": text(flat[i + 2])})
                    for i in range(0, len(flat) - 2, 3)
                ]
                if self._note_events(key, events):
                    behind.append(key)
            self._wake.set()
            keys = behind

    def _note_events(self, key: str, events: list[tuple[str, dict[str, str]]]) -> bool:
        """Record the events of one stream; False when the stream is no longer tailed or had none."""
        queue = self._streams.get(key)
        if queue is None or not events:
            return False
        self._offsets[key] = events[-1][0]
        self._dirty_queues.add(queue)
        arrivals = self._arrivals.setdefault(queue, Counter())
        for entry_id, fields in events:
            event = StreamEvent(queue, entry_id, fields.get("event", ""), fields.get("jobId") or None, fields)
            state = ARRIVAL_STATES.get(event.name)
            if state is not None:
                arrivals[state] += 1
            if event.job_id is not None:
                job = JobRef(queue, event.job_id)
                if job in self._job_viewers:
                    self._dirty_jobs.add(job)
        return True

    async def _set_down(self, alias: str, error: BaseException) -> None:
        if alias in self._down:
            return
        self._down.add(alias)
        logger.warning("live updates: Redis %s unreachable (%s); retrying", alias, error)
        if self._on_status is not None:
            await self._on_status(alias, False)

    async def _set_up(self, alias: str) -> None:
        if alias not in self._down:
            return
        self._down.discard(alias)
        logger.info("live updates: Redis %s is back", alias)
        self._resync_due = True
        self._wake.set()
        if self._on_status is not None:
            await self._on_status(alias, True)

    # ------------------------------------------------------------------ refreshing

    def _polled_jobs(self) -> list[JobRef]:
        """Watched jobs that are being processed: their logs are polled (adding a log line has no event)."""
        return [job for job in self._job_viewers if self._job_states.get(job) in (None, "active")]

    def _due(self, key: QueueRef | JobRef, now: float) -> bool:
        return now >= self._read_at.get(key, -float("inf")) + self.options.interval

    def _next_due(self, now: float, next_resync: float, next_poll: float) -> float:
        """When the refresh loop next has work: a request, a due dirty queue or job, a poll, a resync."""
        if self._requests or self._resync_due:
            return now
        interval = self.options.interval
        counted = set(self.counted_queues())
        times = [next_resync]
        never = -float("inf")
        times.extend(self._read_at.get(q, never) + interval for q in self._dirty_queues if q in counted)
        times.extend(self._read_at.get(j, never) + interval for j in self._dirty_jobs)
        if self._polled_jobs():
            times.append(next_poll)
        return min(times)

    async def _refresh_loop(self) -> None:
        options = self.options
        next_resync = time.monotonic() + options.resync_interval
        next_poll = 0.0
        retry_at = 0.0
        backoff = Backoff(options.backoff_min, options.backoff_max)
        while not self._stopping:
            self._wake.clear()
            now = time.monotonic()
            due_at = max(retry_at, self._next_due(now, next_resync, next_poll))
            if due_at > now:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due_at - now):
                        await self._wake.wait()
                continue
            # Let a burst (a job added, taken and finished within milliseconds) land in one read.
            await asyncio.sleep(COALESCE_SECONDS)
            now = time.monotonic()
            resync = self._resync_due or now >= next_resync
            poll = now >= next_poll
            self._resync_due = False
            update, failed = await self._refresh(resync, poll)
            if resync:
                next_resync = time.monotonic() + options.resync_interval
            if poll:
                next_poll = now + options.interval
            if failed:
                self._resync_due = self._resync_due or resync
                retry_at = time.monotonic() + backoff.next()
            else:
                backoff.reset()
                retry_at = 0.0
            if update:
                try:
                    await self._publish(update)
                except Exception:
                    logger.exception("live updates: publishing failed")

    async def _refresh(self, resync: bool, poll: bool) -> tuple[LiveUpdate, set[str]]:
        """Re-read what is due (everything viewed on a resync); returns the update and failed aliases.

        A queue or job touched by events is re-read at most once per interval: the first event is
        answered at once, later ones within the interval wait for its end (a trailing read).
        """
        if resync and self._all_viewers:
            await self._relist()
            added = self._retarget()
            if added:
                await self._resolve_offsets(added)
        now = time.monotonic()
        counted = set(self.counted_queues())
        due_queues = {queue for queue in self._dirty_queues & counted if self._due(queue, now)}
        due_jobs = {job for job in self._dirty_jobs if job in self._job_viewers and self._due(job, now)}
        self._dirty_queues = {queue for queue in self._dirty_queues if queue in counted} - due_queues
        self._dirty_jobs = {job for job in self._dirty_jobs if job in self._job_viewers} - due_jobs
        for queue in due_queues:
            self._read_at[queue] = now
        for job in due_jobs:
            self._read_at[job] = now
        queues = set(counted) if resync else set(due_queues)
        jobs = set(due_jobs)
        requests, self._requests = self._requests, []
        for _token, interest in requests:
            queues.update(self._listed if interest.all_queues else ())
            queues.update(interest.queues)
            jobs.update(job for job in interest.jobs if job in self._job_viewers)
        queues &= counted
        arrivals = {
            queue: dict(self._arrivals.pop(queue)) for queue in list(self._arrivals) if queue in due_queues
        }
        self._arrivals = {queue: states for queue, states in self._arrivals.items() if queue in counted}

        update = LiveUpdate(arrivals={queue: states for queue, states in arrivals.items() if states})
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
                    await self._set_down(alias, result)
                else:
                    logger.warning("live updates: reading %s failed: %s", alias, result)
                failed.add(alias)
                self._dirty_queues.update(queue for queue in queues if queue.connection == alias)
                self._dirty_jobs.update(job for job in jobs if job.queue.connection == alias)
                for queue in queues:
                    if queue.connection == alias:
                        self._read_at.pop(queue, None)
                for job in jobs:
                    if job.queue.connection == alias:
                        self._read_at.pop(job, None)
            else:
                await self._set_up(alias)
        if failed:
            self._requests = requests + self._requests
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
        client = client_for(self.connections[alias])
        if polled:
            jobs = jobs + await self._logs_moved(client, polled)
        counts = await fetch_counts(client, queues)
        # Watched jobs are read a few at a time: hundreds of job pages open must not take every
        # pooled connection (page views would then find Redis "busy").
        gate = asyncio.Semaphore(PARALLEL_JOB_READS)

        async def read(job: JobRef) -> JobDetail | None:
            async with gate:
                return await self._read_job(client, job)

        details = await asyncio.gather(*(read(job) for job in jobs))
        read_at = time.monotonic()
        for row in counts:
            self._counts[row.queue] = (row, read_at)
            signature = (tuple(sorted(row.counts.items())), row.paused, row.problem)
            if self._last_counts.get(row.queue) != signature:
                update.changed.add(row.queue)
                self._last_counts[row.queue] = signature
            update.counts[row.queue] = row
        for job, detail in zip(jobs, details, strict=True):
            update.jobs[job] = detail

    async def _logs_moved(self, client: Redis, jobs: list[JobRef]) -> list[JobRef]:
        """Jobs whose log length or last line changed since the last look (one round trip)."""
        copy_bytes = self.options.limits.copy_bytes

        def build(pipe: Pipeline) -> None:
            for job in jobs:
                LOG_MARK.queue(pipe, [f"{job.queue.job_key(job.job_id)}:logs"], [copy_bytes])

        # A logs key of another type answers no lines, not a failed refresh of every watched queue.
        replies = await run_pipeline(client, build, [LOG_MARK], per_command_errors=True)
        moved = []
        for job, reply in zip(jobs, replies, strict=True):
            count, digest = (
                (0, "") if isinstance(reply, Exception) else (integer(reply[0]) or 0, text(reply[1]))
            )
            previous = self._log_marks.get(job)
            # After a read of the job only its line count is known (lines are cut there, so their
            # digest would differ): compare the count, then digests from the next look on.
            if previous is not None and (
                previous[0] != count or (previous[1] is not None and previous[1] != digest)
            ):
                moved.append(job)
            self._log_marks[job] = (count, digest)
        return moved

    async def _read_job(self, client: Redis, job: JobRef) -> JobDetail | None:
        """A watched job with the last page of its logs (the page a follower looks at)."""
        limits = self.options.limits
        count = self._log_marks.get(job, (0, None))[0]
        last_page = max(1, -(-count // limits.log_page_size))
        try:
            detail = await fetch_job(client, job.queue, job.job_id, limits, last_page)
        except NotAJob:  # a socket opened for a key that is no job: it shows "removed", nothing else
            detail = None
        if detail is None:
            self._job_states[job] = GONE
            return None
        if detail.logs.pages != detail.logs.page:
            logs = await fetch_logs(client, job.queue, job.job_id, detail.logs.pages, limits)
            detail = replace(detail, logs=logs)
        self._job_states[job] = detail.state
        self._log_marks[job] = (detail.logs.count, None)
        return detail
