"""The dashboard's side of the throughput charts: their settings, the sampler's tick (run once a minute by
the process's monitor, dashboard.monitor), the overview's sparklines kept per queue for the minute, and
why a chart has no samples.

Sampling writes only the dashboard's own keys (`<KEY_PREFIX>:samples:…`, queues/sampling.py), never a
queue's; with READ_ONLY it writes nothing at all, and the charts of queues without BullMQ metrics say
so instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from dashboard import registry
from dashboard.conf import DEFAULTS, get_config, names
from queues.counts import now_ms
from queues.discovery import within
from queues.latency import MAX_RECENT_JOBS
from queues.live.reachability import REDIS_FAULTS
from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.sampling import (
    Tally,
    count_samples,
    forget_refusals,
    sampling_refusal,
    write_samples,
)
from queues.throughput import HOUR, Throughput, Window, fetch_throughput, last_minute

logger = logging.getLogger("bullmq_dashboard.throughput")


class ThroughputSettingError(ValueError):
    """KEY_PREFIX or THROUGHPUT holds a value the dashboard cannot use (check E012)."""


@dataclass(frozen=True)
class ThroughputSettings:
    """`KEY_PREFIX` and `THROUGHPUT` of BULLMQ_DASHBOARD (defaults in dashboard.conf.DEFAULTS)."""

    # None: KEY_PREFIX cannot be used, so samples are neither read nor written.
    key_prefix: str | None
    sampling: bool
    max_sampled_queues: int
    recent_jobs: int
    # Why these settings could not be used as given (check E012); then nothing is sampled.
    problem: str = ""


def key_prefix_error(prefix: object) -> str:
    """What is wrong with a KEY_PREFIX on its own, or ""."""
    if not isinstance(prefix, str) or not prefix or any(char in prefix for char in "{}*?[]\\ \n\r\t"):
        return (
            f"KEY_PREFIX must be a non-empty string without braces, glob characters or spaces, not {prefix!r}"
        )
    return ""


def key_prefix_overlaps(prefix: str, connections: object) -> list[str]:
    """The configured queue prefixes (a connection's PREFIXES, or the prefixes of its QUEUES) that
    overlap KEY_PREFIX: equal to it, under it, or holding it. The dashboard's sample keys could then be
    a queue's keys (a queue `samples` under the prefix KEY_PREFIX has a job at every sample key)."""
    found: list[str] = []
    for alias, options in connections.items() if isinstance(connections, dict) else []:
        if not isinstance(options, dict):
            continue
        queues = [str(key).rpartition(":")[0] for key in names(options.get("QUEUES"))]
        for queue_prefix in (*names(options.get("PREFIXES")), *queues):
            if within(queue_prefix, prefix) or within(prefix, queue_prefix):
                found.append(f"{queue_prefix!r} of connection {alias!r}")
    return list(dict.fromkeys(found))


def _whole_number(merged: dict[str, Any], name: str) -> int:
    value = merged[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ThroughputSettingError(f"THROUGHPUT[{name!r}] must be a whole number, not {value!r}")
    return value


def parse_settings(raw: dict[str, Any]) -> ThroughputSettings:
    """ThroughputSettings from the merged settings dict; ThroughputSettingError says what is wrong."""
    prefix = raw.get("KEY_PREFIX")
    problem = key_prefix_error(prefix)
    if problem:
        raise ThroughputSettingError(problem)
    assert isinstance(prefix, str)
    overlaps = key_prefix_overlaps(prefix, raw.get("CONNECTIONS"))
    if overlaps:
        raise ThroughputSettingError(
            f"KEY_PREFIX {prefix!r} overlaps the queue prefix {', '.join(overlaps)}: the dashboard's sample "
            "keys could be that queue's keys"
        )
    given = raw.get("THROUGHPUT")
    if not isinstance(given, dict):
        raise ThroughputSettingError(f"THROUGHPUT must be a dict, not {type(given).__name__}")
    merged = {**DEFAULTS["THROUGHPUT"], **given}
    sampling = merged["SAMPLING"]
    if not isinstance(sampling, bool):
        # "false" from an environment variable is a true value: only a real bool turns sampling on.
        raise ThroughputSettingError(f"THROUGHPUT['SAMPLING'] must be True or False, not {sampling!r}")
    max_queues, recent_jobs = (
        _whole_number(merged, "MAX_SAMPLED_QUEUES"),
        _whole_number(merged, "RECENT_JOBS"),
    )
    if max_queues < 0 or not 1 <= recent_jobs <= MAX_RECENT_JOBS:
        raise ThroughputSettingError(
            f"THROUGHPUT's MAX_SAMPLED_QUEUES must be 0 or more, RECENT_JOBS 1 to {MAX_RECENT_JOBS}"
        )
    return ThroughputSettings(prefix, sampling, max_queues, recent_jobs)


def throughput_settings() -> ThroughputSettings:
    """The current throughput settings. Settings that do not parse (check E012 says why) sample nothing:
    a typo must never turn on writes an operator turned off. The charts still read BullMQ's metrics,
    and the samples under a KEY_PREFIX that is usable on its own."""
    raw = get_config().raw
    try:
        return parse_settings(raw)
    except ThroughputSettingError as exc:
        prefix = raw.get("KEY_PREFIX")
        given = raw.get("THROUGHPUT")
        recent = given.get("RECENT_JOBS") if isinstance(given, dict) else None
        if isinstance(recent, bool) or not isinstance(recent, int) or not 1 <= recent <= MAX_RECENT_JOBS:
            recent = DEFAULTS["THROUGHPUT"]["RECENT_JOBS"]
        usable = prefix if isinstance(prefix, str) and not key_prefix_error(prefix) else None
        return ThroughputSettings(usable, False, 0, recent, problem=str(exc))


# Why this process's last sampler tick left a queue out (over the cap, a sample key among another
# queue's keys); replaced by every tick.
_not_sampled: dict[QueueRef, str] = {}


def sampling_unavailable(queue: QueueRef) -> str:
    """Why the dashboard does not sample this queue, in words, or "" when it does."""
    settings = throughput_settings()
    if get_config().read_only:
        return gettext_lazy("Sampling is unavailable: the dashboard is read-only, so it writes nothing.")
    if settings.problem:
        return gettext_lazy(
            "Sampling is unavailable: the KEY_PREFIX or THROUGHPUT setting cannot be used (check "
            "bullmq_dashboard.E012): %(problem)s",
            problem=settings.problem,
        )
    if not settings.sampling:
        return gettext_lazy("Sampling is unavailable: it is turned off (THROUGHPUT['SAMPLING']).")
    if settings.max_sampled_queues == 0:
        return _over_cap(0)
    refusal = sampling_refusal(queue.connection)
    if refusal is not None:
        return gettext_lazy("Sampling is unavailable: %(reason)s", reason=refusal.reason)
    return _not_sampled.get(queue, "")


def _over_cap(cap: int) -> str:
    return gettext_lazy(
        "Not sampled: over MAX_SAMPLED_QUEUES (the dashboard samples %(cap)s queues; "
        "THROUGHPUT['MAX_SAMPLED_QUEUES'] raises the cap).",
        cap=cap,
    )


def sampling_on() -> bool:
    """True when this process records samples (SAMPLING on, not READ_ONLY, settings readable)."""
    settings = throughput_settings()
    return settings.sampling and settings.max_sampled_queues > 0 and not get_config().read_only


def taken_reason(tally: Tally) -> str:
    """Why a queue whose sample key would be another queue's key is not sampled."""
    return gettext_lazy(
        "Sampling is unavailable: its sample key %(key)s would be a key of the queue %(queue)s.",
        key=tally.key,
        queue=tally.owner,
    )


# Queues read at least in one round of a tick when the cap leaves fewer to sample (queues whose workers
# record BullMQ's metrics are read and passed over, so a round may find fewer than it reads).
TICK_ROUND = 100


async def sample_tick(now: int | None = None) -> None:
    """One tick of the sampler: record the last minutes of every queue, one pipeline per connection.

    Writes nothing with READ_ONLY, THROUGHPUT['SAMPLING'] off or settings that do not parse. At most
    MAX_SAMPLED_QUEUES queues (the first by connection, prefix and name among those the dashboard
    samples: queues whose workers record BullMQ's metrics are read and passed over, not counted); the
    others are "not sampled: over MAX_SAMPLED_QUEUES" on their pages. Never a queue under KEY_PREFIX,
    nor one whose sample key would be a key of another queue (a job's: `<prefix>:<name>:<id>`). A
    connection that fails is logged and left for the next tick.
    """
    settings = throughput_settings()
    prefix = settings.key_prefix
    if get_config().read_only or not settings.sampling or settings.max_sampled_queues == 0 or prefix is None:
        return
    at = now_ms() if now is None else now
    listed, failed = await registry.reachable_queues(registry.BACKGROUND_LISTING_AGE)
    for alias, reason in failed.items():
        logger.warning("throughput samples of %s not recorded: %s", alias, reason)
    # Never a queue under KEY_PREFIX (discovery lists none either); a sample key inside another queue's
    # keys is found by the read (sample_counts.lua) and left alone.
    candidates = [queue for queue in listed if not within(queue.prefix, prefix)]
    left_out: dict[QueueRef, str] = {}
    remaining = settings.max_sampled_queues
    read = 0
    refused: set[str] = set()
    while read < len(candidates) and remaining > 0:
        batch = candidates[read : read + max(remaining, TICK_ROUND)]
        read += len(batch)
        # A connection that refused the dashboard (remembered: sampling_refusal) or failed is not asked again.
        tallies = await _count(
            [queue for queue in batch if queue.connection not in refused], at, prefix, refused
        )
        due: dict[str, list[Tally]] = {}
        for queue in batch:
            tally = tallies.get(queue)
            if tally is not None and tally.kind == "taken":
                left_out[queue] = taken_reason(tally)
            if tally is None or not tally.sampled:
                continue
            if remaining > 0:
                due.setdefault(queue.connection, []).append(tally)
                remaining -= 1
            else:
                left_out[queue] = _over_cap(settings.max_sampled_queues)
        await asyncio.gather(*(_write(alias, members, at) for alias, members in due.items()))
    for queue in candidates[read:]:
        left_out[queue] = _over_cap(settings.max_sampled_queues)
    _not_sampled.clear()
    _not_sampled.update(left_out)


async def _count(queues: list[QueueRef], at: int, prefix: str, refused: set[str]) -> dict[QueueRef, Tally]:
    by_alias: dict[str, list[QueueRef]] = {}
    for queue in queues:
        by_alias.setdefault(queue.connection, []).append(queue)

    async def one(alias: str, members: list[QueueRef]) -> list[Tally]:
        try:
            found = await count_samples(registry.client(alias), members, at, prefix)
        except REDIS_FAULTS as exc:
            logger.warning("throughput samples of %s not recorded: %s", alias, exc)
            found = None
        if found is None:
            refused.add(alias)
        return found or []

    found = await asyncio.gather(*(one(alias, members) for alias, members in by_alias.items()))
    return {tally.queue: tally for tallies in found for tally in tallies}


async def _write(alias: str, tallies: list[Tally], at: int) -> None:
    try:
        await write_samples(registry.client(alias), tallies, at)
    except REDIS_FAULTS as exc:
        logger.warning("throughput samples of %s not recorded: %s", alias, exc)


@dataclass(frozen=True)
class Sparkline:
    """What an overview row's sparkline shows of the last hour (hashable: it is part of the row's key)."""

    completed: str
    failed: str
    completed_total: int
    failed_total: int
    has_history: bool
    lower_bound: bool


def sparkline(throughput: Throughput | Sparkline | None) -> Sparkline | None:
    """The sparkline of a queue's last hour; None when it was not read (no sparkline at all)."""
    if throughput is None or isinstance(throughput, Sparkline):
        return throughput
    return Sparkline(
        spark_values(bucket.completed for bucket in throughput.buckets),
        spark_values(bucket.failed for bucket in throughput.buckets),
        throughput.completed_total,
        throughput.failed_total,
        throughput.has_history,
        throughput.lower_bound,
    )


# A read of sparklines under way: the queues it reads, and the task reading them.
_Reading = tuple[frozenset[QueueRef], "asyncio.Task[dict[QueueRef, Sparkline]]"]


class SparklineCache:
    """The sparkline of each queue's last hour, kept for the minute it was read in: the overview draws
    one per row, and its views within a minute cost Redis nothing more (a sample is a minute). Only
    the Sparkline is kept (two strings of 60 values and two totals), never the Throughput it was drawn
    from (60 buckets and the points read: 10 KB a queue). Views that arrive together share the reads
    under way of their connection and minute instead of each reading the rows again."""

    def __init__(self, size: int = 5000) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[QueueRef, str], tuple[int, Sparkline]] = OrderedDict()
        self._reading: dict[tuple[asyncio.AbstractEventLoop, str, str, int], list[_Reading]] = {}

    async def get(self, queues: list[QueueRef], now: int | None = None) -> dict[QueueRef, Sparkline]:
        """The last hour of these queues; those not read this minute in one pipeline per connection (or
        by a read under way). A connection that cannot be read leaves its queues out (their rows show no
        sparkline)."""
        at = now_ms() if now is None else now
        minute = last_minute(at)
        prefix = throughput_settings().key_prefix
        found: dict[QueueRef, Sparkline] = {}
        missing: dict[str, list[QueueRef]] = {}
        for queue in queues:
            kept = self._kept.get((queue, prefix or ""))
            if kept is not None and kept[0] == minute:
                found[queue] = kept[1]
                self._kept.move_to_end((queue, prefix or ""))
            else:
                missing.setdefault(queue.connection, []).append(queue)
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Task[dict[QueueRef, Sparkline]]] = []
        for alias, members in missing.items():
            reading = self._reading.setdefault((loop, alias, prefix or "", minute), [])
            rest = list(members)
            for covered, task in reading:
                if any(queue in covered for queue in rest):
                    waits.append(task)
                    rest = [queue for queue in rest if queue not in covered]
            if rest:
                task = loop.create_task(self._read(alias, rest, at, prefix, minute))
                reading.append((frozenset(rest), task))
                waits.append(task)
        wanted = {queue for members in missing.values() for queue in members}
        for rows in await asyncio.gather(*(asyncio.shield(task) for task in waits)):
            found.update({queue: line for queue, line in rows.items() if queue in wanted})
        return found

    async def _read(
        self, alias: str, queues: list[QueueRef], at: int, prefix: str | None, minute: int
    ) -> dict[QueueRef, Sparkline]:
        loop = asyncio.get_running_loop()
        try:
            rows = await _read(alias, queues, HOUR, at, prefix)
            lines: dict[QueueRef, Sparkline] = {}
            for row in rows:
                line = sparkline(row)
                assert line is not None
                lines[row.queue] = line
                self.keep(row.queue, prefix or "", minute, line)
            return lines
        finally:
            key = (loop, alias, prefix or "", minute)
            reading = [
                entry for entry in self._reading.get(key, []) if entry[1] is not asyncio.current_task()
            ]
            if reading:
                self._reading[key] = reading
            else:
                self._reading.pop(key, None)

    def keep(self, queue: QueueRef, prefix: str, minute: int, line: Sparkline | Throughput) -> None:
        """Keep a queue's sparkline (drawn from its Throughput when given one) for `minute`."""
        shown = sparkline(line)
        assert shown is not None
        self._kept[(queue, prefix)] = (minute, shown)
        self._kept.move_to_end((queue, prefix))
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def clear(self) -> None:
        """Forget every kept hour (tests)."""
        self._kept.clear()
        self._reading.clear()


