"""Finding BullMQ queues in a Redis DB by SCAN over `meta` hashes, and Bull 3/4 queues by their `id`
counters (Bull writes `meta` only while paused), cached and refreshed in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from queues import kinds
from queues.connections import ConnectionSettings, client_for, is_cluster
from queues.kinds import BULL_ONLY, BULL_STRUCTURES, BULLMQ_ONLY
from queues.models import QueueRef
from queues.parsing import text

logger = logging.getLogger(__name__)

SCAN_COUNT = 1000
RECONFIRM_EVERY = 10
# The longest a request waits for the first SCAN pass of a connection (10,000 queues among 1,000,000
# other keys take about a second here); after it, the queues found so far are served.
FIRST_SCAN_WAIT = 2.0


# The key every queue of a kind has, and its type: BullMQ's `meta` hash, Bull 3/4's `id` counter (which
# BullMQ queues have too: confirm() tells them apart).
MARKER_KEYS = (("meta", "HASH"), ("id", "STRING"))


def candidate_from_meta_key(connection: str, key: str, suffix: str = "meta") -> QueueRef | None:
    """The queue a `<prefix>:<name>:<suffix>` key (`meta`, or `id`) would belong to; None when the key
    has no such shape."""
    if not key.endswith(f":{suffix}"):
        return None
    head = key[: -len(suffix) - 1]
    prefix, sep, name = head.rpartition(":")
    if not sep or not prefix or not name:
        return None
    return QueueRef(connection, prefix, name)


async def scan_queues(
    client: Redis,
    settings: ConnectionSettings,
    known: frozenset[QueueRef] = frozenset(),
    found: Callable[[list[QueueRef]], None] | None = None,
) -> list[QueueRef]:
    """Every confirmed BullMQ queue on this connection, sorted by prefix then name (one SCAN pass).

    Candidates are confirmed a SCAN page at a time, and `found` is told the queues confirmed so far
    after each page (a first pass over millions of keys takes seconds; pages can show what it found).
    Candidates in `known` (confirmed by an earlier pass) are not read again: their `meta` hash is still
    there (SCAN found it), and a pass over 10,000 queues would otherwise add 10,000 HMGETs.
    """
    queues: set[QueueRef] = set()
    async for batch in candidate_batches(client, settings):
        fresh = sorted(batch - known - queues)
        queues |= (batch & known) | set(await confirm(client, fresh))
        if found is not None:
            found(sorted(queues))
    return sorted(queues)


async def scan_candidates(client: Redis, settings: ConnectionSettings) -> set[QueueRef]:
    """The queues whose `meta` hash one SCAN pass finds, not yet confirmed as BullMQ's."""
    candidates: set[QueueRef] = set()
    async for batch in candidate_batches(client, settings):
        candidates |= batch
    return candidates


async def candidate_batches(client: Redis, settings: ConnectionSettings) -> AsyncIterator[set[QueueRef]]:
    """The candidate queues of each SCAN page (only pages that hold some) of one pass."""
    heads = [f"{_glob_escape(prefix)}:*" for prefix in settings.prefixes] or ["*"]
    for head, (suffix, key_type) in ((head, marker) for marker in MARKER_KEYS for head in heads):
        async for keys in scan_pages(client, f"{head}:{suffix}", key_type):
            batch = set()
            for raw_key in keys:
                queue = candidate_from_meta_key(settings.alias, text(raw_key), suffix)
                if queue is not None and in_scope(settings, queue):
                    batch.add(queue)
            if batch:
                yield batch


async def scan_pages(client: Redis, pattern: str, key_type: str) -> AsyncIterator[list[Any]]:
    """The keys of each page of one SCAN pass over the whole DB: on a Redis Cluster, a pass over each
    primary in turn (asked for again every pass: a failover or resharding changes them)."""
    if not is_cluster(client):
        cursor = 0
        while True:
            cursor, keys = await client.scan(cursor, match=pattern, count=SCAN_COUNT, _type=key_type)
            yield keys
            if not cursor:
                return
    cluster = cast(Any, client)
    await cluster.initialize()
    for node in cluster.get_primaries():
        cursor = 0
        while True:
            cursors, keys = await cluster.scan(
                cursor, match=pattern, count=SCAN_COUNT, _type=key_type, target_nodes=node
            )
            yield keys
            cursor = cursors[node.name]
            if not cursor:
                break


