"""Completed and failed jobs per minute of queues over the last hour, day or week.

From BullMQ's own metrics when the queue's workers record them (`metrics: {maxDataPoints}`: the
`metrics:completed|failed` hashes and `…:data` lists, one point a minute, newest first), otherwise
from the dashboard's own samples (queues/sampling.py). Two read-only scripts per part of the window,
in one pipeline: queues/lua/throughput.lua reads BullMQ's keys (only the points of the part, each
checked for length), queues/lua/throughput_samples.lua the dashboard's sample key, summed into the
window's buckets inside Redis. Separate calls, because Redis refuses a script whose KEYS the user may
not read: a user allowed the queues' keys but not `<KEY_PREFIX>:*` loses only the sampled part.

A window is whole minutes of the clock, the newest being the last minute that has ended. The hour is
drawn minute by minute; the day and the week are summed into buckets of 5 minutes and of 1 hour (288
and 168 points), each bucket holding the jobs of its minutes. A window is read in parts of at most
PART_MINUTES, one call of each script per part, so that no call holds Redis for long (converting a
week of sample entries into Lua is slow: docs/security.md). A minute nobody counted (before the metrics'
oldest point, before sampling began, while no dashboard ran) has no value, which charts show as a
gap, never as zero; a minute that was not read (a list or stream over the read budget) is a gap too,
and the throughput's problems say so.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoPermissionError, ResponseError

from queues.messages import gettext_lazy, ngettext_lazy
from queues.models import QueueRef
from queues.parsing import integer, text
from queues.sampling import MINUTE_MS, sample_key
from queues.scripts import run_pipeline, script

THROUGHPUT = script("throughput")
THROUGHPUT_SAMPLES = script("throughput_samples")
# What a metrics data list or the sample stream may take in Redis's memory to be read (MEMORY USAGE …
# SAMPLES 0; BullMQ's list of a week of points takes about 20-100 KB, a week of samples 270 KB), and
# the longest point kept: BullMQ's points and the sampler's ids and values are numbers, so a longer
# element is not theirs. A sampled value has at most MAX_SAMPLE_DIGITS digits.
READ_BUDGET = 1024 * 1024
MAX_ELEMENT_BYTES = 64
MAX_SAMPLE_DIGITS = 15
# Minutes one call reads at most (a multiple of every window's bucket): a window is read in parts.
PART_MINUTES = 360
# What a part copies one element at a time when MEMORY is refused: READ_BUDGET shared by the parts,
# never less than this (360 points of 64 bytes take 23 KB).
MIN_PART_BUDGET = 64 * 1024

# The samples are read with EVALSHA_RO, which a user allowed only to read the dashboard's keys
# (`%R~<KEY_PREFIX>:*`) may run where EVALSHA is refused; a Redis before 7 does not know it, and its
# clients (found by their first reply) read them with EVALSHA.
_WITHOUT_EVALSHA_RO: weakref.WeakSet[Redis] = weakref.WeakSet()


def lacks_evalsha_ro(client: Redis, replies: Iterable[object]) -> bool:
    """True when a reply says the server does not know EVALSHA_RO; the client is then remembered, and
    the caller reads again."""
    if client in _WITHOUT_EVALSHA_RO:
        return False
    for reply in replies:
        message = str(reply).lower() if isinstance(reply, ResponseError) else ""
        if "unknown command" in message and "evalsha_ro" in message:
            _WITHOUT_EVALSHA_RO.add(client)
            return True
    return False


def uses_evalsha_ro(client: Redis) -> bool:
    """Whether the samples of this client's server are read with EVALSHA_RO."""
    return client not in _WITHOUT_EVALSHA_RO


BULLMQ = "bullmq"
SAMPLED = "sampled"
NO_HISTORY = "none"


@dataclass(frozen=True)
class Window:
    """A span of whole minutes ending with the last minute that has ended, and its bucket size."""

    name: str
    minutes: int
    bucket_minutes: int

    @property
    def buckets(self) -> int:
        """Points drawn."""
        return self.minutes // self.bucket_minutes


WINDOWS = {
    "hour": Window("hour", 60, 1),
    "day": Window("day", 24 * 60, 5),
    "week": Window("week", 7 * 24 * 60, 60),
}
HOUR = WINDOWS["hour"]


def last_minute(now_ms: int) -> int:
    """The start (ms) of the newest minute that has ended at `now_ms`."""
    return now_ms - now_ms % MINUTE_MS - MINUTE_MS


