"""Prometheus text exposition of many queues' counts and signals (queues.signals: one pipelined read).

The metric names, HELP and TYPE lines and label values of Node BullMQ's
`Queue.exportPrometheusMetrics()` (bullmq_job_count, bullmq_job_completed_total,
bullmq_job_failed_total), with the labels `prefix` and `connection` added, and the dashboard's own
metrics beside them (bullmq_dashboard_*), the health verdicts (queues.health) among them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from queues.health import Status, Verdict
from queues.models import QueueCounts, QueueRef
from queues.signals import QueueSignals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The states Node's getJobCounts() counts by default, in its order.
NODE_STATES = ("active", "completed", "delayed", "failed", "prioritized", "waiting", "waiting-children")


@dataclass(frozen=True)
class QueueMetrics:
    """What the exposition writes of one queue: its signals (one consistent read), its worker
    connections (None when CLIENT LIST was refused) and the conditions of its firing alerts."""

    signals: QueueSignals
    workers: int | None = None
    firing: tuple[str, ...] = ()
    # The health verdict (None when it could not be judged: the queue's read failed).
    verdict: Verdict | None = None

    @property
    def counts(self) -> QueueCounts:
        """The queue's counts."""
        return self.signals.counts


def escape(value: str) -> str:
    """A label value per the text exposition format: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(queue: QueueRef, **extra: str) -> str:
    head, tail = _queue_labels(queue)
    middle = "".join(f', {key}="{escape(value)}"' for key, value in extra.items())
    return f"{head}{middle}{tail}"


@lru_cache(maxsize=20_000)
def _queue_labels(queue: QueueRef) -> tuple[str, str]:
    # Escaped once per queue, not once per sample: a scrape of 5,000 queues writes 70,000 samples.
    head = f'queue="{escape(queue.name)}"'
    tail = f', prefix="{escape(queue.prefix)}", connection="{escape(queue.connection)}"'
    return head, tail


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


def _firing(row: QueueMetrics) -> Iterable[tuple[str, int | float]]:
    return [(_labels(row.counts.queue, condition=condition), 1) for condition in row.firing]


def _health(row: QueueMetrics) -> Iterable[tuple[str, int | float]]:
    if row.verdict is None:
        return []
    queue = row.counts.queue
    return [(_labels(queue, verdict=status.value), int(row.verdict.verdict is status)) for status in Status]


def _reasons(row: QueueMetrics) -> Iterable[tuple[str, int | float]]:
    if row.verdict is None:
        return []
    codes = dict.fromkeys(reason.code.value for reason in row.verdict.reasons)
    return [(_labels(row.counts.queue, code=code), 1) for code in codes]


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
        _one(lambda row: row.signals.completed_total),
    ),
    (
        "bullmq_job_failed_total",
        "counter",
        "Total number of failed jobs",
        _one(lambda row: row.signals.failed_total),
    ),
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
    (
        "bullmq_dashboard_oldest_waiting_seconds",
        "gauge",
        "Seconds the job next in line has waited (its timestamp + delay); absent when none waits",
        _one(lambda row: row.signals.oldest_waiting_seconds),
    ),
    (
        "bullmq_dashboard_workers",
        "gauge",
        "Worker connections of the queue (CLIENT LIST); absent when Redis refuses CLIENT LIST",
        _one(lambda row: row.workers),
    ),
    (
        "bullmq_dashboard_queue_health",
        "gauge",
        "The queue's health verdict: 1 for the current one (healthy, degraded, stuck, idle), 0 otherwise",
        _health,
    ),
    (
        "bullmq_dashboard_health_reason",
        "gauge",
        "1 for each reason of the queue's health verdict, by code (docs/health.md)",
        _reasons,
    ),
    (
        "bullmq_dashboard_alert_firing",
        "gauge",
        "1 for each alert of the dashboard's ALERTS rules that fires, by condition",
        _firing,
    ),
)


def exposition(rows: list[QueueMetrics], total_queues: int, up: dict[str, bool] | None = None) -> str:
    """The text exposition of these queues (one family per metric, every queue's samples in it), and
    whether each connection could be read (`up`, by alias)."""
    lines = [f"# bullmq_dashboard: {len(rows)} of {total_queues} queues"]
    if up is not None:
        lines.append("# HELP bullmq_dashboard_connection_up 1 when the connection's queues could be read")
        lines.append("# TYPE bullmq_dashboard_connection_up gauge")
        lines.extend(
            f'bullmq_dashboard_connection_up{{connection="{escape(alias)}"}} {int(ok)}'
            for alias, ok in sorted(up.items())
        )
    for name, kind, help_text, samples in FAMILIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for row in rows:
            lines.extend(f"{name}{{{labels}}} {_number(value)}" for labels, value in samples(row))
    return "\n".join(lines) + "\n"


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))
