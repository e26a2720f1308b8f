"""Completed and failed jobs per minute of queues over the last hour, day or week.

From BullMQ's own metrics when the queue's workers record them (`metrics: {maxDataPoints}`: the
`metrics:completed|failed` hashes and `…:data` lists, one point a minute, newest first), otherwise
from the dashboard's own samples (queues/sampling.py). One read-only script per queue
(queues/lua/throughput.lua) reads only the points the window needs, each checked for length.

A window is whole minutes of the clock, the newest being the last minute that has ended. The hour is
drawn minute by minute; the day and the week are summed server-side into buckets of 5 minutes and of
1 hour (288 and 168 points), each bucket holding the jobs of its minutes. A minute nobody counted (before
the metrics' oldest point, before sampling began, while no dashboard ran) has no value, which charts
show as a gap, never as zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.parsing import integer, text
from queues.sampling import MINUTE_MS, Sample, sample_key
from queues.scripts import run_pipeline, script

THROUGHPUT = script("throughput")
# What one list or stream read of a queue may copy, and the longest point kept: BullMQ's points and the
# sampler's ids and values are numbers, so a longer element is not theirs.
READ_BUDGET = 1024 * 1024
MAX_ELEMENT_BYTES = 64

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


def queue_throughput(pipe: Pipeline, queue: QueueRef, bounds: tuple[int, int], key_prefix: str) -> None:
    """Add one queue's throughput read over `bounds` (window_bounds) to a pipeline (see parse_throughput)."""
    first, last = bounds
    keys = [queue.key_prefix, sample_key(key_prefix, queue)]
    THROUGHPUT.queue(pipe, keys, [first, last, READ_BUDGET, MAX_ELEMENT_BYTES, 0])


async def fetch_throughput(
    client: Redis, queues: list[QueueRef], window: Window, now_ms: int, key_prefix: str
) -> list[Throughput]:
    """Each queue's throughput over `window` ending before `now_ms`, in order; one pipeline.

    An error reply for one queue becomes that queue's problem; only an unreachable Redis raises.
    """
    if not queues:
        return []
    bounds = window_bounds(window, now_ms)

    def build(pipe: Pipeline) -> None:
        for queue in queues:
            queue_throughput(pipe, queue, bounds, key_prefix)

    replies = await run_pipeline(client, build, [THROUGHPUT], per_command_errors=True)
    return [
        parse_throughput(queue, window, *bounds, reply) for queue, reply in zip(queues, replies, strict=True)
    ]


def parse_throughput(queue: QueueRef, window: Window, first: int, last: int, reply: object) -> Throughput:
    """A Throughput from one reply of throughput.lua (an exception: the queue's problem)."""
    if isinstance(reply, BaseException) or not isinstance(reply, list) or len(reply) < 6:
        problem = gettext_lazy("Redis answered with an error: %(error)s", error=str(reply))
        return Throughput(queue, window, first, last, NO_HISTORY, problems=(problem,))
    completed_raw, failed_raw, live_raw, samples_raw, since_raw, problems_raw = reply[:6]
    problems = list(_problems(queue, problems_raw))
    completed = _recorded(completed_raw)
    failed = _recorded(failed_raw)
    for kind, recorded in (("completed", completed), ("failed", failed)):
        if recorded is not None and any(point is None for point in recorded.points):
            problems.append(
                gettext_lazy(
                    "Some points of %(key)s are not numbers; they are left out.",
                    key=f"{queue.key_prefix}metrics:{kind}:data",
                )
            )
    live = integer(live_raw) == 1
    has_metrics = any(m is not None and m.prev_ts is not None for m in (completed, failed))
    samples = [sample for sample in map(Sample.parse, samples_raw or []) if sample is not None]
    since = integer(since_raw)
    if live or (has_metrics and not samples and since is None):
        minutes = _metrics_minutes(completed, failed, first, last, live)
        source = BULLMQ
    elif samples or since is not None:
        minutes = _sampled_minutes(samples, first, last)
        source = SAMPLED
    else:
        return Throughput(
            queue,
            window,
            first,
            last,
            NO_HISTORY,
            completed_metrics=completed,
            failed_metrics=failed,
            problems=tuple(problems),
        )
    buckets = tuple(downsample(minutes, window.bucket_minutes))
    counted = sum(1 for value in minutes if value[1] is not None)
    return Throughput(
        queue,
        window,
        first,
        last,
        source,
        buckets,
        sampled_since=since if source == SAMPLED else None,
        completed_metrics=completed,
        failed_metrics=failed,
        stale=has_metrics and not live,
        problems=tuple(problems),
        counted_minutes=counted,
    )


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


def _sampled_minutes(samples: Iterable[Sample], first: int, last: int) -> list[Minute]:
    by_minute = {sample.minute_ms: sample for sample in samples}
    minutes: list[Minute] = []
    for minute in range(first, last + MINUTE_MS, MINUTE_MS):
        found = by_minute.get(minute)
        if found is None:
            minutes.append((minute, None, None, False))
        else:
            bound = found.completed_lower_bound or found.failed_lower_bound
            minutes.append((minute, found.completed, found.failed, bound))
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
        elif key.startswith(queue.key_prefix):
            yield gettext_lazy("%(key)s is a %(type)s, not what BullMQ keeps there", key=key, type=kind)
        else:
            yield gettext_lazy("%(key)s is a %(type)s, not the dashboard's samples", key=key, type=kind)
