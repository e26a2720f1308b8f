"""URLs of queues and jobs; job ids are arbitrary strings and are always percent-encoded here."""

from __future__ import annotations

from django.urls import reverse

from queues.models import QueueRef


def queue_url(queue: QueueRef) -> str:
    """The queue page."""
    return reverse("dashboard:queue", args=[queue.connection, queue.key])


def job_url(queue: QueueRef, job_id: str) -> str:
    """The job page."""
    return reverse("dashboard:job", args=[queue.connection, queue.key, job_id])


def queue_api_url(queue: QueueRef) -> str:
    """The queue's JSON."""
    return reverse("dashboard:api-queue", args=[queue.connection, queue.key])


def jobs_api_url(queue: QueueRef) -> str:
    """The queue's job list JSON."""
    return reverse("dashboard:api-jobs", args=[queue.connection, queue.key])


def job_api_url(queue: QueueRef, job_id: str) -> str:
    """The job's JSON."""
    return reverse("dashboard:api-job", args=[queue.connection, queue.key, job_id])


def raw_field_url(queue: QueueRef, job_id: str, field: str) -> str:
    """The full stored value of one job field, as text."""
    return reverse("dashboard:job-raw", args=[queue.connection, queue.key, field, job_id])


def logs_url(queue: QueueRef, job_id: str) -> str:
    """The job's log pager partial."""
    return reverse("dashboard:job-logs", args=[queue.connection, queue.key, job_id])


def job_action_url(queue: QueueRef, action: str, job_id: str) -> str:
    """POST here to take a job action."""
    return reverse("dashboard:job-action", args=[queue.connection, queue.key, action, job_id])


def queue_action_url(queue: QueueRef, action: str) -> str:
    """POST here to take a queue action."""
    return reverse("dashboard:queue-action", args=[queue.connection, queue.key, action])


def bulk_url(queue: QueueRef) -> str:
    """POST here for bulk actions on selected jobs."""
    return reverse("dashboard:bulk", args=[queue.connection, queue.key])


def operation_url(operation_id: str) -> str:
    """The progress of a long action."""
    return reverse("dashboard:operation", args=[operation_id])
