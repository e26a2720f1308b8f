"""The dashboard's own record of completed and failed jobs per minute, for queues whose workers do not
record BullMQ's metrics (`metrics: {maxDataPoints}`), so that their charts need no extra process.

Where: one stream per queue, `<key prefix>:samples:<queue prefix>:<queue name>` (key prefix
`bullmq-dashboard` by default). A `{hash tag}` in the queue's prefix (or name) is therefore the first
one in the sample key too, which keeps it in the queue's cluster slot, as long as the key prefix has no
braces. Each entry is one minute: its id is `<minute ms>-0`, its fields `c` (completed), `f` (failed)
and `b` (flags: 1 and 2 mark the completed / failed number as a lower bound). Bounded: XADD trims the
stream to SAMPLE_MINUTES entries (a week of minutes), and the key expires a week after its last write
(queues that are gone leave nothing behind). A stream, because it is the compact one: a week of minutes
takes about 220 KB (a sorted set of the same takes 1.3 MB), its ids are the minutes, and an id can be
written once only, so several processes cannot record one minute twice. Not a hash, so queue
discovery (a SCAN for `*:meta` hashes) never mistakes one for a queue's meta.

How a minute is counted (queues/lua/sample_counts.lua), and why: the sizes of the completed and failed
sets cannot be differenced, since they stay constant under removeOnComplete / removeOnFail
`{count: N}` and drop to nothing with `true`. Instead each tick counts, for every whole minute since the
one last recorded, at most CATCH_UP_MINUTES back (the first tick of a queue counts that far back too):
- the `completed` and `failed` events of the queue's events stream whose ids (ms) fall in the minute:
  BullMQ adds exactly one when a job finishes for good, whatever is kept of the job. Exact while the
  stream still holds the minute (it is trimmed to about maxLenEvents = 10,000 entries, which a queue
  finishing more than about 2,000 jobs a minute outruns) and the read was not cut (EVENT_ENTRIES,
  EVENT_BYTES);
- ZCOUNT of the completed / failed set over the minute: exact while jobs are kept, and never more
  than what finished.
When the stream is complete for a minute its counts are recorded as they are; otherwise the larger of
the two counts is recorded and flagged as a lower bound ("at least").
Minutes are whole minutes of the clock (and never one that has not ended by Redis's clock), so
several web processes sampling the same queue count the same minutes: one that finds a minute recorded
by another writes nothing, and one that loses the race has its XADD refused (an id already there).

A sample entry more than a minute ahead of Redis's clock (a Redis whose clock was set back, or someone
else's write) would stop a queue's sampling until that time, silently: a stream takes no id below its
newest, even after XDEL. The key (the dashboard's own) is then deleted, with its history, and the
minutes due are written again.

Writes: one pipeline per connection per tick (XADD per new minute, PEXPIRE per queue written, and per
key found without an expiry). When Redis refuses a write (NOPERM from an ACL, READONLY from a
replica, OOM under maxmemory, NOREPLICAS under min-replicas-to-write, MISCONF after a failed save:
any error other than a minute another process recorded first) nothing is retried; the refusal is
kept per connection for the charts to say "sampling unavailable" (sampling_refusal). The dashboard's
READ_ONLY setting is the caller's to honour: it must not call record_samples at all then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoPermissionError, OutOfMemoryError, ReadOnlyError, ResponseError
from redis.typing import EncodableT, FieldT

from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.parsing import integer, text
from queues.scripts import run_pipeline, script

logger = logging.getLogger(__name__)

SAMPLE_COUNTS = script("sample_counts")
MINUTE_MS = 60_000
WEEK_MS = 7 * 24 * 60 * MINUTE_MS
# A week of minute points: what a sample key holds at most.
SAMPLE_MINUTES = 7 * 24 * 60
# Minutes a tick counts back to when ticks were missed (a restart, a busy process); older minutes of
# the gap stay without a point ("no data" on the chart, never a zero).
CATCH_UP_MINUTES = 10
# A minute is recorded once it ended this long ago, so that events stamped by a Redis clock a little
# behind this process's clock are in.
SETTLE_MS = 2_000
# What one tick reads of one queue's events stream at most.
EVENT_ENTRIES = 10_000
EVENT_BYTES = 4 * 1024 * 1024
# A stream over EVENT_BYTES is read an entry at a time only when its entries take at most this on
# average (one entry, copied before its size is known, is then at most the whole stream's size);
# otherwise its minutes are counted from the finished sets, as lower bounds.
EVENT_AVERAGE_BYTES = 1024
COMPLETED_LOWER_BOUND = 1
FAILED_LOWER_BOUND = 2
# Error replies that mean "this Redis takes no writes from the dashboard" (redis-py raises its own
# classes for some of them; inside a script's error the code is the first word).
REFUSALS = ("NOPERM", "READONLY", "OOM", "NOREPLICAS", "MISCONF")


def sample_key(key_prefix: str, queue: QueueRef) -> str:
    """The sample key of a queue: `<key prefix>:samples:<queue prefix>:<queue name>`."""
    return f"{key_prefix}:samples:{queue.prefix}:{queue.name}"


@dataclass(frozen=True)
class Sample:
    """One recorded minute of a queue: jobs completed and failed, each exact or a lower bound."""

    minute_ms: int
    completed: int
    failed: int
    completed_lower_bound: bool = False
    failed_lower_bound: bool = False

    @property
    def entry_id(self) -> str:
        """The stream entry id that stores it."""
        return f"{self.minute_ms}-0"

    @property
    def fields(self) -> dict[FieldT, EncodableT]:
        """The stream entry's fields."""
        flags = (COMPLETED_LOWER_BOUND if self.completed_lower_bound else 0) | (
            FAILED_LOWER_BOUND if self.failed_lower_bound else 0
        )
        return {"c": self.completed, "f": self.failed, "b": flags}

    @classmethod
    def parse(cls, raw: object) -> Sample | None:
        """An entry read back, `[id, [field, value, ...]]`; None when it is not one the sampler writes."""
        if not isinstance(raw, list | tuple) or len(raw) != 2 or not isinstance(raw[1], list | tuple):
            return None
        entry_id, flat = text(raw[0]), raw[1]
        minute = _count(entry_id.removesuffix("-0"))
        values = {text(flat[at]): _count(flat[at + 1]) for at in range(0, len(flat) - 1, 2)}
        completed, failed, flags = values.get("c"), values.get("f"), values.get("b")
        if minute is None or minute % MINUTE_MS or completed is None or failed is None or flags is None:
            return None
        return cls(
            minute,
            completed,
            failed,
            completed_lower_bound=bool(flags & COMPLETED_LOWER_BOUND),
            failed_lower_bound=bool(flags & FAILED_LOWER_BOUND),
        )


