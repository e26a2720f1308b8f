"""Prometheus text exposition of many queues' counts, read in one pipelined round trip.

The metric names, HELP and TYPE lines and label values of Node BullMQ's
`Queue.exportPrometheusMetrics()` (bullmq_job_count, bullmq_job_completed_total,
bullmq_job_failed_total), with the labels `prefix` and `connection` added, and the dashboard's own
metrics beside them (bullmq_dashboard_*).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.counts import now_ms, parse_counts
from queues.messages import gettext_lazy
from queues.models import QueueCounts, QueueRef
from queues.parsing import integer
from queues.scripts import run_pipeline, script

PROMETHEUS = script("prometheus")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The states Node's getJobCounts() counts by default, in its order.
NODE_STATES = ("active", "completed", "delayed", "failed", "prioritized", "waiting", "waiting-children")


@dataclass(frozen=True)
class QueueMetrics:
    """A queue's counts and Node's completed / failed totals (None when unreadable)."""

    counts: QueueCounts
    completed_total: int | None = None
    failed_total: int | None = None


async def fetch_metrics(client: Redis, queues: list[QueueRef], now: int | None = None) -> list[QueueMetrics]:
    """Each queue's counts and totals, in order: one EVALSHA per queue, all in one pipeline.

    An error reply for one queue becomes that queue's `error`; only an unreachable Redis fails the call.
    """
    if not queues:
        return []
    at = now_ms() if now is None else now

    def build(pipe: Pipeline) -> None:
        for queue in queues:
            PROMETHEUS.queue(pipe, [queue.key_prefix], [at])

    replies = await run_pipeline(client, build, [PROMETHEUS], per_command_errors=True)
    return [_parse(queue, reply) for queue, reply in zip(queues, replies, strict=True)]


def _parse(queue: QueueRef, reply: object) -> QueueMetrics:
    if isinstance(reply, Exception) or not isinstance(reply, list):
        message = gettext_lazy("Redis answered with an error: %(error)s", error=str(reply))
        return QueueMetrics(QueueCounts.failed(queue, message))
    totals = reply[-1] if reply and isinstance(reply[-1], list) else []
    completed, failed = [*totals, None, None][:2]
    return QueueMetrics(parse_counts(queue, reply[:-1]), _total(completed), _total(failed))


def _total(value: object) -> int | None:
    # Node reads the field with parseInt(… || '0'): a number, possibly followed by anything.
    if value in (None, False):
        return None
    return integer(value)


def escape(value: str) -> str:
    """A label value per the text exposition format: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(queue: QueueRef, **extra: str) -> str:
    pairs = {"queue": queue.name, **extra, "prefix": queue.prefix, "connection": queue.connection}
    return ", ".join(f'{key}="{escape(value)}"' for key, value in pairs.items())


Family = tuple[str, str, str, Callable[[QueueMetrics], Iterable[tuple[str, int | float]]]]


def _job_counts(row: QueueMetrics) -> Iterable[tuple[str, int | float]]:
    counts = row.counts
    if counts.error:
        return []
    broken = counts.broken_states
    states = [*NODE_STATES, *(["paused"] if counts.counts.get("paused") else [])]
    return [
        (_labels(counts.queue, state=state), counts.counts.get(state, 0))
        for state in states
        if state not in broken
    ]


def _one(
    value: Callable[[QueueMetrics], int | float | None],
) -> Callable[[QueueMetrics], list[tuple[str, int | float]]]:
    def samples(row: QueueMetrics) -> list[tuple[str, int | float]]:
        found = value(row)
        return [] if found is None else [(_labels(row.counts.queue), found)]

    return samples


FAMILIES: tuple[Family, ...] = (
    ("bullmq_job_count", "gauge", "Number of jobs in the queue by state", _job_counts),
    (
        "bullmq_job_completed_total",
        "counter",
        "Total number of completed jobs",
        _one(lambda row: row.completed_total),
    ),
    ("bullmq_job_failed_total", "counter", "Total number of failed jobs", _one(lambda row: row.failed_total)),
    (
        "bullmq_dashboard_queue_paused",
        "gauge",
        "1 when the queue is paused",
        _one(lambda row: None if row.counts.error else int(row.counts.paused)),
    ),
    (
        "bullmq_dashboard_last_failure_timestamp_seconds",
        "gauge",
        "finishedOn of the newest job in the failed set, in seconds since the epoch",
        _one(lambda row: None if row.counts.last_failed_at is None else row.counts.last_failed_at / 1000),
    ),
    (
        "bullmq_dashboard_failed_last_hour",
        "gauge",
        "Jobs in the failed set that failed in the hour before the read",
        _one(lambda row: row.counts.failed_last_hour),
    ),
    (
        "bullmq_dashboard_queue_problem",
        "gauge",
        "1 when some of the queue's keys could not be read (wrong type, error reply)",
        _one(lambda row: int(bool(row.counts.error or row.counts.broken_keys))),
    ),
)


def exposition(rows: list[QueueMetrics], total_queues: int) -> str:
    """The text exposition of these queues (one family per metric, every queue's samples in it)."""
    lines = [f"# bullmq_dashboard: {len(rows)} of {total_queues} queues"]
    for name, kind, help_text, samples in FAMILIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for row in rows:
            lines.extend(f"{name}{{{labels}}} {_number(value)}" for labels, value in samples(row))
    return "\n".join(lines) + "\n"


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))
