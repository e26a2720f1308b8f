"""Queue page fragments rendered once per distinct content (see dashboard.row_cache): job rows, state tabs."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import fields

from django.utils.safestring import SafeString, mark_safe

from dashboard.row_cache import RowCache
from queues.models import JobSummary, QueueCounts, QueueRef
from queues.states import STATES

_ROWS = RowCache("bullmq_dashboard/partials/job_row.html", size=5000)
_TABS = RowCache("bullmq_dashboard/partials/queue_tabs.html", size=1000)


# Every field of JobSummary, so a field added to it (and to the row) can never be left out of the key.
_SUMMARY_FIELDS = tuple(field.name for field in fields(JobSummary))


def summary_key(job: JobSummary) -> Hashable:
    """Every value of a row; types kept (True and 1 render differently), parsed JSON by its repr."""
    return tuple(_hashable(getattr(job, name)) for name in _SUMMARY_FIELDS)


def _hashable(value: object) -> tuple[type, object]:
    # Field values are str, int, None or parsed JSON; only JSON objects and arrays are unhashable.
    return type(value), repr(value) if isinstance(value, dict | list) else value


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
