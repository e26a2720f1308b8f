"""Error groups: failed jobs grouped by a fingerprint of their failure, per queue and across queues, in
HTML and JSON, and the group actions (retry or remove every job of a group).

A group action names the group by its fingerprint only: the server scans the failed set again and acts
on the ids it finds in that group itself (never on a list of ids a client sends), each id through the
job action's own permission, state check, audit and skip-when-moved-on of the bulk path.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from dashboard import links, registry, serializers
from dashboard.actions import ACTIONS, Params, Prepared, Target, text_param
from dashboard.answers import Refusal
from dashboard.conf import get_config
from dashboard.error_groups import across_queues, group_settings, queue_groups, resolve_group
from dashboard.models import AuditEntry
from dashboard.overview import all_counts
from dashboard.permissions import avisible
from dashboard.registry import UnknownConnection, UnknownQueue
from dashboard.views.actions import Plan, _permit, _unknown, handle, no_queue
from dashboard.views.base import (
    access_of,
    dashboard_view,
    page_response,
    partial_response,
    wants_partial,
)
from queues.actions import Outcome, Progress, QueueWriter
from queues.messages import gettext_lazy
from queues.models import QueueRef

# What a group action does to each job of the group: the job action of the same name.
GROUP_ACTIONS = ("retry", "remove")
FINGERPRINT = re.compile(r"[0-9a-f]{16}")


def group_actions(allowed: frozenset[str], queue: QueueRef) -> dict[str, str]:
    """The group actions this user may take on the queue's groups, with their URLs."""
    return {name: links.error_group_action_url(queue, name) for name in GROUP_ACTIONS if name in allowed}


@dashboard_view(actions=True)
async def queue_errors(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """One queue's failed jobs grouped by fingerprint, most jobs first."""
    queue = await registry.find_queue(connection, queue_key)
    result = await queue_groups(queue)
    context = {
        "queue": queue,
        "result": result,
        "group_actions": group_actions(access_of(request).allowed, queue),
        "open": request.GET.get("group", ""),
    }
    if wants_partial(request):
        return partial_response(request, "bullmq_dashboard/partials/error_groups.html", context)
    return page_response(request, "bullmq_dashboard/error_groups.html", context)


@dashboard_view()
async def all_errors(request: HttpRequest) -> HttpResponse:
    """The error groups of the queues with most failed jobs, across connections."""
    queues = await avisible(access_of(request).user, await registry.all_queues())
    rows = await all_counts(queues[: get_config().overview_max_queues])
    settings = group_settings()
    summary = await across_queues(rows, settings.max_queues, settings.scan_limit)
    return page_response(request, "bullmq_dashboard/errors_all.html", {"summary": summary})


@dashboard_view(api=True, actions=True)
async def api_queue_errors(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """One queue's error groups as JSON."""
    queue = await registry.find_queue(connection, queue_key)
    result = await queue_groups(queue)
    actions = group_actions(access_of(request).allowed, queue)
    return JsonResponse(serializers.error_groups_json(result, actions))


@csrf_exempt  # checked by the actions layer, so that a CSRF refusal is audited like every other refusal
async def error_group_action(
    request: HttpRequest, connection: str, queue_key: str, action: str
) -> HttpResponse:
    """retry or remove every failed job of the group `fingerprint` (POST), as the server finds it."""
    if action not in GROUP_ACTIONS:
        return _unknown("queue", f"error_group_{action}")

    async def planner(request: HttpRequest, url_queue: QueueRef, params: Params, form: bool) -> Plan:
        return await _plan_group(request, url_queue, action, params)

    return await handle(request, connection, queue_key, f"error_group_{action}", planner)


async def _plan_group(request: HttpRequest, url_queue: QueueRef, action: str, params: Params) -> Plan:
    """The jobs of the group, found by a fresh scan; each gets the job action, only while still failed."""
    fingerprint = text_param(params, "fingerprint").strip()
    if not FINGERPRINT.fullmatch(fingerprint):
        message = gettext_lazy("fingerprint must be the 16 hex digits of an error group.")
        raise Refusal(400, message, AuditEntry.Result.INVALID)
    spec = ACTIONS[action]
    await _permit(request, spec, url_queue)
    try:
        queue = await registry.find_queue(url_queue.connection, url_queue.key)
    except (UnknownQueue, UnknownConnection):
        raise Refusal(404, no_queue(url_queue.key, url_queue.connection)) from None
    result = await resolve_group(queue, fingerprint)
    if not result.job_ids:
        message = gettext_lazy(
            "No failed jobs of %(queue)s are in this error group (any more).", queue=queue.key
        )
        raise Refusal(404, message)
    prepared = [_only_failed(spec.prepare(Target(queue, {}, job_id)), job_id) for job_id in result.job_ids]
    audit_params = {"fingerprint": fingerprint, "scanned": result.scanned, "bound_hit": result.bound_hit}
    return Plan(
        spec,
        f"error_group_{action}",
        queue,
        prepared,
        result.job_ids,
        per_job=True,
        audit_params=audit_params,
    )


def _only_failed(prepared: Prepared, job_id: str) -> Prepared:
    """The job action, run only while the job is still failed (else it is skipped: a retried job that
    completed meanwhile is not run again)."""

    async def work(writer: QueueWriter, progress: Progress) -> Outcome:
        await writer.require_state(job_id, ("failed",))
        return await prepared.work(writer, progress)

    return Prepared(work, prepared.reach, prepared.audit_params)
