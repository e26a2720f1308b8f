"""URLs of queues and jobs. A job id is data: it goes into the query string (`?id=`), percent-encoded
with nothing left as is, never into a path (see dashboard.urls)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from urllib.parse import quote, urlencode

from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.translation import get_language

from queues.models import QueueRef


@lru_cache(maxsize=4096)
def _cached_reverse(
    script_prefix: str, urlconf: str | None, language: str | None, view: str, args: tuple[str, ...]
) -> str:
    return reverse(view, args=list(args))


def _reverse(view: str, *args: str) -> str:
    # A list page links every row several times; reverse() per link was a third of its render time.
    # The language is part of the key: a host mounting the app in i18n_patterns has a prefix per language.
    return _cached_reverse(get_script_prefix(), get_urlconf(), get_language(), view, args)


def id_query(job_id: str) -> str:
    """`?id=<job id>`, every character but unreserved ASCII percent-encoded (so `+`, `&`, `#` too)."""
    return "?id=" + quote(job_id, safe="")


def _job_link(view: str, queue: QueueRef, *args: str) -> Callable[[str], str]:
    head = _reverse(view, queue.connection, queue.key, *args)
    return lambda job_id: head + id_query(job_id)


def queue_url(queue: QueueRef) -> str:
    """The queue page."""
    return _reverse("bullmq_dashboard:queue", queue.connection, queue.key)


def find_job_url(queue: QueueRef) -> str:
    """The "open job by id" form's target."""
    return _reverse("bullmq_dashboard:find-job", queue.connection, queue.key)


def job_url(queue: QueueRef, job_id: str) -> str:
    """The job page."""
    return _job_link("bullmq_dashboard:job", queue)(job_id)


def job_urls(queue: QueueRef) -> Callable[[str], str]:
    """job_url for the jobs of one queue, reversed once (a list page links every row)."""
    return _job_link("bullmq_dashboard:job", queue)


def queue_api_url(queue: QueueRef) -> str:
    """The queue's JSON."""
    return _reverse("bullmq_dashboard:api-queue", queue.connection, queue.key)


def jobs_api_url(queue: QueueRef) -> str:
    """The queue's job list JSON."""
    return _reverse("bullmq_dashboard:api-jobs", queue.connection, queue.key)


def job_api_url(queue: QueueRef, job_id: str) -> str:
    """The job's JSON."""
    return _job_link("bullmq_dashboard:api-job", queue)(job_id)


def job_api_urls(queue: QueueRef) -> Callable[[str], str]:
    """job_api_url for the jobs of one queue, reversed once (a list page links every row)."""
    return _job_link("bullmq_dashboard:api-job", queue)


def raw_field_url(queue: QueueRef, job_id: str, field: str) -> str:
    """The full stored value of one job field, as text."""
    return job_url_of("bullmq_dashboard:job-raw", queue, job_id) + "&field=" + quote(field, safe="")


def logs_url(queue: QueueRef, job_id: str) -> str:
    """The job's log pager partial."""
    return job_url_of("bullmq_dashboard:job-logs", queue, job_id)


def job_action_url(queue: QueueRef, action: str, job_id: str) -> str:
    """POST here to take a job action."""
    return _job_link("bullmq_dashboard:job-action", queue, action)(job_id)


def job_url_of(view: str, queue: QueueRef, job_id: str) -> str:
    """The URL of any per-job view of the dashboard."""
    return _job_link(view, queue)(job_id)


def queue_action_url(queue: QueueRef, action: str) -> str:
    """POST here to take a queue action."""
    return _reverse("bullmq_dashboard:queue-action", queue.connection, queue.key, action)


def bulk_url(queue: QueueRef) -> str:
    """POST here for bulk actions on selected jobs."""
    return _reverse("bullmq_dashboard:bulk", queue.connection, queue.key)


def search_url(queue: QueueRef) -> str:
    """The queue's job search page."""
    return _reverse("bullmq_dashboard:search", queue.connection, queue.key)


def search_api_url(queue: QueueRef) -> str:
    """The queue's job search JSON."""
    return _reverse("bullmq_dashboard:api-search", queue.connection, queue.key)


def operation_url(operation_id: str) -> str:
    """The progress of a long action."""
    return reverse("bullmq_dashboard:operation", args=[operation_id])


def bulk_value(job_id: str) -> str:
    """A job id as the value of a bulk checkbox: percent-encoded, so that HTML attribute parsing and
    form encoding (which turn CR into LF, and LF into CR LF) cannot change it on the way back."""
    return quote(job_id, safe="")


def workers_url(queue: QueueRef) -> str:
    """The queue's workers page."""
    return _reverse("bullmq_dashboard:queue-workers", queue.connection, queue.key)


def all_workers_url() -> str:
    """The workers of every queue."""
    return _reverse("bullmq_dashboard:workers")


def workers_api_url(queue: QueueRef) -> str:
    """The queue's workers JSON."""
    return _reverse("bullmq_dashboard:api-workers", queue.connection, queue.key)


