"""The HTML pages: overview, queue, job, the log pager and raw field values."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.formats import number_format
from django.utils.translation import gettext

from dashboard import available, links, redis_access, registry
from dashboard.alerts import alert_context
from dashboard.census import get_census
from dashboard.conf import get_config
from dashboard.error_groups import overview_groups
from dashboard.flow_tree import in_flow
from dashboard.health import queue_verdicts
from dashboard.job_reading import job_reading_aids
from dashboard.overview import all_counts, group, summarize
from dashboard.overview_connections import aviewable, sections, several, switcher
from dashboard.overview_order import matching, parse_order, unknown_connection
from dashboard.overview_page import OverviewPaging, pick_page
from dashboard.permissions import avisible, read_only
from dashboard.throughput import SPARKLINES
from dashboard.views.base import (
    BadRequest,
    NotFound,
    access_of,
    dashboard_view,
    job_id_param,
    load_job,
    page_response,
    parse_per_page,
    parse_positive,
    parse_state,
    partial_response,
    swaps_only,
    wants_partial,
)
from queues import kinds
from queues.actions import CLEANABLE_STATES
from queues.jobs import (
    fetch_job_page,
    fetch_job_state,
    fetch_logs,
    fetch_queue_opening,
    fetch_queue_page,
    fetch_raw_field,
    resolve_job_key,
)
from queues.messages import gettext_lazy
from queues.models import ChildRef, JobPage, ParentRef, QueueRef
from queues.states import STATES


@dashboard_view()
async def overview(request: HttpRequest) -> HttpResponse:
    """One page of the queues this user may view (`?page=`, OVERVIEW_PAGE_SIZE rows), with their counts
    per state, health and failure recency: those matching `?q=`, needing attention first (or sorted
    by `?sort=`), only those that failed jobs in the last hour with `?failing=1`, only those stuck or
    degraded with `?attention=1`. Only the page's rows are read and followed live; the order, filters
    and totals over every queue come from the census (dashboard/census.py)."""
    query = request.GET.get("q", "").strip()
    order = parse_order(request, query)
    listing = await registry.listing()
    # The filter text first: a custom permission callable is then asked only about matching queues.
    matched = await avisible(access_of(request).user, matching(listing.queues, query))
    # The connections this user may know of (with a per-queue permission, only those holding a queue
    # the user may view): others are named nowhere on the page, down or not.
    viewed = await aviewable(access_of(request).user, listing, matched) if several() else []
    if several() and order.connection and order.connection not in viewed:
        raise BadRequest(unknown_connection(order.connection))  # as for an alias that is not configured
    queues = order.select(matched)
    page = await pick_page(queues, order, parse_positive(request, "page", 1))
    read_at = time.monotonic()
    rows = await all_counts(page.shown, page.just_read)
    census = get_census()
    census.remember(rows, read_at)
    # The rows' health (dashboard.health: read at most once per CACHE_SECONDS a queue, judged again
    # with these counts in between).
    verdicts = await queue_verdicts([row.queue for row in rows], {row.queue: row for row in rows})
    # The rows' last hours, read at most once a minute per queue (one pipeline per connection).
    sparks = await SPARKLINES.get([row.queue for row in rows])
    # Group totals and the most failing queues over every queue listed, kept until a census row changes.
    summary = census.derived(("summary", page.fingerprint), lambda: summarize(census.rows(queues).values()))
    groups = group(rows, keep_order=True, sparks=sparks, verdicts=verdicts, group_totals=summary.groups)
    shown_sections = sections(order, listing, groups, viewed) if several() else []
    context = {
        "groups": groups,
        # With several connections: the switcher, and the page's groups per connection (a connection
        # that could not be listed shows its error in its own section).
        "connection_tabs": switcher(order, listing, matched, viewed),
        "sections": shown_sections,
        # Nothing listed because a connection shown is down: no "no queues found" then.
        "down_shown": any(section.problem for section in shown_sections),
        # A connection this user may not know of could not be listed: their queues there may be missing.
        "down_unnamed": several() and any(alias not in viewed for alias in listing.failed),
        "queue_count": len(queues),
        "shown_count": len(rows),
        "paging": OverviewPaging(page, order),
        # Connections whose first SCAN pass is still running: the list is what it found so far.
        "discovering": [alias for alias in registry.discovering() if not several() or alias in viewed],
        "states": STATES,
        "query": query,
        "order": order,
    }
    if wants_partial(request):
        return partial_response(request, "bullmq_dashboard/partials/overview_groups.html", context)
    # The queues with most failures only (of every queue the census read), from the cache or their
    # newest failures (bounded).
    context["top_errors"] = await overview_groups(summary.failing)
    context.update(await alert_context(queues))
    return page_response(request, "bullmq_dashboard/overview.html", context)


@dashboard_view(actions=True)
async def queue_page(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """One queue: tabs per state and a page of jobs, newest first; without `?state=` the failed jobs
    when there are any, else the first state that holds jobs."""
    queue = await registry.find_queue(connection, queue_key)
    state = parse_state(request)
    page = parse_positive(request, "page", 1)
    per_page = parse_per_page(request)
    allowed = access_of(request).allowed
    if swaps_only(request, "job-list"):
        # Paging swaps only the list: no counts to read, no tabs or queue actions to render.
        jobs = await fetch_job_page(
            registry.client(connection), queue, state, page, per_page, get_config().limits
        )
        actions, row_actions = available.list_actions(allowed, queue, state)
        context = {**_list_context(queue, state, jobs, actions, row_actions, allowed), "list_only": True}
        return partial_response(request, "bullmq_dashboard/partials/job_list.html", context)
    if "state" in request.GET:
        counts, jobs = await fetch_queue_page(
            registry.client(connection), queue, state, page, per_page, get_config().limits
        )
    else:
        # Opens where the trouble is: failures, else the first state that holds jobs (one round trip).
        counts, jobs = await fetch_queue_opening(
            registry.client(connection), queue, page, per_page, get_config().limits
        )
        state = jobs.state
    actions, row_actions = available.queue_page_actions(allowed, counts, state)
    # The health panel: judged from the inputs kept CACHE_SECONDS with these counts, or read now.
    verdict = (await queue_verdicts([queue], {queue: counts}))[queue]
    context = {
        "verdict": verdict,
        **_list_context(queue, state, jobs, actions, row_actions, allowed),
        # After an action the list shown is read again, on the same tab even when none was asked for.
        "refresh_url": links.queue_list_url(queue, state, page, per_page),
        # Keys of both Bull and BullMQ: shown, never acted on (queues.kinds); the page says why.
        "mixed": kinds.is_mixed(queue),
        # Bull 3/4 has no prioritized state (its prioritized jobs wait in `wait`).
        "clean_states": tuple(s for s in CLEANABLE_STATES if s != "prioritized")
        if kinds.is_bull(queue)
        else CLEANABLE_STATES,
        # Clean never preselects a live state (waiting, prioritized, delayed), whatever tab is open.
        "clean_default": "completed",
        "clean_estimate_url": links.clean_estimate_url(queue),
        "idle_actions": available.idle(counts),
        "counts": counts,
        "states": STATES,
    }
    if wants_partial(request):
        return partial_response(request, "bullmq_dashboard/partials/queue_body.html", context)
    context.update(await alert_context([queue], queue))
    context["read_only"] = read_only(queue)
    context["redis_read_only"] = redis_access.redis_read_only(queue)
    return page_response(request, "bullmq_dashboard/queue.html", context)


def _list_context(
    queue: QueueRef,
    state: str,
    jobs: JobPage,
    actions: dict[str, str],
    row_actions: set[str],
    allowed: frozenset[str],
) -> dict[str, object]:
    return {
        "all_actions": available.all_actions(allowed, state),
        "queue": queue,
        "actions": actions,
        "row_actions": row_actions,
        "state": state,
        "jobs": jobs,
        "page_sizes": sorted({*get_config().page_sizes, jobs.per_page}),
        "page_links": page_numbers(jobs.page, jobs.pages),
    }


def page_numbers(current: int, last: int, around: int = 2) -> list[int | None]:
    """Page numbers to link: first, last and those around the current one; None marks a gap."""
    wanted = {1, last, *range(current - around, current + around + 1)}
    numbers = sorted(number for number in wanted if 1 <= number <= last)
    result: list[int | None] = []
    for number in numbers:
        previous = result[-1] if result else None
        if previous is not None and number - previous > 1:
            result.append(None)
        result.append(number)
    return result


@dashboard_view(actions=True)
async def job_page(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """One job (`?id=`): fields, data, traces, logs and flow links."""
    job, known = await load_job(request, connection, queue_key)
    queue = job.queue
    context = {
        "queue": queue,
        "actions": available.job_actions(access_of(request).allowed, job),
        "job": job,
        "logs": job.logs,
        "children": [(child, resolve_child(known, child)) for child in job.children],
        "parent_link": resolve_parent(known, job.parent),
        "flow_url": links.flow_url(queue, job.id) if in_flow(job) else None,
        "display_limit": get_config().limits.display_bytes,
        **await job_reading_aids(registry.client(connection), job, known, access_of(request).user),
    }
    return page_response(request, "bullmq_dashboard/job.html", context)


def resolve_child(known: list[QueueRef], child: ChildRef) -> tuple[QueueRef, str] | None:
    """The known queue and id of a flow child, when its key can be linked."""
    return resolve_job_key(known, child.job_key) if child.addressable else None


def resolve_parent(known: list[QueueRef], parent: ParentRef | None) -> tuple[QueueRef, str] | None:
    """The known queue and id of a flow parent, when its key can be linked."""
    if parent is None or not parent.addressable:
        return None
    return resolve_job_key(known, parent.job_key)


@dashboard_view()
async def job_logs(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The log pager partial (full job page when loaded directly)."""
    job_id = job_id_param(request)
    queue = await registry.find_queue(connection, queue_key)
    page = parse_positive(request, "log_page", 1)
    if not wants_partial(request):
        return HttpResponseRedirect(f"{links.job_url(queue, job_id)}&log_page={page}#logs")
    logs = await fetch_logs(registry.client(connection), queue, job_id, page, get_config().limits)
    return partial_response(
        request, "bullmq_dashboard/partials/logs.html", {"queue": queue, "job_id": job_id, "logs": logs}
    )


