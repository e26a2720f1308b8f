"""HTML fragments pushed over the socket, rendered with the same partials as the pages.

Each fragment is one element with an id that the page already has; the htmx ws extension swaps it
out of band (`hx-swap-oob`, outerHTML by default). Element ids of queues are digests, so a queue
key with `{`, `:` or Unicode still makes a safe id; the data-* attributes stay as on the page.
"""

from __future__ import annotations

from functools import lru_cache

from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils.translation import get_language

from dashboard.live.groups import digest
from queues.events import JobRef
from queues.health import Verdict
from queues.models import JobDetail, QueueCounts, QueueRef
from queues.states import STATES

JOB_PARTS = ("state", "crumb", "processed", "finished", "attempts", "progress", "failure", "log-count")


@lru_cache(maxsize=8192)
def queue_dom_id(queue: QueueRef) -> str:
    """The id part that names a queue in element ids."""
    return digest(queue.connection, queue.key, length=12)


def count_dom_id(queue: QueueRef, state: str) -> str:
    """The id of a queue's count cell (overview) or tab count (queue page) for a state."""
    return f"count-{queue_dom_id(queue)}-{state}"


def name_dom_id(queue: QueueRef) -> str:
    """The id of a queue's name cell on the overview (holds the paused flag)."""
    return f"queue-{queue_dom_id(queue)}"


# The overview's failure recency cells of a queue, by part: failures of the last hour, the last failure.
FAILURE_PARTS = ("failed-hour", "last-failed")


def failure_dom_id(queue: QueueRef, part: str) -> str:
    """The id of a queue's failure recency cell on the overview (`part` of FAILURE_PARTS)."""
    return f"{part}-{queue_dom_id(queue)}"


def health_dom_id(queue: QueueRef) -> str:
    """The id of a queue's health cell on the overview."""
    return f"health-{queue_dom_id(queue)}"


def health_panel_dom_id(queue: QueueRef) -> str:
    """The id of the health panel on a queue's page."""
    return f"health-panel-{queue_dom_id(queue)}"


def _render(template: str, context: dict[str, object]) -> str:
    return render_to_string(f"bullmq_dashboard/partials/{template}", context).strip()


def overview_cells(row: QueueCounts) -> dict[str, str]:
    """The overview row's name cell and count cells, by element id (rendered once per content and
    language: many viewers joining at once, or a queue that keeps the same counts, render nothing)."""
    counts = tuple(row.counts.get(state, 0) for state in STATES)
    problem = str(row.problem)
    failures = (row.failed_last_hour, row.last_failed_at)
    return dict(
        _overview_cells(
            row.queue, counts, row.paused, problem, failures, get_language() or "", get_script_prefix()
        )
    )


@lru_cache(maxsize=4096)
def _overview_cells(
    queue: QueueRef,
    counts: tuple[int, ...],
    paused: bool,
    problem: str,
    failures: tuple[int | None, int | None],
    language: str,
    script_prefix: str,
) -> tuple[tuple[str, str], ...]:
    cells = [
        (
            name_dom_id(queue),
            _render("queue_name_cell.html", {"queue": queue, "paused": paused, "problem": problem}),
        )
    ]
    for state, count in zip(STATES, counts, strict=True):
        context = {"queue": queue, "state": state, "count": count}
        cells.append((count_dom_id(queue, state), _render("count_cell.html", context)))
    failed_last_hour, last_failed_at = failures
    for part in FAILURE_PARTS:
        context = {
            "queue": queue,
            "part": part,
            "failed_last_hour": failed_last_hour,
            "last_failed_at": last_failed_at,
        }
        cells.append((failure_dom_id(queue, part), _render("failure_cell.html", context)))
    return tuple(cells)


def health_cell(queue: QueueRef, verdict: Verdict | None) -> dict[str, str]:
    """The overview row's health cell, by element id."""
    return {health_dom_id(queue): _render("health_cell.html", {"queue": queue, "verdict": verdict})}


def health_panel(queue: QueueRef, verdict: Verdict | None) -> dict[str, str]:
    """The queue page's health panel, by element id."""
    return {health_panel_dom_id(queue): _render("health_panel.html", {"queue": queue, "verdict": verdict})}


def paused_dom_id(queue: QueueRef) -> str:
    """The id of the paused flag in a queue page's heading."""
    return f"paused-{queue_dom_id(queue)}"


def tab_counts(row: QueueCounts) -> dict[str, str]:
    """The queue page's tab counts and its heading's paused flag, by element id."""
    elements = {
        count_dom_id(row.queue, state): _render(
            "tab_count.html", {"queue": row.queue, "tab": state, "count": row.counts.get(state, 0)}
        )
        for state in STATES
    }
    elements[paused_dom_id(row.queue)] = _render(
        "paused_flag.html", {"queue": row.queue, "paused": row.paused}
    )
    return elements


def new_jobs_marker(queue: QueueRef, state: str, per_page: int, count: int) -> str:
    """The "n new jobs — show" marker above a first page."""
    return _render("new_jobs.html", {"queue": queue, "state": state, "per_page": per_page, "count": count})


def new_queues_note() -> str:
    """The overview's note that queues appeared since it was loaded."""
    return _render("new_queues.html", {"appeared": True})


def attention_more_note() -> str:
    """The "needs attention" overview's note that a queue it does not list came to need attention."""
    return _render("attention_more.html", {"more": True})


def job_parts(job: JobRef, detail: JobDetail | None) -> dict[str, str]:
    """The job page's live parts, by element id; only the state when the job is gone."""
    context: dict[str, object] = {"queue": job.queue, "job": detail, "job_id": job.job_id}
    if detail is None:
        return {
            f"job-{part}": _render("job_part.html", {**context, "part": part}) for part in ("state", "crumb")
        }
    parts = {f"job-{part}": _render("job_part.html", {**context, "part": part}) for part in JOB_PARTS}
    parts["log-pager"] = _render("logs.html", {**context, "logs": detail.logs})
    return parts


def status_banner(down: list[str]) -> str:
    """The Redis-down banner (empty and hidden when every connection answers)."""
    return _render("live_status.html", {"down": down})
