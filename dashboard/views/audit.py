"""The audit page: every action and refusal, newest first, filterable by queue, action and result."""

from __future__ import annotations

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext

from dashboard import registry
from dashboard.models import AuditEntry
from dashboard.permissions import VIEW_AUDIT, ahas_permission, avisible, permission_depends_on_queue
from dashboard.views.base import (
    access_of,
    dashboard_view,
    error_response,
    page_response,
    parse_positive,
    wants_partial,
)

PER_PAGE = 50


@dashboard_view()
async def audit_log(request: HttpRequest) -> HttpResponse:
    """A page of the audit log (for users with the view_audit permission)."""
    if not await ahas_permission(access_of(request).user, VIEW_AUDIT, None):
        return error_response(request, 403, gettext("You may not view the audit log."), api=False)
    entries = AuditEntry.objects.all()
    if permission_depends_on_queue():
        # Only entries of queues this user may view (and those of no queue): a per-queue restriction
        # holds on this page too.
        user = access_of(request).user
        visible = await avisible(user, await registry.all_queues())
        entries = entries.filter(Q(queue="") | Q(queue__in=sorted({queue.key for queue in visible})))
    filters = {name: request.GET.get(name, "").strip() for name in ("queue", "action", "result", "user")}
    if filters["queue"]:
        entries = entries.filter(queue=filters["queue"])
    if filters["action"]:
        entries = entries.filter(action=filters["action"])
    if filters["result"]:
        entries = entries.filter(result=filters["result"])
    if filters["user"]:
        entries = entries.filter(username=filters["user"])
    page = parse_positive(request, "page", 1)
    total = await entries.acount()
    start = (page - 1) * PER_PAGE
    rows = [entry async for entry in entries[start : start + PER_PAGE]]
    context = {
        "entries": rows,
        "filters": filters,
        "page": page,
        "pages": max(1, -(-total // PER_PAGE)),
        "total": total,
        "results": AuditEntry.Result.choices,
    }
    if wants_partial(request):
        return TemplateResponse(request, "bullmq_dashboard/partials/audit_table.html", context)
    return page_response(request, "bullmq_dashboard/audit.html", context)