@dataclass(frozen=True)
class Bucket:
    """Jobs finished in one bucket of a window; None where no minute of it was counted."""

    start_ms: int
    completed: int | None
    failed: int | None
    # Some minute of it was counted as "at least" (a sampled lower bound).
    lower_bound: bool = False


@dataclass(frozen=True)
class RecordedMetrics:
    """One type's BullMQ metrics as read: the hash's fields and the data points of the window."""

    count: int | None
    prev_ts: int | None
    prev_count: int | None
    # Index in the data list of the first point read, the list's length, and the points read from there
    # (newest first, as Node's getMetrics returns them; None for an element that is not a number).
    first_index: int = 0
    length: int = 0
    points: tuple[int | None, ...] = ()
    # Elements of the window that were not read (the read budget was spent, or one was too long).
    unread: int = 0

    @property
    def pending(self) -> int | None:
        """Jobs finished in prevTS's minute so far (not yet a point of the list)."""
        if self.count is None or self.prev_count is None:
            return None
        return max(0, self.count - self.prev_count)

    def per_minute(self, first: int, last: int, live: bool = True) -> dict[int, int | None]:
        """Jobs finished in each minute from `first` to `last` (ms, included) as these metrics know them;
        `live`: every worker records metrics, so the minutes after prevTS's finished no job."""
        values: dict[int, int | None] = dict.fromkeys(range(first, last + MINUTE_MS, MINUTE_MS))
        if self.prev_ts is None:
            return values
        counting = self.prev_ts - self.prev_ts % MINUTE_MS
        for offset, point in enumerate(self.points):
            minute = counting - (self.first_index + offset + 1) * MINUTE_MS
            if minute in values:
                values[minute] = point
        if counting in values:
            values[counting] = self.pending
        if not live:
            return values
        # No job finished after prevTS's minute: a recording worker would have started a new point.
        for minute in range(max(first, counting + MINUTE_MS), last + MINUTE_MS, MINUTE_MS):
            values[minute] = 0
        return values


@dataclass(frozen=True)
class Throughput:
    """A queue's completed and failed jobs over a window, where they came from, and what was wrong."""

    queue: QueueRef
    window: Window
    # The first and the last minute of the window (ms).
    first_minute: int
    last_minute: int
    source: str
    buckets: tuple[Bucket, ...] = ()
    # The oldest minute the dashboard's samples hold (sampled source only).
    sampled_since: int | None = None
    completed_metrics: RecordedMetrics | None = None
    failed_metrics: RecordedMetrics | None = None
    # The queue has BullMQ metrics, but some worker finishes jobs without recording them.
    stale: bool = False
    problems: tuple[str, ...] = field(default=())
    # Minutes of the window with a value (nobody counted the others).
    counted_minutes: int = 0

    @property
    def has_history(self) -> bool:
        """Some minute of the window was counted."""
        return any(bucket.completed is not None or bucket.failed is not None for bucket in self.buckets)

    @property
    def completed_total(self) -> int:
        """Jobs completed in the window's counted minutes."""
        return sum(bucket.completed or 0 for bucket in self.buckets)

    @property
    def failed_total(self) -> int:
        """Jobs failed in the window's counted minutes."""
        return sum(bucket.failed or 0 for bucket in self.buckets)

    @property
    def lower_bound(self) -> bool:
        """Some counted minute is a lower bound ("at least")."""
        return any(bucket.lower_bound for bucket in self.buckets)


def window_bounds(window: Window, now_ms: int) -> tuple[int, int]:
    """The first and the last minute (ms) of `window` at `now_ms`."""
    last = last_minute(now_ms)
    return last - (window.minutes - 1) * MINUTE_MS, last


def window_parts(first: int, last: int) -> list[tuple[int, int]]:
    """The parts a window from `first` to `last` (ms, whole minutes, included) is read in, oldest first:
    PART_MINUTES each, the last one shorter when the window is."""
    span = PART_MINUTES * MINUTE_MS
    return [(start, min(last, start + span - MINUTE_MS)) for start in range(first, last + MINUTE_MS, span)]


