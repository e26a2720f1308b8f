"""Job schedulers of a queue: a page of the `repeat` zset, and the remove action's buttons."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard import available, links, registry, serializers
from dashboard.views.base import (
    access_of,
    dashboard_view,
    page_response,
    parse_per_page,
    parse_positive,
    partial_response,
    wants_partial,
)
from dashboard.views.pages import page_numbers
from queues.schedulers import SchedulerPage, fetch_schedulers

REMOVE = "remove_scheduler"


async def _page(request: HttpRequest, connection: str, queue_key: str) -> tuple[SchedulerPage, str | None]:
    queue = await registry.find_queue(connection, queue_key)
    page = parse_positive(request, "page", 1)
    per_page = parse_per_page(request)
    found = await fetch_schedulers(registry.client(connection), queue, page, per_page)
    allowed = available.supported(access_of(request).allowed, queue)
    remove_url = links.queue_action_url(queue, REMOVE) if REMOVE in allowed else None
    return found, remove_url


@dashboard_view(actions=True)
async def queue_schedulers(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """One page of the queue's job schedulers, soonest next run first."""
    found, remove_url = await _page(request, connection, queue_key)
    rows = [
        (scheduler, json.dumps({"scheduler": scheduler.id}) if remove_url and scheduler.removable else "")
        for scheduler in found.schedulers
    ]
    context = {
        "queue": found.queue,
        "found": found,
        "rows": rows,
        "remove_url": remove_url,
        "page_links": page_numbers(found.page, found.pages),
    }
    if wants_partial(request):
        return partial_response(request, "bullmq_dashboard/partials/schedulers_body.html", context)
    return page_response(request, "bullmq_dashboard/queue_schedulers.html", context)


@dashboard_view(api=True, actions=True)
async def api_queue_schedulers(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The queue's job schedulers as JSON, `?page=&per_page=`; each carries `remove_url` when this user
    may remove it (POST `scheduler=<id>` there)."""
    found, remove_url = await _page(request, connection, queue_key)
    return JsonResponse(serializers.schedulers_json(found, remove_url))
