"""The firing alerts' banner of the overview and of a queue page, fetched again when the live socket
says that the set of firing alerts changed (the pushed nudge is the same for everyone; what each page
fetches is filtered by its user's permission)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboard import registry
from dashboard.alerts import alert_context
from dashboard.permissions import avisible
from dashboard.views.base import access_of, dashboard_view, partial_response

TEMPLATE = "bullmq_dashboard/partials/alert_banners.html"


@dashboard_view()
async def overview_alerts(request: HttpRequest) -> HttpResponse:
    """The firing alerts of every queue this user may view."""
    queues = await avisible(access_of(request).user, await registry.all_queues())
    return partial_response(request, TEMPLATE, await alert_context(queues))


@dashboard_view()
async def queue_alerts(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The firing alerts of one queue (its view permission is checked by the decorator)."""
    queue = await registry.find_queue(connection, queue_key)
    return partial_response(request, TEMPLATE, await alert_context([queue], queue))