def _count(raw: object) -> int | None:
    value = text(raw)
    return int(value) if value.isascii() and value.isdigit() else None


@dataclass(frozen=True)
class SamplingRefusal:
    """Why the last tick could not write a connection's samples, and when (ms)."""

    reason: str
    at_ms: int


# Per connection alias, the refusal of the last tick that met one; a tick that writes clears it.
_refusals: dict[str, SamplingRefusal] = {}


def sampling_refusal(connection: str) -> SamplingRefusal | None:
    """Why this process's sampler could not write to this connection lately, or None."""
    return _refusals.get(connection)


def forget_refusals() -> None:
    """Forget every refusal (tests)."""
    _refusals.clear()


def newest_recordable_minute(now_ms: int) -> int:
    """The newest whole minute that ended at least SETTLE_MS before `now_ms`."""
    end = now_ms - SETTLE_MS
    return end - end % MINUTE_MS - MINUTE_MS


def samples_of(reply: object) -> list[Sample]:
    """The minutes one sample_counts.lua reply of kind "count" (or "future") gives, each exact or a
    lower bound."""
    if not isinstance(reply, list) or len(reply) < 3 or text(reply[0]) not in ("count", "future"):
        return []
    covered = integer(reply[1]) == 1
    cut_at = integer(reply[2])
    samples: list[Sample] = []
    for at in range(3, len(reply) - 4, 5):
        minute = integer(reply[at])
        if minute is None:
            continue
        events = (integer(reply[at + 1]) or 0, integer(reply[at + 2]) or 0)
        in_sets = (integer(reply[at + 3]), integer(reply[at + 4]))
        complete = covered and (cut_at is None or minute < cut_at)
        if complete:
            samples.append(Sample(minute, events[0], events[1]))
            continue
        completed, failed = (max(event, kept or 0) for event, kept in zip(events, in_sets, strict=True))
        samples.append(Sample(minute, completed, failed, True, True))
    return samples


@dataclass(frozen=True)
class Tally:
    """What one tick's read (sample_counts.lua) found for one queue."""

    queue: QueueRef
    key: str
    # "live" (its workers record BullMQ's metrics), "done" (nothing new), "count" (minutes to write),
    # "future" (minutes to write after deleting the key: it holds entries ahead of the clock),
    # "wrongtype" (the sample key is not a stream), "taken" (the sample key would be a key of the queue
    # `owner`) or "failed" (an error reply).
    kind: str
    samples: tuple[Sample, ...] = ()
    # The sample key has an expiry (known for "done" only; the others are given one when written).
    expires: bool = True
    owner: str = ""

    @property
    def sampled(self) -> bool:
        """The dashboard samples this queue (it counts toward THROUGHPUT["MAX_SAMPLED_QUEUES"])."""
        return self.kind in ("done", "count", "future")

    @property
    def writes(self) -> bool:
        """Writing this tally changes Redis."""
        return bool(self.samples) or self.kind == "future" or (self.kind == "done" and not self.expires)

    @classmethod
    def of(cls, queue: QueueRef, key: str, reply: object) -> Tally:
        """A queue's tally from its sample_counts.lua reply (or error)."""
        if isinstance(reply, BaseException) or not isinstance(reply, list) or not reply:
            return cls(queue, key, "failed")
        kind = text(reply[0])
        if kind == "done":
            return cls(queue, key, kind, expires=len(reply) < 2 or integer(reply[1]) != -1)
        if kind in ("count", "future"):
            return cls(queue, key, kind, tuple(samples_of(reply)))
        if kind == "taken":
            return cls(queue, key, kind, owner=text(reply[1]) if len(reply) > 1 else "")
        return cls(queue, key, kind if kind in ("live", "wrongtype") else "failed")