def schedulers_url(queue: QueueRef) -> str:
    """The queue's job schedulers page."""
    return _reverse("bullmq_dashboard:queue-schedulers", queue.connection, queue.key)


def schedulers_api_url(queue: QueueRef) -> str:
    """The queue's job schedulers JSON."""
    return _reverse("bullmq_dashboard:api-schedulers", queue.connection, queue.key)


def queue_metrics_url(queue: QueueRef, window: str | None = None) -> str:
    """The queue's metrics page (throughput charts, waiting and processing times), `?window=`."""
    url = _reverse("bullmq_dashboard:queue-metrics", queue.connection, queue.key)
    return f"{url}?window={window}" if window else url


def queue_metrics_api_url(queue: QueueRef) -> str:
    """The queue's metrics JSON."""
    return _reverse("bullmq_dashboard:api-queue-metrics", queue.connection, queue.key)


def health_api_url(queue: QueueRef) -> str:
    """The queue's health verdict JSON."""
    return _reverse("bullmq_dashboard:api-queue-health", queue.connection, queue.key)


def health_fix_url(queue: QueueRef, code: str, value: object = None) -> str:
    """The fix of one health reason, rendered for the user who asks (a reason's code and value)."""
    query = {"code": code, **({"value": str(value)} if value is not None else {})}
    return _reverse("bullmq_dashboard:health-fix", queue.connection, queue.key) + "?" + urlencode(query)


def dedup_lookup_url(queue: QueueRef, dedup_id: str = "") -> str:
    """Which job holds a deduplication id of the queue (the id, data, in the query string)."""
    head = _reverse("bullmq_dashboard:dedup-lookup", queue.connection, queue.key)
    return head + id_query(dedup_id) if dedup_id else head


def dedup_api_url(queue: QueueRef, dedup_id: str) -> str:
    """The same as JSON."""
    return _reverse("bullmq_dashboard:api-dedup-lookup", queue.connection, queue.key) + id_query(dedup_id)


def flow_url(queue: QueueRef, job_id: str) -> str:
    """The whole flow (tree from its root) of the job."""
    return _job_link("bullmq_dashboard:job-flow", queue)(job_id)


def flow_api_url(queue: QueueRef, job_id: str) -> str:
    """The whole flow of the job, as JSON."""
    return _job_link("bullmq_dashboard:api-job-flow", queue)(job_id)


def error_groups_url(queue: QueueRef) -> str:
    """The queue's failed jobs grouped by fingerprint."""
    return _reverse("bullmq_dashboard:queue-errors", queue.connection, queue.key)


def error_group_url(queue: QueueRef, fingerprint: str) -> str:
    """One error group of the queue, opened on its page."""
    return f"{error_groups_url(queue)}?group={fingerprint}#group-{fingerprint}"


def error_groups_api_url(queue: QueueRef) -> str:
    """The queue's error groups JSON."""
    return _reverse("bullmq_dashboard:api-errors", queue.connection, queue.key)


def error_group_action_url(queue: QueueRef, action: str) -> str:
    """POST here (with `fingerprint`) to retry or remove every job of an error group."""
    return _reverse("bullmq_dashboard:error-group-action", queue.connection, queue.key, action)


def all_error_groups_url() -> str:
    """The error groups of the queues with most failures."""
    return _reverse("bullmq_dashboard:errors")


def clean_estimate_url(queue: QueueRef) -> str:
    """GET (with `state`, `grace`, `limit`) how many jobs a clean would remove (the Clean dialog)."""
    return _reverse("bullmq_dashboard:api-clean-estimate", queue.connection, queue.key)


def lookup_url(job_id: str | None = None) -> str:
    """The top bar's "open a job by id" across every queue (with the id when given)."""
    head = _reverse("bullmq_dashboard:lookup")
    return head if job_id is None else head + id_query(job_id)


def lookup_api_url(job_id: str | None = None) -> str:
    """The same lookup as JSON."""
    head = _reverse("bullmq_dashboard:api-lookup")
    return head if job_id is None else head + id_query(job_id)


def queue_list_url(queue: QueueRef, state: str, page: int = 1, per_page: int | None = None) -> str:
    """The queue page on one state's tab (a page of it, a page size)."""
    query = {"state": state, **({"per_page": str(per_page)} if per_page else {}), "page": str(page)}
    return queue_url(queue) + "?" + urlencode(query)


def overview_url(
    query: str = "",
    sort: str = "",
    failing: bool = False,
    attention: bool = False,
    page: int = 1,
    connection: str = "",
) -> str:
    """The overview, filtered by `q`, sorted by `sort` (a column, `-` first for descending), with only
    the queues that failed jobs in the last hour when `failing`, only those stuck or degraded when
    `attention`, only those of one connection when `connection`, at its page `page`."""
    params = {
        "connection": connection,
        "q": query,
        "sort": sort,
        "failing": "1" if failing else "",
        "attention": "1" if attention else "",
        "page": str(page) if page > 1 else "",
    }
    encoded = urlencode({name: value for name, value in params.items() if value})
    head = _reverse("bullmq_dashboard:overview")
    return f"{head}?{encoded}" if encoded else head
