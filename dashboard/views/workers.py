"""Workers: per queue and for every queue a user may view, from one CLIENT LIST per connection."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, JsonResponse
from redis.exceptions import RedisError

from dashboard import registry, serializers
from dashboard.conf import get_config
from dashboard.permissions import avisible
from dashboard.views.base import access_of, dashboard_view, page_response, partial_response, wants_partial
from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.workers import QueueWorkers, WorkerReport, fetch_workers

logger = logging.getLogger("bullmq_dashboard")


@dataclass(frozen=True)
class ConnectionWorkers:
    """The workers page's section of one connection."""

    alias: str
    report: WorkerReport
    # Queues of this connection that have workers, and how many of those shown have none.
    busy: tuple[QueueWorkers, ...]
    idle_count: int


@dashboard_view()
async def queue_workers(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The workers connected to one queue and the active jobs they hold."""
    queue = await registry.find_queue(connection, queue_key)
    report = await fetch_workers(registry.client(connection), [queue])
    context = {"queue": queue, "report": report, "found": report.of(queue)}
    if wants_partial(request):
        return partial_response(request, "bullmq_dashboard/partials/queue_workers_body.html", context)
    return page_response(request, "bullmq_dashboard/queue_workers.html", context)


@dashboard_view(api=True)
async def api_queue_workers(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The queue's workers as JSON (the same as its workers page)."""
    queue = await registry.find_queue(connection, queue_key)
    report = await fetch_workers(registry.client(connection), [queue])
    return JsonResponse(serializers.queue_workers_json(report, report.of(queue)))


async def _connection_workers(alias: str, queues: list[QueueRef]) -> ConnectionWorkers:
    try:
        report = await fetch_workers(registry.client(alias), queues)
    except (RedisError, OSError) as exc:  # one down connection breaks only its own section
        logger.warning("workers of %s not read: %s", alias, exc)
        report = WorkerReport(problem=gettext_lazy("Redis could not be read: %(error)s", error=str(exc)))
    busy = tuple(found for found in report.queues if found.workers)
    return ConnectionWorkers(alias, report, busy, len(report.queues) - len(busy))


@dashboard_view()
async def all_workers(request: HttpRequest) -> HttpResponse:
    """The workers of every queue this user may view (at most OVERVIEW_MAX_QUEUES queues), one CLIENT
    LIST per connection."""
    queues = await avisible(access_of(request).user, await registry.all_queues())
    limit = get_config().overview_max_queues
    shown = queues[:limit]
    by_alias: dict[str, list[QueueRef]] = {}
    for queue in shown:
        by_alias.setdefault(queue.connection, []).append(queue)
    sections = await asyncio.gather(*(_connection_workers(alias, each) for alias, each in by_alias.items()))
    context = {
        "sections": sections,
        "queue_count": len(queues),
        "shown_count": len(shown),
        "worker_count": sum(section.report.worker_count for section in sections),
    }
    if wants_partial(request):
        return partial_response(request, "bullmq_dashboard/partials/workers_body.html", context)
    return page_response(request, "bullmq_dashboard/workers.html", context)