def _is_refusal(error: BaseException) -> bool:
    if isinstance(error, NoPermissionError | ReadOnlyError | OutOfMemoryError):
        return True
    return isinstance(error, ResponseError) and str(error).split(" ", 1)[0] in REFUSALS


async def count_samples(
    client: Redis, queues: list[QueueRef], now_ms: int, key_prefix: str
) -> list[Tally] | None:
    """What each queue finished since its last sample, in order: one pipelined read (sample_counts.lua
    per queue). A queue whose read fails (a key of the wrong type) is a "failed" or "wrongtype" tally
    alone; None when Redis refused the dashboard (remembered: sampling_refusal). Raises only when
    Redis cannot be reached."""
    if not queues:
        return []
    newest = newest_recordable_minute(now_ms)
    keys = [sample_key(key_prefix, queue) for queue in queues]

    def read(pipe: Pipeline) -> None:
        for queue, key in zip(queues, keys, strict=True):
            args = [newest, CATCH_UP_MINUTES, EVENT_ENTRIES, EVENT_BYTES, EVENT_AVERAGE_BYTES]
            SAMPLE_COUNTS.queue(pipe, [queue.key_prefix, key], args)

    replies = await run_pipeline(client, read, [SAMPLE_COUNTS], per_command_errors=True)
    tallies: list[Tally] = []
    for queue, key, reply in zip(queues, keys, replies, strict=True):
        if isinstance(reply, BaseException):
            if _is_refusal(reply):
                _refuse({member.connection for member in queues}, str(reply), now_ms)
                return None
            logger.warning("samples of %s not counted: %s", queue.key, reply)
        tallies.append(Tally.of(queue, key, reply))
    return tallies


async def write_samples(client: Redis, tallies: list[Tally], now_ms: int) -> None:
    """Write what count_samples found (all on `client`'s connection), in one pipeline: the new minutes
    (XADD, the stream capped at SAMPLE_MINUTES) and the key's expiry, after deleting a key that held
    entries ahead of the clock. Any refused write other than a minute another process recorded first
    is remembered (sampling_refusal), never raised or retried."""
    due = [tally for tally in tallies if tally.writes]
    if not due:
        return
    connections = {tally.queue.connection for tally in due}
    pipe = client.pipeline(transaction=False)
    for tally in due:
        if tally.kind == "future":
            pipe.delete(tally.key)
        for sample in tally.samples:
            pipe.xadd(tally.key, sample.fields, id=sample.entry_id, maxlen=SAMPLE_MINUTES, approximate=False)
        pipe.pexpire(tally.key, WEEK_MS)
    results = await pipe.execute(raise_on_error=False)
    # An id already there: another process recorded the minute first. Any other error (NOPERM, READONLY,
    # OOM, NOREPLICAS, MISCONF, a key someone turned into another type) means nothing is being recorded.
    refusal = next((error for error in results if isinstance(error, Exception) and not _taken(error)), None)
    if refusal is not None:
        _refuse(connections, str(refusal), now_ms)
        return
    for tally in due:
        if tally.kind == "future":
            logger.warning("%s held samples ahead of Redis's clock: deleted, sampling goes on", tally.key)
    for connection in connections:
        _refusals.pop(connection, None)


async def record_samples(
    client: Redis, queues: list[QueueRef], now_ms: int, key_prefix: str, limit: int | None = None
) -> list[Tally]:
    """Record the whole minutes each queue finished since its last sample (one tick of the sampler).

    All `queues` must live on `client`'s connection. One pipelined read (count_samples), then one
    pipeline of writes (write_samples) for at most `limit` of the queues the dashboard samples (queues
    whose workers record BullMQ's metrics are read and passed over). Returns the tallies of the queues
    read ([] when Redis refused); raises only when Redis cannot be reached. The dashboard's READ_ONLY
    setting is the caller's to honour: it must not call this at all then.
    """
    tallies = await count_samples(client, queues, now_ms, key_prefix)
    if tallies is None:
        return []
    sampled = [tally for tally in tallies if tally.sampled]
    await write_samples(client, sampled if limit is None else sampled[:limit], now_ms)
    return tallies


def _taken(error: Exception) -> bool:
    return "equal or smaller than the target stream top item" in str(error)


def _refuse(connections: set[str], error: str, now_ms: int) -> None:
    reason = gettext_lazy("Redis refused the dashboard's sampling: %(error)s", error=error)
    if any(connection not in _refusals for connection in connections):
        logger.warning("%s", reason)  # once, not every minute while it lasts
    for connection in connections:
        _refusals[connection] = SamplingRefusal(reason, now_ms)
