"""The estimate a Clean confirm dialog shows before anything is removed (GET, JSON).

Who may ask: anyone who may view the queue. It reads nothing a viewer cannot already see (the counts
per state on the tabs, and each job's finish time in the lists), costs Redis one script call of
constant cost (ZCARD and ZCOUNT, or LLEN) whatever the queue holds, and writes nothing; asking for
the clean permission as well would hide no information. The clean itself stays a POST that needs it.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard import registry
from dashboard.actions import integer
from dashboard.translation import message_of, translated
from dashboard.views.base import BadRequest, dashboard_view
from queues.actions import CleanRequest, Invalid
from queues.clean_estimate import estimate_clean


@dashboard_view(api=True)
async def clean_estimate(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """How many jobs `?state=&grace=&limit=` (as the clean action takes them) a clean would remove."""
    params = {name: request.GET.get(name) for name in ("state", "grace", "limit")}
    try:
        clean = CleanRequest(
            str(params["state"] or ""), integer(params, "grace", 0), integer(params, "limit", 0)
        )
    except Invalid as exc:
        raise BadRequest(message_of(exc)) from None
    queue = await registry.find_queue(connection, queue_key)
    estimate = await estimate_clean(
        registry.client(connection), queue, clean.state, clean.grace_ms, clean.limit
    )
    return JsonResponse(
        {
            "queue": queue.name,
            "state": estimate.state,
            "grace": estimate.grace_ms,
            "limit": estimate.limit,
            "count": estimate.count,
            "exact": estimate.exact,
            "total": estimate.total,
            "newer": estimate.newer,
            "estimate": True,
            "message": translated(estimate.message()),
        }
    )