async def confirm(client: Redis, candidates: list[QueueRef]) -> list[QueueRef]:
    """Keep the candidates that are queues: BullMQ's, whose `meta` is a hash with BullMQ's fingerprint,
    or Bull 3/4's, whose `id` counter is a whole number beside at least one of Bull's lists or sets
    (queues.kinds remembers which kind each is, and which hold both libraries' keys).

    BullMQ writes `opts.maxLenEvents` into meta with every event it emits (and Node's Queue writes
    `version` = `bullmq:<version>`); Bull never writes either. Another program's `<x>:<y>:meta` hash with
    a `version` field, a job whose custom id ends in `:meta` (it has a `timestamp`), a stray `<x>:<y>:id`
    key without a queue's keys beside it: no queue. Keys are only probed by name (HMGET, GET, EXISTS,
    TYPE): a key of another type answers an error, which is no queue.

    A queue is mixed, read but never written to, when both libraries left keys of their own there:
    BullMQ's fingerprint beside Bull's `meta-paused` or `priority`, or beside Bull's counter and keys
    with no events stream (a BullMQ Queue object opened on a Bull queue writes only `meta`; every job
    BullMQ adds writes an event); or Bull's shape with no fingerprint beside BullMQ's events stream,
    `marker` or `prioritized` (a BullMQ queue whose meta is gone, a Bull queue BullMQ's scripts wrote
    to). Either library's scripts would leave jobs where the other's workers never look.
    """
    if not candidates:
        return []
    # Two round trips: most candidates another program's `<x>:<y>:id` strings (a user id, a session's)
    # are turned away by the first, two commands each, every pass.
    pipe = client.pipeline(transaction=False)
    for queue in candidates:
        pipe.hmget(f"{queue.key_prefix}meta", ["timestamp", "opts.maxLenEvents", "version"])
        pipe.exists(*(f"{queue.key_prefix}{suffix}" for suffix in BULL_STRUCTURES))
    replies = await pipe.execute(raise_on_error=False)
    first = {
        queue: (is_bullmq_meta(meta), isinstance(structures, int) and structures > 0)
        for queue, meta, structures in zip(candidates, replies[::2], replies[1::2], strict=True)
    }
    for queue, (bullmq, structured) in first.items():
        if not bullmq and not structured:
            kinds.mark(queue, False)
    probed = [queue for queue, (bullmq, structured) in first.items() if bullmq or structured]
    if not probed:
        return []
    pipe = client.pipeline(transaction=False)
    for queue in probed:
        pipe.get(f"{queue.key_prefix}id")
        for suffix, _type in (*BULL_ONLY, *BULLMQ_ONLY):
            pipe.type(f"{queue.key_prefix}{suffix}")
    replies = await pipe.execute(raise_on_error=False)
    step = 1 + len(BULL_ONLY) + len(BULLMQ_ONLY)
    confirmed = []
    for index, queue in enumerate(probed):
        counter, *types = replies[step * index : step * (index + 1)]
        typed = {
            suffix: isinstance(kind, bytes | str) and text(kind) == wanted
            for (suffix, wanted), kind in zip((*BULL_ONLY, *BULLMQ_ONLY), types, strict=True)
        }
        bullmq, structured = first[queue]
        shaped = structured and _is_counter(counter)
        mixed = (
            any(typed[suffix] for suffix, _ in BULL_ONLY) or (shaped and not typed["events"])
            if bullmq
            else shaped and any(typed[suffix] for suffix, _ in BULLMQ_ONLY)
        )
        kinds.mark(queue, shaped and not bullmq, mixed)
        if bullmq or shaped:
            confirmed.append(queue)
    return confirmed


def _is_counter(reply: object) -> bool:
    return isinstance(reply, bytes | str) and text(reply).isascii() and text(reply).isdigit()


def is_bullmq_meta(fields: object) -> bool:
    """True for the HMGET (timestamp, opts.maxLenEvents, version) of a BullMQ queue's meta hash."""
    if not isinstance(fields, list) or len(fields) != 3:
        return False
    timestamp, max_len_events, version = fields
    return timestamp is None and (max_len_events is not None or text(version).startswith("bullmq:"))


def in_scope(settings: ConnectionSettings, queue: QueueRef) -> bool:
    """True when the connection's settings let the dashboard show this queue (prefixes, queue list), and
    the queue is not under the dashboard's own key prefix."""
    if settings.reserved_prefix and within(queue.prefix, settings.reserved_prefix):
        return False
    if settings.queues:
        return queue.key in settings.queues
    return not settings.prefixes or queue.prefix in settings.prefixes


def within(prefix: str, outer: str) -> bool:
    """True when key prefix `prefix` is `outer` or lies under it (`outer:…`)."""
    return prefix == outer or prefix.startswith(f"{outer}:")


def _glob_escape(value: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in value)


