"""Job search: the page `<queue>/search/` and its JSON `api/queues/<queue>/search/` (see queues/search.py).

Parameters: `q` (text in name, data, failed reason; also tried as an exact job id), `state` (one state,
or empty / `all`), `name` (exact job name), `by` (`created`, or `finished` for completed / failed),
`since` / `until` (ISO datetimes, UTC unless they say otherwise, or epoch milliseconds; inclusive),
`cursor` (where the previous request stopped: signed, and only valid for the same search).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.core import signing
from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard import available, links, registry, serializers
from dashboard.conf import DEFAULTS, get_config
from dashboard.translation import translated
from dashboard.views.base import (
    BadRequest,
    access_of,
    dashboard_view,
    page_response,
    partial_response,
    wants_partial,
)
from queues.jobs import fetch_job_state
from queues.messages import gettext_lazy
from queues.models import NotAJob, QueueRef
from queues.search import (
    FINISHED_STATES,
    SEARCH_ORDER,
    SearchCursor,
    SearchLimits,
    SearchQuery,
    SearchResult,
    search_jobs,
)
from queues.states import STATES

SALT = "bullmq_dashboard.search.cursor"
# Longer needles make each Lua step cost more (plain string.find on near misses); see queues.search.
MAX_QUERY = 200


def search_limits() -> SearchLimits:
    """BULLMQ_DASHBOARD["SEARCH"] over its defaults."""
    given = get_config().raw.get("SEARCH")
    raw = {**DEFAULTS["SEARCH"], **(given if isinstance(given, dict) else {})}

    def number(name: str) -> int:
        try:
            return max(1, int(raw[name]))
        except (TypeError, ValueError):  # not a number: the default (a typo must not break the page)
            return int(DEFAULTS["SEARCH"][name])

    return SearchLimits(
        max_scan=number("MAX_SCAN"),
        batch=number("BATCH"),
        max_field_bytes=number("MAX_FIELD_BYTES"),
        max_results=number("MAX_RESULTS"),
    )


def parse_time(request: HttpRequest, name: str) -> int | None:
    """`since` / `until`: epoch milliseconds, or an ISO datetime (UTC when it names no offset)."""
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 15:
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            gettext_lazy(
                "%(name)s must be an ISO date and time (2024-05-01T12:00, UTC unless an offset is given)"
                " or milliseconds since 1970, not %(value)r.",
                name=name,
                value=raw[:40],
            )
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_query(request: HttpRequest) -> SearchQuery:
    """The search the parameters ask for (BadRequest for one that cannot be run)."""
    text = request.GET.get("q", "").strip()
    if len(text) > MAX_QUERY:
        raise BadRequest(gettext_lazy("The search text is longer than %(max)d characters.", max=MAX_QUERY))
    state = request.GET.get("state", "")
    if state in ("", "all"):
        states = SEARCH_ORDER
    elif state in STATES:
        states = (state,)
    else:
        raise BadRequest(
            gettext_lazy(
                "Unknown state %(state)r. Use one of: %(states)s, or all.",
                state=state[:40],
                states=", ".join(STATES),
            )
        )
    name = request.GET.get("name", "")
    by = request.GET.get("by", "") or "created"
    if by not in ("created", "finished"):
        raise BadRequest(gettext_lazy("by must be created or finished, not %(value)r.", value=by[:40]))
    since, until = parse_time(request, "since"), parse_time(request, "until")
    if since is not None and until is not None and since > until:
        raise BadRequest(gettext_lazy("since is after until: no job can be in that time range."))
    if by == "finished" and (len(states) != 1 or states[0] not in FINISHED_STATES):
        raise BadRequest(gettext_lazy("Finished between can only be searched in completed or failed jobs."))
    time_field = "" if since is None and until is None else "finishedOn" if by == "finished" else "timestamp"
    return SearchQuery(states, text, name or None, time_field, since, until)


def _fingerprint(queue: QueueRef, query: SearchQuery) -> str:
    return f"{queue.connection}\n{queue.key}\n{query.fingerprint()}"


def encode_cursor(queue: QueueRef, query: SearchQuery, cursor: SearchCursor) -> str:
    """The cursor as a signed token, valid only for this queue and this search."""
    return signing.dumps({"f": _fingerprint(queue, query), "c": cursor.as_list()}, salt=SALT, compress=True)


def parse_cursor(request: HttpRequest, queue: QueueRef, query: SearchQuery) -> SearchCursor | None:
    """The `cursor` parameter (None without one); BadRequest when it is not one this search made."""
    token = request.GET.get("cursor", "")
    if not token:
        return None
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise BadRequest(
            gettext_lazy(
                "The cursor is not one this dashboard made, or it was changed. Start the search again."
            )
        ) from None
    if not isinstance(payload, dict) or payload.get("f") != _fingerprint(queue, query):
        raise BadRequest(
            gettext_lazy(
                "The cursor belongs to another search. Start the search again, or keep its parameters."
            )
        )
    try:
        return SearchCursor.from_list(payload.get("c"), query.states)
    except ValueError:
        raise BadRequest(gettext_lazy("The cursor is not valid. Start the search again.")) from None


def query_params(request: HttpRequest) -> dict[str, str]:
    """The search's parameters as given (without the cursor), for forms and links."""
    return {name: request.GET.get(name, "") for name in ("q", "state", "name", "by", "since", "until")}


