"""The JSON shapes of the API, built from the `queues` models; sentences (problems) in the active language."""

from __future__ import annotations

from typing import Any

from dashboard import links
from dashboard.translation import translated
from queues.jobs import resolve_job_key
from queues.models import ChildRef, JobDetail, JobPage, JobSummary, JsonValue, QueueCounts, QueueRef


def queue_json(counts: QueueCounts) -> dict[str, Any]:
    """One queue with its counts; `problem` says what is wrong with its keys (or null)."""
    queue = counts.queue
    return {
        "name": queue.name,
        "prefix": queue.prefix,
        "connection": queue.connection,
        "key": queue.key,
        "paused": counts.paused,
        "counts": counts.counts,
        "problem": translated(counts.problem) or None,
        "api_url": links.queue_api_url(queue),
        "html_url": links.queue_url(queue),
    }


def queue_detail_json(counts: QueueCounts, actions: dict[str, str]) -> dict[str, Any]:
    """A queue, its counts, its jobs URL and the actions this user may take on it."""
    return {**queue_json(counts), "jobs_url": links.jobs_api_url(counts.queue), "actions": actions}


def summary_json(job: JobSummary, api_url: str | None) -> dict[str, Any]:
    """One row of a job list; a row that is not a job says why, and has no URL."""
    if job.problem:
        return {"id": job.id, "problem": translated(job.problem), "api_url": None}
    return {
        "id": job.id,
        "name": job.name,
        "timestamp": job.timestamp,
        "processedOn": job.processed_on,
        "finishedOn": job.finished_on,
        "attemptsMade": job.attempts_made,
        "failedReason": job.failed_reason,
        "progress": job.progress,
        "api_url": api_url,
    }


def page_json(page: JobPage) -> dict[str, Any]:
    """A page of a state's jobs."""
    api_url = links.job_api_urls(page.queue)
    return {
        "state": page.state,
        "problem": translated(page.problem) or None,
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
        "pages": page.pages,
        "jobs": [summary_json(job, None if job.problem else api_url(job.id)) for job in page.jobs],
    }


def json_field(value: JsonValue) -> Any:
    """The parsed value, or the raw stored string where it is not (complete) valid JSON."""
    return value.parsed if value.is_valid else value.raw.value


def detail_json(job: JobDetail, known: list[QueueRef], actions: dict[str, str]) -> dict[str, Any]:
    """The full job."""
    queue = job.queue
    return {
        "id": job.id,
        "name": job.name,
        "queue": queue.key,
        "state": job.state,
        "data": json_field(job.data),
        "opts": json_field(job.opts),
        "returnvalue": json_field(job.returnvalue) if job.returnvalue else None,
        "progress": job.progress,
        "timestamp": job.timestamp,
        "processedOn": job.processed_on,
        "finishedOn": job.finished_on,
        "delay": job.delay,
        "priority": job.priority,
        "attemptsMade": job.attempts_made,
        "attemptsStarted": job.attempts_started,
        "attempts": job.attempts_allowed,
        "failedReason": job.failed_reason.value if job.failed_reason else None,
        "stacktrace": job.stacktrace if job.stacktrace_raw is None else [job.stacktrace_raw.value],
        "processedBy": job.processed_by or None,
        "logs": {"count": job.logs.count, "items": job.logs.items, "notRead": job.logs.not_read},
        "parent": parent_json(job, known),
        "children": [child_json(child, known) for child in job.children],
        "childrenCounts": job.children_counts,
        "truncated": {
            name: {
                "size": value.size,
                "read": not value.unread,
                "raw_url": links.raw_field_url(queue, job.id, name),
            }
            for name, value in job.fields.items()
            if value.truncated
        },
        "childrenNotListed": job.children_not_listed,
        "extra": {name: value.value for name, value in job.extra_fields.items()},
        "hiddenFields": job.hidden_fields,
        "actions": actions,
        "api_url": links.job_api_url(queue, job.id),
        "html_url": links.job_url(queue, job.id),
    }


def parent_json(job: JobDetail, known: list[QueueRef]) -> dict[str, Any] | None:
    """The flow parent (its key, as BullMQ follows it), with its id and links when it can be linked."""
    if job.parent is None:
        return None
    result: dict[str, Any] = {"key": job.parent.job_key}
    resolved = resolve_job_key(known, job.parent.job_key) if job.parent.addressable else None
    if resolved is not None:
        queue, job_id = resolved
        result.update(
            id=job_id,
            queueKey=queue.key,
            api_url=links.job_api_url(queue, job_id),
            html_url=links.job_url(queue, job_id),
        )
    return result


def child_json(child: ChildRef, known: list[QueueRef]) -> dict[str, Any]:
    """A flow child with links when its queue is known and its key can be linked."""
    result: dict[str, Any] = {"key": child.job_key, "processed": child.processed, "failed": child.failed}
    resolved = resolve_job_key(known, child.job_key) if child.addressable else None
    if resolved is not None:
        queue, job_id = resolved
        result.update(
            id=job_id,
            queueKey=queue.key,
            api_url=links.job_api_url(queue, job_id),
            html_url=links.job_url(queue, job_id),
        )
    return result
