"""A queue's metrics: completed and failed jobs over the last hour, day or week, how long the job next in
line has waited, and percentiles of processing and wait time (page, htmx partial and JSON)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy as _

from dashboard import links, registry, serializers
from dashboard.throughput import chart_series, sampling_unavailable, throughput_settings
from dashboard.views.base import BadRequest, dashboard_view, page_response, partial_response, wants_partial
from queues.activity import Activity, fetch_activity
from queues.counts import now_ms
from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.throughput import WINDOWS, Window

# The window switch's words, in WINDOWS' order: the span, and what one point of its chart counts.
WINDOW_WORDS = {
    "hour": (_("Last hour"), _("jobs per minute")),
    "day": (_("Last 24 hours"), _("jobs per 5 minutes")),
    "week": (_("Last 7 days"), _("jobs per hour")),
}


def parse_window(request: HttpRequest) -> Window:
    """The `window` parameter: hour (the default), day or week."""
    name = request.GET.get("window", "hour")
    if name not in WINDOWS:
        raise BadRequest(gettext_lazy("Unknown window %(window)r. Use hour, day or week.", window=name[:40]))
    return WINDOWS[name]


async def _read(request: HttpRequest, connection: str, queue_key: str) -> tuple[QueueRef, Activity, str]:
    queue = await registry.find_queue(connection, queue_key)
    window = parse_window(request)
    settings = throughput_settings()
    activity = await fetch_activity(
        registry.client(connection), queue, window, now_ms(), settings.key_prefix, settings.recent_jobs
    )
    return queue, activity, sampling_unavailable(queue)


@dashboard_view()
async def queue_metrics(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The queue's metrics page; `?window=hour|day|week` (htmx swaps only its body)."""
    queue, activity, unavailable = await _read(request, connection, queue_key)
    window = activity.throughput.window
    span, per_point = WINDOW_WORDS[window.name]
    context: dict[str, Any] = {
        "queue": queue,
        "activity": activity,
        "throughput": activity.throughput,
        "latency": activity.latency,
        "window": window,
        "span": span,
        "per_point": per_point,
        "windows": [
            (name, WINDOW_WORDS[name][0], links.queue_metrics_url(queue, name), name == window.name)
            for name in WINDOWS
        ],
        # A data attribute rather than a <script> block: htmx inserts no script (allowScriptTags off).
        "series": json.dumps(chart_series(activity.throughput), separators=(",", ":")),
        "sampling_unavailable": unavailable,
    }
    if wants_partial(request):
        return partial_response(request, "bullmq_dashboard/partials/queue_metrics_body.html", context)
    return page_response(request, "bullmq_dashboard/queue_metrics.html", context)


@dashboard_view(api=True)
async def api_queue_metrics(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The queue's metrics as JSON, `?window=hour|day|week` (the same as its metrics page)."""
    _queue, activity, unavailable = await _read(request, connection, queue_key)
    return JsonResponse(serializers.queue_metrics_json(activity, unavailable))