def continue_url(base: str, params: dict[str, str], token: str) -> str:
    """The URL that goes on from `token`, with the same parameters."""
    kept = {name: value for name, value in params.items() if value}
    return f"{base}?{urlencode({**kept, 'cursor': token})}"


async def exact_match(client: Any, queue: QueueRef, text: str) -> str | None:
    """The state of the job whose id is exactly `text`, or None (also for ids that name no job)."""
    if not text:
        return None
    try:
        state = await fetch_job_state(client, queue, text)
    except NotAJob:
        return None
    return None if state in ("none", "not-a-job") else state


async def _run(
    request: HttpRequest, connection: str, queue_key: str
) -> tuple[QueueRef, SearchQuery, SearchCursor | None, SearchResult | None, str | None, SearchLimits]:
    queue = await registry.find_queue(connection, queue_key)
    query = parse_query(request)
    cursor = parse_cursor(request, queue, query)
    limits = search_limits()
    if not query.criteria:
        return queue, query, cursor, None, None, limits
    client = registry.client(connection)
    exact = await exact_match(client, queue, query.text) if cursor is None else None
    result = await search_jobs(client, queue, query, cursor, limits)
    return queue, query, cursor, result, exact, limits


@dashboard_view(api=True)
async def search_api(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """Jobs matching the search, newest first, with how many were read and the cursor to go on."""
    queue, query, _cursor, result, exact, limits = await _run(request, connection, queue_key)
    if result is None:
        raise BadRequest(gettext_lazy("Give something to search for: q, name, since or until."))
    api_url = links.job_api_urls(queue)
    token = encode_cursor(queue, query, result.next_cursor) if result.next_cursor else None
    base = links.search_api_url(queue)
    return JsonResponse(
        {
            "jobs": [
                {
                    **serializers.summary_json(
                        found.job, None if found.job.problem else api_url(found.job.id)
                    ),
                    "state": found.state,
                }
                for found in result.jobs
            ],
            "exact": (
                {"id": query.text, "state": exact, "api_url": links.job_api_url(queue, query.text)}
                if exact
                else None
            ),
            "scanned": result.scanned,
            "scanned_total": result.scanned_total,
            "bound": limits.max_scan,
            "bound_hit": result.bound_hit,
            "not_searched": result.not_searched,
            "not_jobs": result.not_jobs,
            "problems": [translated(problem) for problem in result.problems],
            "states": list(query.states),
            "next_cursor": token,
            "next_url": continue_url(base, query_params(request), token) if token else None,
        }
    )


@dashboard_view(actions=True)
async def search_page(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """The search form and, when it names something to look for, one bounded step of results."""
    queue, query, cursor, result, exact, limits = await _run(request, connection, queue_key)
    params = query_params(request)
    single = query.states[0] if len(query.states) == 1 else ""
    allowed = access_of(request).allowed
    actions, row_actions = available.list_actions(allowed, queue, single) if single else ({}, set())
    base = links.search_url(queue)
    token = encode_cursor(queue, query, result.next_cursor) if result and result.next_cursor else None
    context = {
        "queue": queue,
        "params": params,
        "states": STATES,
        "query": query,
        "single_state": single,
        "result": result,
        "continued": cursor is not None,
        "exact": exact,
        "exact_url": links.job_url(queue, query.text) if exact else "",
        "limits": limits,
        "search_url": base,
        "next_url": continue_url(base, params, token) if token else "",
        "actions": actions,
        "row_actions": row_actions,
    }
    if wants_partial(request):
        return partial_response(request, "bullmq_dashboard/partials/search_results.html", context)
    return page_response(request, "bullmq_dashboard/search.html", context)