@dashboard_view()
async def job_raw(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The stored value of one field (`?id=&field=`) as plain text (never rendered as HTML)."""
    job_id = job_id_param(request)
    field = request.GET.get("field", "")
    if not field:
        raise BadRequest(gettext_lazy("Give the field to show, as &field=<name>."))
    queue = await registry.find_queue(connection, queue_key)
    limits = get_config().limits
    raw = await fetch_raw_field(registry.client(connection), queue, job_id, field, limits)
    if raw is None:
        raise NotFound(gettext_lazy("Job %(job)r has no field %(field)r.", job=job_id, field=field))
    if raw.value is None:
        message = gettext("The value is %(size)s bytes, over the %(limit)s bytes shown here.") % {
            "size": number_format(raw.size, force_grouping=True),
            "limit": number_format(limits.raw_bytes, force_grouping=True),
        }
        response = HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
    else:
        response = HttpResponse(raw.value, content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@dashboard_view()
async def find_job(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """Jump to a job by its id (the id an on-call engineer found in a log line)."""
    queue = await registry.find_queue(connection, queue_key)
    job_id = job_id_param(request)  # exact: " job7" and "job7" are two jobs
    if not job_id:
        raise BadRequest(gettext_lazy("Give the id of the job to open."))
    if await fetch_job_state(registry.client(connection), queue, job_id) in ("none", "not-a-job"):
        raise NotFound(gettext_lazy("No job %(job)r in queue %(queue)s.", job=job_id, queue=queue.key))
    return HttpResponseRedirect(links.job_url(queue, job_id))