async def _read(
    alias: str, queues: list[QueueRef], window: Window, at: int, prefix: str | None
) -> list[Throughput]:
    try:
        return await fetch_throughput(registry.client(alias), queues, window, at, prefix)
    except REDIS_FAULTS as exc:
        logger.warning("sparklines of %s not read: %s", alias, exc)
        return []


SPARKLINES = SparklineCache()


def chart_series(throughput: Throughput) -> dict[str, Any]:
    """A chart's data for charts.js (json_script): bucket starts in seconds, completed and failed per
    bucket (null where nobody counted), which buckets are lower bounds, and the bucket's minutes."""
    buckets = throughput.buckets
    return {
        "x": [bucket.start_ms // 1000 for bucket in buckets],
        "completed": [bucket.completed for bucket in buckets],
        "failed": [bucket.failed for bucket in buckets],
        "lowerBound": [bucket.lower_bound for bucket in buckets],
        "bucketMinutes": throughput.window.bucket_minutes,
    }


def spark_values(values: Iterable[int | None]) -> str:
    """A sparkline's values as its data attribute holds them: comma-separated, empty where nobody
    counted."""
    return ",".join("" if value is None else str(value) for value in values)


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    # Other connections or key prefix: what was read or refused before says nothing about them.
    if setting == "BULLMQ_DASHBOARD":
        SPARKLINES.clear()
        forget_refusals()
        _not_sampled.clear()
