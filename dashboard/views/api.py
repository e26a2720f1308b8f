"""The JSON API: the same data and permissions as the pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard import available, registry, serializers
from dashboard.conf import get_config
from dashboard.health import queue_verdicts
from dashboard.overview import all_counts
from dashboard.overview_connections import aviewable, problem_of
from dashboard.overview_order import matching, unknown_connection
from dashboard.permissions import avisible
from dashboard.views.base import (
    access_of,
    dashboard_view,
    error_response,
    load_job,
    parse_per_page,
    parse_positive,
    parse_state,
)
from queues.counts import fetch_counts
from queues.jobs import fetch_job_page
from queues.messages import gettext_lazy


@dashboard_view(api=True)
async def queue_list(request: HttpRequest) -> HttpResponse:
    """The queues this user may view whose `<prefix>:<name>` or connection contains `?q=` (of connection
    `?connection=` only, when given), with their
    counts: every one of them (one counts script a queue, in one pipeline per connection: at 10,000
    queues about 160,000 Redis commands and a 5 MB answer), or with `?page=` and `?per_page=` (at most
    MAX_PAGE_SIZE) one page of them, in name order, read alone."""
    query = request.GET.get("q", "").strip()
    connection = request.GET.get("connection", "")
    if connection and connection not in get_config().connections:
        return error_response(request, 400, unknown_connection(connection), api=True)
    listing = await registry.listing()
    user = access_of(request).user
    visible = await avisible(user, listing.queues)
    queues = matching(visible, query, connection)
    # With a per-queue permission, only the connections holding a queue this user may view are named.
    viewed = await aviewable(user, listing, visible)
    if connection and connection not in viewed:
        return error_response(request, 400, unknown_connection(connection), api=True)
    answer: dict[str, object] = {
        "total": len(queues),
        # Each connection asked, and why its queues are missing when it could not be listed.
        "connections": [
            {
                "connection": alias,
                "problem": problem_of(listing.failed[alias]) if alias in listing.failed else None,
            }
            for alias in viewed
            if not connection or alias == connection
        ],
    }
    if "page" in request.GET or "per_page" in request.GET:
        page, per_page = parse_positive(request, "page", 1), parse_per_page(request)
        pages = max(1, -(-len(queues) // per_page))
        queues = queues[(page - 1) * per_page : page * per_page]
        answer.update(page=page, per_page=per_page, pages=pages)
    # A page or a list that fits one is followed by the watcher (polling clients then cost nothing);
    # a list of thousands is read and not followed: tailing them for a minute would cost more than it.
    rows = await all_counts(queues, follow=len(queues) <= get_config().max_page_size)
    return JsonResponse({"queues": [serializers.queue_json(row) for row in rows], **answer})


@dashboard_view(api=True, actions=True)
async def queue_detail(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """One queue's counts and the URL of its jobs."""
    queue = await registry.find_queue(connection, queue_key)
    (counts,) = await fetch_counts(registry.client(connection), [queue])
    actions = available.queue_actions(access_of(request).allowed, counts)
    return JsonResponse(serializers.queue_detail_json(counts, actions=actions))


@dashboard_view(api=True)
async def queue_health(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The queue's health verdict, read now: `{verdict, reasons: [{code, message, since, value}],
    checked_at}`."""
    queue = await registry.find_queue(connection, queue_key)
    verdict = (await queue_verdicts([queue], max_age=0, strict=True))[queue]
    if verdict is None:
        message = gettext_lazy(
            "The health of %(queue)s cannot be judged: its keys answered with an error.", queue=queue.key
        )
        return error_response(request, 502, message, api=True)
    return JsonResponse(serializers.health_json(verdict))


@dashboard_view(api=True)
async def job_list(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """A page of one state's jobs, newest first."""
    queue = await registry.find_queue(connection, queue_key)
    page = await fetch_job_page(
        registry.client(connection),
        queue,
        parse_state(request),
        parse_positive(request, "page", 1),
        parse_per_page(request),
        get_config().limits,
    )
    return JsonResponse(serializers.page_json(page))


@dashboard_view(api=True, actions=True)
async def job_detail(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The full job (`?id=`), with values over the display limit cut and linked to their raw form."""
    job, known = await load_job(request, connection, queue_key)
    actions = available.job_actions(access_of(request).allowed, job)
    return JsonResponse(serializers.detail_json(job, known, actions=actions))
