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
from dashboard.conf import DEFAULTS, get_config
from queues.counts import now_ms
from queues.live.reachability import REDIS_FAULTS
from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.sampling import forget_refusals, record_samples, sampling_refusal
from queues.throughput import HOUR, Throughput, Window, fetch_throughput, last_minute

logger = logging.getLogger("bullmq_dashboard.throughput")


class ThroughputSettingError(ValueError):
    """KEY_PREFIX or THROUGHPUT holds a value the dashboard cannot use (check E012)."""


@dataclass(frozen=True)
class ThroughputSettings:
    """`KEY_PREFIX` and `THROUGHPUT` of BULLMQ_DASHBOARD (defaults in dashboard.conf.DEFAULTS)."""

    key_prefix: str
    sampling: bool
    max_sampled_queues: int
    recent_jobs: int


def parse_settings(raw: dict[str, Any]) -> ThroughputSettings:
    """ThroughputSettings from the merged settings dict; ThroughputSettingError says what is wrong."""
    prefix = raw.get("KEY_PREFIX")
    if not isinstance(prefix, str) or not prefix or any(char in prefix for char in "{}*?[]\\ \n\r\t"):
        raise ThroughputSettingError(
            f"KEY_PREFIX must be a non-empty string without braces, glob characters or spaces, not {prefix!r}"
        )
    given = raw.get("THROUGHPUT")
    if not isinstance(given, dict):
        raise ThroughputSettingError(f"THROUGHPUT must be a dict, not {type(given).__name__}")
    merged = {**DEFAULTS["THROUGHPUT"], **given}
    try:
        max_queues, recent_jobs = int(merged["MAX_SAMPLED_QUEUES"]), int(merged["RECENT_JOBS"])
    except (TypeError, ValueError, OverflowError) as exc:
        raise ThroughputSettingError(f"THROUGHPUT's numbers must be whole numbers ({exc})") from None
    if max_queues < 0 or not 1 <= recent_jobs <= 10_000:
        raise ThroughputSettingError(
            "THROUGHPUT's MAX_SAMPLED_QUEUES must be 0 or more, RECENT_JOBS 1 to 10000"
        )
    return ThroughputSettings(prefix, bool(merged["SAMPLING"]), max_queues, recent_jobs)


def throughput_settings() -> ThroughputSettings:
    """The current throughput settings (the system check reports a bad value; defaults stand in)."""
    try:
        return parse_settings(get_config().raw)
    except ThroughputSettingError:
        return parse_settings(DEFAULTS)


def sampling_unavailable(queue: QueueRef) -> str:
    """Why the dashboard does not sample this queue, in words, or "" when it does."""
    settings = throughput_settings()
    if get_config().read_only:
        return gettext_lazy("Sampling is unavailable: the dashboard is read-only, so it writes nothing.")
    if not settings.sampling:
        return gettext_lazy("Sampling is unavailable: it is turned off (THROUGHPUT['SAMPLING']).")
    refusal = sampling_refusal(queue.connection)
    if refusal is not None:
        return gettext_lazy("Sampling is unavailable: %(reason)s", reason=refusal.reason)
    return ""


def sampling_on() -> bool:
    """True when this process records samples (SAMPLING on, not READ_ONLY, settings readable)."""
    try:
        settings = throughput_settings()
    except ThroughputSettingError:
        return False
    return settings.sampling and settings.max_sampled_queues > 0 and not get_config().read_only


async def sample_tick(now: int | None = None) -> None:
    """One tick of the sampler: record the last minutes of every queue, one pipeline per connection.

    Writes nothing with READ_ONLY or THROUGHPUT['SAMPLING'] off. At most MAX_SAMPLED_QUEUES queues (the
    first by connection, prefix and name); queues whose workers record BullMQ's metrics are read and
    skipped. A connection that fails is logged and left for the next tick.
    """
    settings = throughput_settings()
    if get_config().read_only or not settings.sampling or settings.max_sampled_queues == 0:
        return
    at = now_ms() if now is None else now
    listed, failed = await registry.reachable_queues()
    for alias, reason in failed.items():
        logger.warning("throughput samples of %s not recorded: %s", alias, reason)
    queues = listed[: settings.max_sampled_queues]
    by_alias: dict[str, list[QueueRef]] = {}
    for queue in queues:
        by_alias.setdefault(queue.connection, []).append(queue)

    async def one(alias: str, members: list[QueueRef]) -> None:
        try:
            await record_samples(registry.client(alias), members, at, settings.key_prefix)
        except REDIS_FAULTS as exc:
            logger.warning("throughput samples of %s not recorded: %s", alias, exc)

    await asyncio.gather(*(one(alias, members) for alias, members in by_alias.items()))


class SparklineCache:
    """The last hour of each queue, kept for the minute it was read in: the overview draws one per row,
    and its views within a minute cost Redis nothing more (a sample is a minute)."""

    def __init__(self, size: int = 5000) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[QueueRef, str], tuple[int, Throughput]] = OrderedDict()

    async def get(self, queues: list[QueueRef], now: int | None = None) -> dict[QueueRef, Throughput]:
        """The last hour of these queues; those not read this minute in one pipeline per connection. A
        connection that cannot be read leaves its queues out (their rows show no sparkline)."""
        at = now_ms() if now is None else now
        minute = last_minute(at)
        prefix = throughput_settings().key_prefix
        found: dict[QueueRef, Throughput] = {}
        missing: dict[str, list[QueueRef]] = {}
        for queue in queues:
            kept = self._kept.get((queue, prefix))
            if kept is not None and kept[0] == minute:
                found[queue] = kept[1]
                self._kept.move_to_end((queue, prefix))
            else:
                missing.setdefault(queue.connection, []).append(queue)
        reads = await asyncio.gather(
            *(_read(alias, members, HOUR, at, prefix) for alias, members in missing.items())
        )
        for rows in reads:
            for row in rows:
                found[row.queue] = row
                self._kept[(row.queue, prefix)] = (minute, row)
                self._kept.move_to_end((row.queue, prefix))
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return found

    def clear(self) -> None:
        """Forget every kept hour (tests)."""
        self._kept.clear()


async def _read(alias: str, queues: list[QueueRef], window: Window, at: int, prefix: str) -> list[Throughput]:
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


@dataclass(frozen=True)
class Sparkline:
    """What an overview row's sparkline shows of the last hour (hashable: it is part of the row's key)."""

    completed: str
    failed: str
    completed_total: int
    failed_total: int
    has_history: bool
    lower_bound: bool


def sparkline(throughput: Throughput | None) -> Sparkline | None:
    """The sparkline of a queue's last hour; None when it was not read (no sparkline at all)."""
    if throughput is None:
        return None
    return Sparkline(
        spark_values(bucket.completed for bucket in throughput.buckets),
        spark_values(bucket.failed for bucket in throughput.buckets),
        throughput.completed_total,
        throughput.failed_total,
        throughput.has_history,
        throughput.lower_bound,
    )


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    # Other connections or key prefix: what was read or refused before says nothing about them.
    if setting == "BULLMQ_DASHBOARD":
        SPARKLINES.clear()
        forget_refusals()
