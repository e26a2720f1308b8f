"""Queue page fragments rendered once per distinct content (see dashboard.row_cache): job rows, state tabs."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from django.utils.safestring import SafeString, mark_safe

from dashboard.row_cache import RowCache
from queues.models import JobSummary, QueueCounts, QueueRef
from queues.states import STATES

_ROWS = RowCache("dashboard/partials/job_row.html", size=5000)
_TABS = RowCache("dashboard/partials/queue_tabs.html", size=1000)


def summary_key(job: JobSummary) -> Hashable:
    """Every value of a row; object or list progress (parsed JSON) by its repr, as it is unhashable."""
    progress = job.progress if not isinstance(job.progress, dict | list) else repr(job.progress)
    return (
        job.id,
        job.name,
        job.timestamp,
        job.processed_on,
        job.finished_on,
        job.attempts_made,
        job.attempts_allowed,
        type(progress),
        progress,
        job.delay,
        job.priority,
        job.failed_reason,
    )


def job_rows(
    queue: QueueRef, state: str, jobs: Iterable[JobSummary], row_actions: Iterable[str], bulk: bool
) -> SafeString:
    """The <tr> of each job, in order."""
    shown = frozenset(row_actions)
    rows = [
        _ROWS.render(
            (queue, state, shown, bulk, summary_key(job)),
            {"queue": queue, "state": state, "job": job, "row_actions": shown, "bulk": bulk},
        )
        for job in jobs
    ]
    # Each row is autoescaped template output; joining them must not escape them again.
    return mark_safe("".join(rows))


def queue_tabs(queue: QueueRef, state: str, counts: QueueCounts, per_page: int) -> SafeString:
    """The state tabs with their counts, the current one marked."""
    key = (queue, state, per_page, tuple(counts.counts.get(tab, 0) for tab in STATES))
    context = {"queue": queue, "state": state, "counts": counts, "per_page": per_page, "states": STATES}
    return _TABS.render(key, context)
