"""The fix of one health reason, rendered for the user who asks (partials/health_fix.html).

The health panel is pushed over the socket once for every viewer, so it cannot carry one user's
buttons: a fix that appears in a push loads them from here (`?code=<reason code>&value=<its value>`).
The buttons offered follow the queue's counts read now and this user's permissions, as on the page;
the actions check everything again when they are taken.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboard import available, registry
from dashboard.views.base import BadRequest, access_of, dashboard_view, partial_response
from queues.counts import fetch_counts
from queues.health import Reason, ReasonCode
from queues.messages import Message, gettext_lazy

# A reason's value is a number or a queue key; longer is not one.
MAX_VALUE_LENGTH = 2000


def _reason(request: HttpRequest) -> Reason:
    try:
        code = ReasonCode(request.GET.get("code", ""))
    except ValueError:
        codes = ", ".join(code.value for code in ReasonCode)
        raise BadRequest(gettext_lazy("code must be one of %(codes)s.", codes=codes)) from None
    raw = request.GET.get("value")
    value: int | str | None = None
    if raw is not None:
        if len(raw) > MAX_VALUE_LENGTH:
            raise BadRequest(gettext_lazy("value is too long."))
        value = int(raw) if raw.isdecimal() and len(raw) <= 18 else raw
    # The sentence is not shown with a fix: the panel around it says it.
    return Reason(code, Message(code.value), None, value)


@dashboard_view(actions=True)
async def health_fix(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The buttons and links of one reason's fix, for this user."""
    reason = _reason(request)
    queue = await registry.find_queue(connection, queue_key)
    (counts,) = await fetch_counts(registry.client(connection), [queue])
    actions = available.queue_actions(access_of(request).allowed, counts)
    context = {"queue": queue, "reason": reason, "actions": actions, "counts": counts, "fix_inner": True}
    return partial_response(request, "bullmq_dashboard/partials/health_fix.html", context)
