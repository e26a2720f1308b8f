"""The whole flow of a job (`?id=`): from its root down through every job's children, as a page and
as JSON."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard import registry, serializers
from dashboard.flow_tree import ShownTree, shown_tree
from dashboard.views.base import NotFound, access_of, dashboard_view, job_id_param, page_response
from queues.flow_tree import fetch_flow_tree
from queues.messages import gettext_lazy
from queues.models import QueueRef


async def load_flow(request: HttpRequest, connection: str, queue_key: str) -> tuple[ShownTree, QueueRef, str]:
    """The flow of the job a URL names, as this user may see it (404 when the job is gone or no job)."""
    job_id = job_id_param(request)
    queue = await registry.find_queue(connection, queue_key)
    tree = await fetch_flow_tree(registry.client(connection), queue, job_id)
    if tree is None:
        message = gettext_lazy(
            "No job %(job)r in queue %(queue)s. It may have been removed.", job=job_id, queue=queue.key
        )
        raise NotFound(message)
    known = await registry.directory(connection).get()
    return await shown_tree(tree, known, queue, access_of(request).user), queue, job_id


@dashboard_view()
async def flow_page(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The flow as nested lists, the job it was opened from highlighted."""
    shown, queue, job_id = await load_flow(request, connection, queue_key)
    context = {"queue": queue, "job_id": job_id, "shown": shown, "tree": shown.tree, "current": shown.current}
    return page_response(request, "bullmq_dashboard/flow.html", context)


@dashboard_view(api=True)
async def flow_api(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The flow as JSON: each node with its key, id, queue, name, state, child counts and children."""
    shown, _, _ = await load_flow(request, connection, queue_key)
    return JsonResponse(serializers.flow_json(shown))