@dataclass
class Directory:
    """The cached queue list of one connection; stale lists are served while a refresh runs."""

    settings: ConnectionSettings
    interval: float
    queues: list[QueueRef] | None = None
    scanned_at: float = 0.0
    passes: int = 0
    # The queues the first pass has confirmed so far.
    partial: list[QueueRef] = field(default_factory=list)
    # Listed queues (QUEUES setting) that the last read found to be neither kind's queue yet.
    unconfirmed: list[QueueRef] = field(default_factory=list)
    # First passes a request stopped waiting for (later requests serve `partial` at once).
    _waited: weakref.WeakSet[asyncio.Task[None]] = field(default_factory=weakref.WeakSet)
    _refreshing: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = field(default_factory=dict)

    async def get(self, max_age: float | None = None) -> list[QueueRef]:
        """The queue list, scanned again in the background once older than `max_age` (the directory's
        interval by default). Only the first call waits for a SCAN, and at most FIRST_SCAN_WAIT seconds:
        then the queues the pass confirmed so far (`scanning` says the list is not whole yet)."""
        if self.settings.queues:
            # Listed queues are shown whatever they hold; one read tells Bull's from BullMQ's, taken
            # again every interval (as a SCAN pass would): a listed queue that Bull fills only after the
            # first read must not stay BullMQ's, whose scripts leave Bull's workers running and its jobs
            # where Bull never looks.
            if not self.passes:
                await self.refresh()
            elif self.unconfirmed:  # none is a queue yet (usually none): asked on every call until it is
                with contextlib.suppress(RedisError, OSError):  # served as before; the next call asks again
                    found = await confirm(client_for(self.settings), self.unconfirmed)
                    self.unconfirmed = [queue for queue in self.unconfirmed if queue not in found]
            if time.monotonic() - self.scanned_at > max(self.interval, max_age or 0.0):
                self._refresh_in_background()
            return self.listed()
        if self.queues is None:
            task = self._refresh_in_background(quiet=False)
            if task in self._waited:  # one request waited for this pass already: no other does
                return list(self.partial)
            try:
                await asyncio.wait_for(asyncio.shield(task), FIRST_SCAN_WAIT)
            except TimeoutError:
                self._waited.add(task)
                return list(self.partial)
        elif time.monotonic() - self.scanned_at > max(self.interval, max_age or 0.0):
            self._refresh_in_background()
        return list(self.queues or [])

    @property
    def scanning(self) -> bool:
        """True while a first SCAN pass runs (the list served is what it confirmed so far); False
        before any pass started (the next `get` starts one)."""
        if self.queues is not None or self.settings.queues:
            return False
        try:
            task = self._refreshing.get(asyncio.get_running_loop())
        except RuntimeError:  # no running loop: no pass of this one runs
            return False
        return task is not None and not task.done()

    def listed(self) -> list[QueueRef]:
        """The queues of the connection's QUEUES setting that are in scope."""
        return [queue for queue in self.settings.explicit_queues() if in_scope(self.settings, queue)]

    async def refresh(self) -> None:
        """Run one SCAN pass now and replace the cached list (for listed queues: tell their kinds)."""
        client = client_for(self.settings)
        if self.settings.queues:
            listed = self.listed()
            queues = await confirm(client, listed)
            self.unconfirmed = [queue for queue in listed if queue not in queues]
            self.scanned_at = time.monotonic()
            self.passes += 1
            return
        # Every RECONFIRM_EVERY-th pass confirms every candidate again: a meta hash another program
        # replaced (deleted and written anew) leaves the list within that many intervals.
        known = frozenset() if self.passes % RECONFIRM_EVERY == 0 else frozenset(self.queues or ())

        def found(queues: list[QueueRef]) -> None:
            self.partial = queues

        self.queues = await scan_queues(client, self.settings, known, found if self.queues is None else None)
        self.scanned_at = time.monotonic()
        self.passes += 1

    def _refresh_in_background(self, quiet: bool = True) -> asyncio.Task[None]:
        """The running pass of this loop, or a new one (`quiet`: a failure is logged, not raised)."""
        loop = asyncio.get_running_loop()
        running = self._refreshing.get(loop)
        if running is not None and not running.done():
            return running
        task = loop.create_task(self._quiet_refresh() if quiet else self.refresh())
        # A first pass that fails after its request stopped waiting is retried by the next request.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._refreshing[loop] = task
        return task

    async def _quiet_refresh(self) -> None:
        try:
            await self.refresh()
        except Exception:  # a failed background SCAN keeps the old list; the next view retries
            logger.warning("queue discovery failed on %s", self.settings.alias, exc_info=True)

    async def stop(self) -> None:
        """Cancel a running background refresh of the running loop."""
        task = self._refreshing.pop(asyncio.get_running_loop(), None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
