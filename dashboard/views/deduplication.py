"""Look up a deduplication id of a queue: which job holds it (Node BullMQ's getDeduplicationJobId), as a
small page (an htmx partial in the health panel) and as JSON, with the release action's URL for users
who may take it. The id is data: it travels in the query string (`?id=`, read back exactly) and is
checked (queues.deduplication) before any key is built from it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard import available, links, registry
from dashboard.translation import translated
from dashboard.views.base import (
    BadRequest,
    access_of,
    dashboard_view,
    page_response,
    partial_response,
    wants_partial,
)
from queues.deduplication import DedupHolder, DedupStatus, dedup_id_problem, find_dedup_holder
from queues.messages import gettext_lazy
from queues.models import QueueRef

RELEASE = "release_deduplication"


def dedup_id_param(request: HttpRequest, *, required: bool) -> str:
    """The `id` query parameter exactly as sent (strict UTF-8); "" when absent and not required."""
    try:
        pairs = parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(gettext_lazy("The deduplication id is not valid UTF-8.")) from None
    values = [value for name, value in pairs if name == "id"]
    if len(values) > 1:
        raise BadRequest(gettext_lazy("Give one deduplication id, as ?id=<id> (percent-encoded)."))
    dedup_id: str = values[0] if values else ""
    if not dedup_id and not required:
        return ""
    problem = dedup_id_problem(dedup_id)
    if problem is not None:
        raise BadRequest(problem)
    return dedup_id


async def _look_up(
    request: HttpRequest, connection: str, queue_key: str, *, required: bool
) -> dict[str, Any]:
    queue = await registry.find_queue(connection, queue_key)
    dedup_id = dedup_id_param(request, required=required)
    holder = await find_dedup_holder(registry.client(connection), queue, dedup_id) if dedup_id else None
    may_release = (
        RELEASE in available.supported(access_of(request).allowed, queue)
        and holder is not None
        and holder.releasable
    )
    return {
        "queue": queue,
        "dedup_id": dedup_id,
        "holder": holder,
        "holder_url": _holder_url(queue, holder),
        "release_url": links.queue_action_url(queue, RELEASE) if may_release else None,
        "lookup_url": links.dedup_lookup_url(queue),
    }


def _holder_url(queue: QueueRef, holder: DedupHolder | None) -> str | None:
    """The job page of the holder, when it is a job of the queue whose id is exact text."""
    if (
        holder is None
        or holder.status is not DedupStatus.HELD
        or not holder.linkable
        or holder.job_id is None
    ):
        return None
    return links.job_url(queue, holder.job_id)


@dashboard_view(actions=True)
async def dedup_lookup(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The lookup form, and with `?id=` which job holds that deduplication id (and Release, when allowed)."""
    context = await _look_up(request, connection, queue_key, required=False)
    if wants_partial(request):
        return partial_response(request, "bullmq_dashboard/partials/dedup_lookup.html", context)
    return page_response(request, "bullmq_dashboard/deduplication.html", context)


@dashboard_view(api=True, actions=True)
async def dedup_lookup_api(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """Which job holds the deduplication id `?id=`: `{id, status, job, ttl_ms, message, release_url}`."""
    context = await _look_up(request, connection, queue_key, required=True)
    holder: DedupHolder = context["holder"]
    queue: QueueRef = context["queue"]
    job: dict[str, Any] | None = None
    if holder.job_id is not None:
        job = {"id": holder.job_id, "state": holder.state or None, "exact": holder.linkable}
        if context["holder_url"]:
            job["html_url"] = context["holder_url"]
            job["api_url"] = links.job_api_url(queue, holder.job_id)
    return JsonResponse(
        {
            "id": holder.dedup_id,
            "status": holder.status.value,
            "job": job,
            "ttl_ms": holder.ttl_ms if holder.ttl_ms >= 0 else None,
            "message": translated(holder.explanation()),
            "release_url": context["release_url"],
        }
    )
