"""Reading BullMQ's `<prefix>:<name>:events` streams: one blocking XREAD per connection, then
projected reads.

Each connection has one reader on a dedicated connection. Its XREAD BLOCK is re-issued every
`block_ms`, so a changed set of streams is picked up; it only wakes the reader (one entry per
stream, read whole), and what follows is read projected to the event name and job id
(`events.lua`), so a stream of large events costs little. What the events touched is noted in
`PendingWork` for the next refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ClusterError, RedisError, ResponseError

from queues import kinds
from queues.connections import UNREACHABLE_NODE, ConnectionSettings, client_for, is_cluster, slot_groups
from queues.live.backoff import Backoff
from queues.live.interest import JobRef, Viewers
from queues.live.options import WatcherOptions
from queues.live.pending import PendingWork
from queues.live.reachability import REDIS_FAULTS, UNREACHABLE, Reachability
from queues.models import QueueRef
from queues.parsing import text
from queues.scripts import script

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
EVENTS = script("events")
STREAM_TAILS = script("stream_tails")
# Projected reads after one wake-up before the loop blocks again (each is bounded, about 1 MB a stream).
MAX_PROJECTED_READS = 50
# A Redis Cluster's streams are polled this often while nothing new comes (see StreamTailer._poll).
POLL_SECONDS = 0.25


def events_key(queue: QueueRef) -> str:
    """The queue's events stream."""
    return f"{queue.key_prefix}events"


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