def _part_budget(parts: int) -> int:
    return max(MIN_PART_BUDGET, READ_BUDGET // max(1, parts))


def queue_throughput(
    pipe: Pipeline,
    queue: QueueRef,
    window: Window,
    bounds: tuple[int, int],
    key_prefix: str | None,
    read_only: bool = True,
) -> int:
    """Add one queue's throughput read over `bounds` (window_bounds) to a pipeline; returns how many
    replies it adds (parse them with parse_replies). Without a key prefix the samples are not read;
    `read_only`: with EVALSHA_RO (uses_evalsha_ro)."""
    parts = window_parts(*bounds)
    budget = _part_budget(len(parts))
    for start, end in parts:
        THROUGHPUT.queue(pipe, [queue.key_prefix], [start, end, READ_BUDGET, MAX_ELEMENT_BYTES, budget])
    if key_prefix is None:
        return len(parts)
    key = sample_key(key_prefix, queue)
    for at, (start, end) in enumerate(parts):
        args = [start, end, window.bucket_minutes, READ_BUDGET, MAX_SAMPLE_DIGITS, budget, int(at == 0)]
        if read_only:
            pipe.evalsha_ro(THROUGHPUT_SAMPLES.sha, 1, key, *args)
        else:
            THROUGHPUT_SAMPLES.queue(pipe, [key], args)
    return 2 * len(parts)


async def fetch_throughput(
    client: Redis, queues: list[QueueRef], window: Window, now_ms: int, key_prefix: str | None
) -> list[Throughput]:
    """Each queue's throughput over `window` ending before `now_ms`, in order; one pipeline.

    An error reply for one queue becomes that queue's problem; only an unreachable Redis raises.
    """
    if not queues:
        return []
    bounds = window_bounds(window, now_ms)
    sizes: list[int] = []

    def build(pipe: Pipeline) -> None:
        read_only = uses_evalsha_ro(client)
        sizes[:] = [queue_throughput(pipe, queue, window, bounds, key_prefix, read_only) for queue in queues]

    replies = await run_pipeline(client, build, [THROUGHPUT, THROUGHPUT_SAMPLES], per_command_errors=True)
    if lacks_evalsha_ro(client, replies):
        replies = await run_pipeline(client, build, [THROUGHPUT, THROUGHPUT_SAMPLES], per_command_errors=True)
    found: list[Throughput] = []
    at = 0
    for queue, size in zip(queues, sizes, strict=True):
        found.append(parse_replies(queue, window, bounds, replies[at : at + size], key_prefix))
        at += size
    return found


def parse_replies(
    queue: QueueRef,
    window: Window,
    bounds: tuple[int, int],
    replies: Sequence[object],
    key_prefix: str | None,
) -> Throughput:
    """A Throughput from the replies queue_throughput's calls gave, in their order."""
    parts = len(window_parts(*bounds))
    metrics, samples = replies[:parts], replies[parts:]
    return parse_throughput(queue, window, *bounds, metrics, samples, key_prefix)


def parse_throughput(
    queue: QueueRef,
    window: Window,
    first: int,
    last: int,
    metrics: Sequence[object],
    samples: Sequence[object] = (),
    key_prefix: str | None = None,
) -> Throughput:
    """A Throughput from the replies of throughput.lua (`metrics`) and throughput_samples.lua
    (`samples`), one of each per part of the window (window_parts), oldest part first; an exception
    in place of a reply is that part's problem."""
    parts = window_parts(first, last)
    problems: list[str] = []
    read = [_metrics_part(queue, reply, problems) for reply in metrics]
    if len(read) != len(parts):
        raise ValueError(f"{len(read)} replies of throughput.lua for {len(parts)} parts")
    newest = next((part for part in reversed(read) if part is not None), None)
    completed = _merged([part[0] if part else None for part in reversed(read)])
    failed = _merged([part[1] if part else None for part in reversed(read)])
    live = newest is not None and newest[2]
    has_metrics = any(m is not None and m.prev_ts is not None for m in (completed, failed))
    sampled = _Sampled.parse(queue, window, parts, samples, key_prefix)
    if not live:
        problems.extend(sampled.problems)
    if live or (has_metrics and not sampled.counted and sampled.since is None):
        minutes: list[Minute] = []
        for part, found in zip(parts, read, strict=True):
            done, lost = (found[0], found[1]) if found else (None, None)
            minutes.extend(_metrics_minutes(done, lost, *part, live))
        buckets = tuple(downsample(minutes, window.bucket_minutes))
        counted = sum(1 for minute in minutes if minute[1] is not None)
        source = BULLMQ
    elif sampled.counted or sampled.since is not None:
        buckets, counted, source = tuple(sampled.buckets), sampled.counted, SAMPLED
    else:
        return Throughput(
            queue,
            window,
            first,
            last,
            NO_HISTORY,
            completed_metrics=completed,
            failed_metrics=failed,
            problems=tuple(dict.fromkeys(problems)),
        )
    return Throughput(
        queue,
        window,
        first,
        last,
        source,
        buckets,
        sampled_since=sampled.since if source == SAMPLED else None,
        completed_metrics=completed,
        failed_metrics=failed,
        stale=has_metrics and not live,
        problems=tuple(dict.fromkeys(problems)),
        counted_minutes=counted,
    )


# What one part's throughput.lua reply says: completed and failed metrics, live.
_MetricsPart = tuple[RecordedMetrics | None, RecordedMetrics | None, bool]


def _metrics_part(queue: QueueRef, reply: object, problems: list[str]) -> _MetricsPart | None:
    if isinstance(reply, BaseException) or not isinstance(reply, list) or len(reply) < 4:
        problems.append(gettext_lazy("Redis answered with an error: %(error)s", error=str(reply)))
        return None
    completed_raw, failed_raw, live_raw, problems_raw = reply[:4]
    problems.extend(_problems(queue, problems_raw))
    recorded = (_recorded(completed_raw), _recorded(failed_raw))
    for kind, found in zip(("completed", "failed"), recorded, strict=True):
        key = f"{queue.key_prefix}metrics:{kind}:data"
        if found is not None and any(point is None for point in found.points):
            problems.append(
                gettext_lazy("Some points of %(key)s are not numbers; they are left out.", key=key)
            )
        if found is not None and found.unread:
            problems.append(
                ngettext_lazy(
                    "%(count)s point of %(key)s was not read: the read budget was spent, or a point "
                    "was too long to be one.",
                    "%(count)s points of %(key)s were not read: the read budget was spent, or a point "
                    "was too long to be one.",
                    found.unread,
                    key=key,
                )
            )
    return recorded[0], recorded[1], integer(live_raw) == 1


def _merged(parts: list[RecordedMetrics | None]) -> RecordedMetrics | None:
    """One type's metrics over the window from its parts, newest first: the hash's fields as the newest
    part read them, and the points read, as long as they follow each other in the list."""
    found = [part for part in parts if part is not None]
    if not found:
        return None
    head = found[0]
    points: list[int | None] = []
    start: int | None = None
    for part in found:
        if not part.points:
            continue
        if start is None:
            start = part.first_index
        elif part.prev_ts != head.prev_ts or part.first_index != start + len(points):
            break  # a new minute began between two calls, or a part was not read: no longer contiguous
        points.extend(part.points)
    return RecordedMetrics(
        head.count,
        head.prev_ts,
        head.prev_count,
        head.first_index if start is None else start,
        head.length,
        tuple(points),
        sum(part.unread for part in found),
    )


@dataclass(frozen=True)
class _Sampled:
    """What throughput_samples.lua's replies give over a window: buckets, counted minutes, the oldest
    sample's minute, and problems."""

    buckets: list[Bucket]
    counted: int
    since: int | None
    problems: list[str]

    @classmethod
    def parse(
        cls,
        queue: QueueRef,
        window: Window,
        parts: list[tuple[int, int]],
        replies: Sequence[object],
        key_prefix: str | None,
    ) -> _Sampled:
        key = sample_key(key_prefix, queue) if key_prefix else ""
        size = window.bucket_minutes * MINUTE_MS
        buckets: list[Bucket] = []
        problems: list[str] = []
        counted, since, unread = 0, None, 0
        if not replies:
            replies = [False] * len(parts)
        for (start, end), reply in zip(parts, replies, strict=True):
            starts = range(start, end + MINUTE_MS, size)
            if isinstance(reply, BaseException):
                problems.append(_sampling_error(reply, key_prefix or ""))
            if not isinstance(reply, list) or len(reply) < 3 + 4 * len(starts):
                buckets.extend(Bucket(at, None, None) for at in starts)
                continue
            problem, oldest, unread_from = (text(value) for value in reply[:3])
            if problem == "too large":
                problems.append(gettext_lazy("%(key)s is too large to read for a chart.", key=key))
            elif problem:
                problems.append(
                    gettext_lazy("%(key)s is a %(type)s, not the dashboard's samples", key=key, type=problem)
                )
            if oldest:
                since = integer(oldest)
            from_minute = integer(unread_from)
            if from_minute is not None:
                unread += max(0, (end - from_minute) // MINUTE_MS + 1)
            for index, at in enumerate(starts):
                c, f, minutes, bound = reply[3 + 4 * index : 7 + 4 * index]
                minutes_counted = integer(minutes) or 0
                counted += minutes_counted
                if minutes_counted:
                    buckets.append(Bucket(at, integer(c), integer(f), integer(bound) == 1))
                else:
                    buckets.append(Bucket(at, None, None))
        if unread:
            problems.append(
                ngettext_lazy(
                    "%(count)s minute of %(key)s was not read: the read budget was spent, or an entry "
                    "was too long to be a sample.",
                    "%(count)s minutes of %(key)s were not read: the read budget was spent, or an entry "
                    "was too long to be a sample.",
                    unread,
                    key=key,
                )
            )
        return cls(buckets, counted, since, problems)


def _sampling_error(error: BaseException, key_prefix: str) -> str:
    refused = isinstance(error, NoPermissionError) or (
        isinstance(error, ResponseError) and str(error).startswith("NOPERM")
    )
    if refused:
        return gettext_lazy(
            "Sampling is unavailable: the Redis user may not read %(keys)s (%(error)s)",
            keys=f"{key_prefix}:*",
            error=str(error),
        )
    return gettext_lazy("Redis answered with an error: %(error)s", error=str(error))


# One minute: (start ms, completed, failed, lower bound).
Minute = tuple[int, int | None, int | None, bool]


def _metrics_minutes(
    completed: RecordedMetrics | None, failed: RecordedMetrics | None, first: int, last: int, live: bool
) -> list[Minute]:
    done = completed.per_minute(first, last, live) if completed is not None else {}
    lost = failed.per_minute(first, last, live) if failed is not None else {}
    minutes: list[Minute] = []
    for minute in range(first, last + MINUTE_MS, MINUTE_MS):
        c, f = done.get(minute), lost.get(minute)
        # A recording worker writes a type's hash with its first job: a minute the other type counted
        # and this type has no value for finished no job of this type.
        if c is None and f is not None and (completed is None or completed.prev_ts is None):
            c = 0
        if f is None and c is not None and (failed is None or failed.prev_ts is None):
            f = 0
        minutes.append((minute, c, f, False))
    return minutes


def downsample(minutes: list[Minute], size: int) -> Iterable[Bucket]:
    """Buckets of `size` consecutive minutes, summed: None where none of its minutes was counted, a lower
    bound when one of its minutes is (a minute nobody counted is left out, and told apart by
    Throughput.counted_minutes)."""
    for at in range(0, len(minutes), size):
        part = minutes[at : at + size]
        completed = [c for _m, c, _f, _b in part if c is not None]
        failed = [f for _m, _c, f, _b in part if f is not None]
        yield Bucket(
            part[0][0],
            sum(completed) if completed else None,
            sum(failed) if failed else None,
            any(entry[3] for entry in part),
        )


def _recorded(raw: object) -> RecordedMetrics | None:
    if not isinstance(raw, list) or len(raw) < 6:
        return None
    count, prev_ts, prev_count, first_index, length, points = raw[:6]
    return RecordedMetrics(
        integer(count),
        integer(prev_ts),
        integer(prev_count),
        integer(first_index) or 0,
        integer(length) or 0,
        tuple(_point(point) for point in (points if isinstance(points, list) else [])),
        (integer(raw[6]) or 0) if len(raw) > 6 else 0,
    )


def _point(raw: object) -> int | None:
    # Node reads a point with `+point || 0`; one that is not a number (or too long to read) is shown
    # as missing here rather than as a zero nobody counted.
    if raw is None or raw is False:
        return None
    value = integer(raw)
    return value if value is not None and text(raw).strip().lstrip("-").isdigit() else None


def _problems(queue: QueueRef, raw: object) -> Iterable[str]:
    flat = raw if isinstance(raw, list) else []
    for at in range(0, len(flat) - 1, 2):
        key, kind = text(flat[at]), text(flat[at + 1])
        if kind == "too large":
            yield gettext_lazy("%(key)s is too large to read for a chart.", key=key)
        else:
            yield gettext_lazy("%(key)s is a %(type)s, not what BullMQ keeps there", key=key, type=kind)
