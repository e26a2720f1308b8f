"""URLs of queues and jobs; job ids are arbitrary strings and are always percent-encoded here."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from urllib.parse import quote

from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.http import RFC3986_SUBDELIMS

from queues.models import QueueRef

# A list page links every row several times; reverse() per link was a third of its render time, so the
# part before the job id is reversed once per queue and the id is quoted exactly as reverse() quotes.
_PLACEHOLDER = "__job_id__"
_SAFE = RFC3986_SUBDELIMS + "/~:@"


@lru_cache(maxsize=4096)
def _cached_reverse(script_prefix: str, urlconf: str | None, view: str, args: tuple[str, ...]) -> str:
    return reverse(view, args=list(args))


def _reverse(view: str, *args: str) -> str:
    return _cached_reverse(get_script_prefix(), get_urlconf(), view, args)


def _head(view: str, *args: str) -> str:
    return _reverse(view, *args, _PLACEHOLDER)[: -len(_PLACEHOLDER)]


def _with_job_id(view: str, job_id: str, *args: str) -> str:
    return _head(view, *args) + quote(job_id, safe=_SAFE)


def queue_url(queue: QueueRef) -> str:
    """The queue page."""
    return _reverse("dashboard:queue", queue.connection, queue.key)


def job_url(queue: QueueRef, job_id: str) -> str:
    """The job page."""
    return _with_job_id("dashboard:job", job_id, queue.connection, queue.key)


def queue_api_url(queue: QueueRef) -> str:
    """The queue's JSON."""
    return _reverse("dashboard:api-queue", queue.connection, queue.key)


def jobs_api_url(queue: QueueRef) -> str:
    """The queue's job list JSON."""
    return _reverse("dashboard:api-jobs", queue.connection, queue.key)


def job_api_url(queue: QueueRef, job_id: str) -> str:
    """The job's JSON."""
    return _with_job_id("dashboard:api-job", job_id, queue.connection, queue.key)


def job_api_urls(queue: QueueRef) -> Callable[[str], str]:
    """job_api_url for the jobs of one queue, reversed once (a list page links every row)."""
    head = _head("dashboard:api-job", queue.connection, queue.key)
    return lambda job_id: head + quote(job_id, safe=_SAFE)


def raw_field_url(queue: QueueRef, job_id: str, field: str) -> str:
    """The full stored value of one job field, as text."""
    return _with_job_id("dashboard:job-raw", job_id, queue.connection, queue.key, field)


def logs_url(queue: QueueRef, job_id: str) -> str:
    """The job's log pager partial."""
    return _with_job_id("dashboard:job-logs", job_id, queue.connection, queue.key)


def job_action_url(queue: QueueRef, action: str, job_id: str) -> str:
    """POST here to take a job action."""
    return _with_job_id("dashboard:job-action", job_id, queue.connection, queue.key, action)


def queue_action_url(queue: QueueRef, action: str) -> str:
    """POST here to take a queue action."""
    return _reverse("dashboard:queue-action", queue.connection, queue.key, action)


def bulk_url(queue: QueueRef) -> str:
    """POST here for bulk actions on selected jobs."""
    return _reverse("dashboard:bulk", queue.connection, queue.key)


def operation_url(operation_id: str) -> str:
    """The progress of a long action."""
    return reverse("dashboard:operation", args=[operation_id])