class StreamTailer:
    """The tailed streams, how far each was read, and the reader loop of each connection."""

    def __init__(
        self,
        connections: Mapping[str, ConnectionSettings],
        options: WatcherOptions,
        viewers: Viewers,
        pending: PendingWork,
        reachability: Reachability,
        stopping: asyncio.Event,
    ) -> None:
        self._connections = connections
        self._options = options
        self._viewers = viewers
        self._pending = pending
        self._reachability = reachability
        self._stopping = stopping
        # What is tailed: stream key -> queue, and the last entry id read (None until resolved).
        self._streams: dict[str, QueueRef] = {}
        self._offsets: dict[str, str | None] = {}
        # Keys that are not streams (another program wrote them), and when they were found: skipped,
        # and tried again after `resync_interval` (the key may have been repaired).
        self._bad_streams: dict[str, float] = {}
        # Set when the tailed streams change, so a reader waiting for streams looks again.
        self._retargeted = {alias: asyncio.Event() for alias in connections}

    def tails(self, queue: QueueRef) -> bool:
        """True when the queue's events stream is tailed (a key that is not a stream is not). Bull 3/4
        writes no events stream: its queues' counts are read again every resync interval instead."""
        if kinds.is_bull(queue):
            return False
        key = events_key(queue)
        return key in self._streams and key not in self._bad_streams

    def _readable(self, alias: str) -> list[str]:
        """The stream keys of a connection to read now; bad ones again once their pause is over."""
        now = time.monotonic()
        for key, found in list(self._bad_streams.items()):
            if now - found >= self._options.resync_interval:
                del self._bad_streams[key]
                if key in self._offsets:
                    self._offsets[key] = None
        return [
            key
            for key, queue in self._streams.items()
            if queue.connection == alias and key not in self._bad_streams
        ]

    def retarget(self, queues: list[QueueRef]) -> tuple[list[str], list[QueueRef]]:
        """Tail the streams of exactly these queues; returns the stream keys added and the queues
        no longer tailed."""
        wanted = {events_key(queue): queue for queue in queues}
        added = [key for key in wanted if key not in self._streams]
        dropped = []
        for key in [key for key in self._streams if key not in wanted]:
            dropped.append(self._streams.pop(key))
            self._offsets.pop(key, None)
        for key in added:
            self._streams[key] = wanted[key]
            self._offsets[key] = None
        self.wake_readers()
        return added, dropped

    def wake_readers(self) -> None:
        """Make every reader look at the tailed streams again (or at `stopping`)."""
        for event in self._retargeted.values():
            event.set()

    async def resolve_offsets(self, keys: list[str], clients: Mapping[str, Redis] | None = None) -> None:
        """Start each new stream after its newest entry (`$`, made concrete so no event is skipped)."""
        by_alias: dict[str, list[str]] = {}
        for key in keys:
            queue = self._streams.get(key)
            if queue is not None and self._offsets.get(key) is None:
                by_alias.setdefault(queue.connection, []).append(key)
        for alias, alias_keys in by_alias.items():
            client = clients[alias] if clients else client_for(self._connections[alias])
            try:
                tails, alias_keys = await self._tails(client, alias_keys)
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

    async def _tails(self, client: Redis, keys: list[str]) -> tuple[list[Any], list[str]]:
        """The newest entry id of each stream (None for a key that is not one), read per hash slot on a
        cluster, with the keys they are of. A cluster node that is down leaves out its own streams
        (skipped until the resync interval is over); when no node answered, its error is raised."""
        tails: list[Any] = []
        read: list[str] = []
        failed: Exception | None = None
        for group in slot_groups(client, keys):
            try:
                tails.extend(await STREAM_TAILS.call(client, group, []))
            except UNREACHABLE_NODE as exc:
                if not is_cluster(client):
                    raise
                failed = failed or exc
                for key in group:  # skipped until the resync interval is over, as in _poll
                    self._bad_stream(key, exc)
                continue
            read.extend(group)
        if failed is not None and not read:
            raise failed
        return tails, read

    def _bad_stream(self, key: str, error: Exception) -> None:
        if key not in self._bad_streams:
            logger.warning("live updates skip %s for now: %s", key, error)
        self._bad_streams[key] = time.monotonic()

    def _dedicated_client(self, settings: ConnectionSettings) -> Redis:
        """A client of its own for XREAD BLOCK, so a blocked read never holds a pooled connection. On a
        Redis Cluster the shared client: its streams are polled, not waited on (see `_poll`)."""
        if settings.cluster:
            return client_for(settings)
        return Redis.from_url(
            settings.url,
            decode_responses=False,
            socket_timeout=settings.socket_timeout + self._options.block_ms / 1000,
            socket_connect_timeout=settings.connect_timeout,
            single_connection_client=True,
            client_name="bullmq-dashboard-events",
            **settings.client_options,
        )

    async def read_loop(self, alias: str) -> None:
        """Tail the streams of one connection until `stopping` is set."""
        settings = self._connections[alias]
        client: Redis | None = None
        backoff = Backoff(self._options.backoff_min, self._options.backoff_max)
        retargeted = self._retargeted[alias]
        woke_at = -float("inf")
        try:
            while not self._stopping.is_set():
                retargeted.clear()
                keys = self._readable(alias)
                if not keys:
                    if self._bad_streams:  # wait for a retarget, or for a bad stream's next try
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self._options.resync_interval):
                                await retargeted.wait()
                    else:
                        await retargeted.wait()
                    continue
                try:
                    if client is None:
                        client = self._dedicated_client(settings)
                    if any(self._offsets.get(key) is None for key in keys):
                        await self.resolve_offsets(keys, {alias: client})
                    offsets = {key: self._offsets[key] for key in keys if self._offsets.get(key) is not None}
                    if not offsets:  # the interest changed meanwhile
                        await asyncio.sleep(0.05)
                        continue
                    # The blocking read only wakes the loop (one entry per stream, read whole); what
                    # follows is read projected to the event name and job id (events.lua).
                    # While events keep coming, read them in batches (see WatcherOptions.gather).
                    await asyncio.sleep(max(0.0, woke_at + self._options.gather - time.monotonic()))
                    reply: Any
                    if settings.cluster:
                        reply = await self._poll(client, offsets, retargeted)
                    else:
                        reply = await client.xread(
                            offsets,  # type: ignore[arg-type]
                            count=1,
                            block=self._options.block_ms,
                        )
                    if reply:
                        woke_at = time.monotonic()
                        woken = self._note(reply)
                        if woken:
                            await self._read_more(client, woken)
                except (*UNREACHABLE, ClusterError) as exc:  # ClusterError: no node of a cluster answered
                    await self._reachability.set_down(alias, exc)
                    if client is not None and not settings.cluster:  # the cluster's client is shared
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
                await self._reachability.set_up(alias)
        finally:
            if client is not None and not settings.cluster:
                await client.aclose()

    async def _poll(self, client: Redis, offsets: dict[str, Any], retargeted: asyncio.Event) -> list[Any]:
        """A Redis Cluster's streams, read without blocking: one XREAD per hash slot (a command naming
        streams of two slots is refused), pipelined (the client sends each to its slot's node), and
        when none had anything new, a pause of POLL_SECONDS (cut short by a retarget). A blocking read
        per slot would hold a connection per slot for each second; the poll costs one command per
        slot shown, POLL_SECONDS apart."""
        pipe = client.pipeline(transaction=False)
        groups = slot_groups(client, list(offsets))
        for group in groups:
            pipe.xread({key: offsets[key] for key in group}, count=1)
        # A node that is down fails only the reads of its own slots (the pipeline raises when every
        # node failed): the others' streams are followed on; its own are skipped like keys that are no
        # streams (not quiet, so their counts are read, not served from the watcher; tried again after
        # the resync interval).
        replies = await pipe.execute(raise_on_error=False)
        for group, answer in zip(groups, replies, strict=True):
            if isinstance(answer, Exception):
                if not isinstance(answer, UNREACHABLE_NODE):
                    raise answer
                for key in group:
                    self._bad_stream(key, answer)
        reply = [
            item
            for answer in replies
            if answer and not isinstance(answer, Exception)
            for item in _items(answer)
        ]
        if not reply:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await retargeted.wait()
        return reply

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
        for key, key_type in zip(keys, types, strict=True):
            if text(key_type) not in ("stream", "none"):
                self._bad_stream(key, error)

    def _note(self, reply: Any) -> list[str]:
        """Record what an XREAD reply touched, for the next refresh; returns the stream keys it had."""
        woken = []
        for raw_key, entries in _items(reply):
            key = text(raw_key)
            if not entries:
                continue
            if isinstance(entries[0], list) and entries[0] and isinstance(entries[0][0], list | tuple):
                entries = entries[0]  # RESP3 wraps each stream's entries once more
            events = [(text(entry_id), fields or {}) for entry_id, fields in entries]
            if self._note_events(key, [(entry_id, parse_fields(fields)) for entry_id, fields in events]):
                woken.append(key)
        self._pending.wake.set()
        return woken

    async def _read_more(self, client: Redis, keys: list[str]) -> None:
        """Read, projected, the entries after the ones an XREAD woke on until the streams are caught up
        (each call bounded per stream; at most MAX_PROJECTED_READS calls, then the next XREAD of the
        loop answers at once with whatever is left)."""
        for _ in range(MAX_PROJECTED_READS):
            keys = [key for key in keys if self._offsets.get(key) is not None]
            if not keys:
                return
            keys = [key for group in slot_groups(client, keys) for key in group]
            reply = [
                flat
                for group in slot_groups(client, keys)
                for flat in await EVENTS.call(
                    client, group, [self._options.batch, *[self._offsets[key] for key in group]]
                )
            ]
            behind = []
            for key, flat in zip(keys, reply, strict=True):
                events = [
                    (text(flat[i]), {"event": text(flat[i + 1]), "jobId": text(flat[i + 2])})
                    for i in range(0, len(flat) - 2, 3)
                ]
                # Read again only after a full batch or a read cut at the byte budget ("more" after
                # the triples): a shorter one reached the stream's end.
                more = len(flat) % 3 == 1 or len(events) >= self._options.batch
                if self._note_events(key, events) and more:
                    behind.append(key)
            self._pending.wake.set()
            keys = behind

    def _note_events(self, key: str, events: list[tuple[str, dict[str, str]]]) -> bool:
        """Record the events of one stream; False when the stream is no longer tailed or had none."""
        queue = self._streams.get(key)
        if queue is None or not events:
            return False
        self._offsets[key] = events[-1][0]
        pending = self._pending
        pending.queues.add(queue)
        arrivals = pending.arrivals.setdefault(queue, Counter())
        for entry_id, fields in events:
            event = StreamEvent(queue, entry_id, fields.get("event", ""), fields.get("jobId") or None, fields)
            state = ARRIVAL_STATES.get(event.name)
            if state is not None:
                arrivals[state] += 1
            if event.job_id is not None:
                job = JobRef(queue, event.job_id)
                if self._viewers.watches(job):
                    pending.jobs.add(job)
        return True


def _items(reply: Any) -> list[Any]:
    """The (stream key, entries) pairs of an XREAD reply (a dict in RESP3, a list in RESP2)."""
    return list(reply.items()) if isinstance(reply, dict) else list(reply)
