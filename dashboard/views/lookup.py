"""Open any job by id from the top bar: `lookup/?id=` (and its JSON `api/lookup/?id=`).

The exact id is looked up in every queue the user may view (the first OVERVIEW_MAX_QUEUES of them, as
the overview lists them): one pipelined EXISTS per queue and connection, then the state of the first
matches. One match opens the job (302); several are listed; none answers 404 with the queues' search
pages. Queues the user may not view are never asked, so nothing about them is told.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from redis.exceptions import RedisError

from dashboard import links, registry
from dashboard.conf import get_config
from dashboard.permissions import avisible
from dashboard.translation import translated
from dashboard.views.base import BadRequest, access_of, dashboard_view, job_id_param, page_response
from queues.connections import PoolBusy
from queues.keys import MAX_NEW_ID_LENGTH, not_a_job
from queues.lookup import Lookup, LookupMatch, find_job_id
from queues.messages import gettext_lazy
from queues.models import QueueRef

# The 404 page links the search pages of at most this many queues.
MAX_SEARCH_LINKS = 50


@dataclass
class LookupAnswer:
    """The lookup over every connection: matches, what was searched and what could not be."""

    job_id: str
    matches: list[LookupMatch] = field(default_factory=list)
    searched: list[QueueRef] = field(default_factory=list)
    visible_count: int = 0
    errors: list[QueueRef] = field(default_factory=list)
    down: list[str] = field(default_factory=list)
    states_cut: bool = False

    @property
    def cut(self) -> bool:
        """Fewer queues were searched than the user may view."""
        return len(self.searched) < self.visible_count


def lookup_id(request: HttpRequest) -> str:
    """The id to look up: `?id=` (strict UTF-8, surrounding spaces dropped); 400 for one that names a
    queue's own keys in every queue or is too long to be a job id here."""
    job_id = job_id_param(request)  # exact: " job7" and "job7" are two jobs
    if not job_id:
        raise BadRequest(gettext_lazy("Give the id of the job to open."))
    if len(job_id.encode("utf-8", "surrogatepass")) > MAX_NEW_ID_LENGTH:
        raise BadRequest(
            gettext_lazy(
                "Job ids longer than %(limit)d bytes are not looked up in every queue; use a queue's search.",
                limit=MAX_NEW_ID_LENGTH,
            )
        )
    reason = not_a_job(job_id)
    if reason is not None:
        raise BadRequest(reason)
    return job_id


async def _one_connection(alias: str, queues: list[QueueRef], job_id: str) -> Lookup | str:
    try:
        return await find_job_id(registry.client(alias), queues, job_id)
    except (RedisError, OSError, PoolBusy):
        return alias


async def look_up(request: HttpRequest, job_id: str) -> LookupAnswer:
    """Search the queues this request's user may view, connection by connection, concurrently."""
    visible = await avisible(access_of(request).user, await registry.all_queues())
    searched = visible[: get_config().overview_max_queues]
    by_connection: dict[str, list[QueueRef]] = defaultdict(list)
    for queue in searched:
        by_connection[queue.connection].append(queue)
    answer = LookupAnswer(job_id, searched=searched, visible_count=len(visible))
    results = await asyncio.gather(
        *(_one_connection(alias, queues, job_id) for alias, queues in by_connection.items())
    )
    for result in results:
        if isinstance(result, str):
            answer.down.append(result)
            continue
        answer.matches.extend(result.matches)
        answer.errors.extend(result.errors)
        answer.states_cut = answer.states_cut or result.states_cut
    return answer


def search_link(queue: QueueRef, job_id: str) -> str:
    """The queue's search page, searching for the id."""
    return f"{links.search_url(queue)}?q={quote(job_id, safe='')}"


@dashboard_view()
async def lookup_page(request: HttpRequest) -> HttpResponse:
    """302 to the one job with this id, a list of several, or a 404 offering the queues' searches."""
    job_id = lookup_id(request)
    answer = await look_up(request, job_id)
    if len(answer.matches) == 1 and not answer.errors and not answer.down:
        match = answer.matches[0]
        return HttpResponseRedirect(links.job_url(match.queue, job_id))
    context: dict[str, Any] = {
        "answer": answer,
        "matches": [(match, links.job_url(match.queue, job_id)) for match in answer.matches],
        "searches": [(queue, search_link(queue, job_id)) for queue in answer.searched[:MAX_SEARCH_LINKS]],
        "more_searches": max(0, len(answer.searched) - MAX_SEARCH_LINKS),
    }
    status = 200 if answer.matches else 404
    return page_response(request, "bullmq_dashboard/lookup.html", context, status=status)


@dashboard_view(api=True)
async def lookup_api(request: HttpRequest) -> HttpResponse:
    """The lookup as JSON: every match with its state and URLs, and what was searched."""
    job_id = lookup_id(request)
    answer = await look_up(request, job_id)
    return JsonResponse(
        {
            "id": job_id,
            "matches": [
                {
                    "connection": match.queue.connection,
                    "queue": match.queue.key,
                    "state": match.state or None,
                    "html_url": links.job_url(match.queue, job_id),
                    "api_url": links.job_api_url(match.queue, job_id),
                }
                for match in answer.matches
            ],
            "queuesSearched": len(answer.searched),
            "queuesVisible": answer.visible_count,
            "statesCut": answer.states_cut,
            "notSearched": [queue.key for queue in answer.errors],
            "connectionsDown": answer.down,
            "note": translated(
                gettext_lazy(
                    "Searched the first %(searched)d of the %(visible)d queues you may view.",
                    searched=len(answer.searched),
                    visible=answer.visible_count,
                )
            )
            if answer.cut
            else None,
        }
    )
