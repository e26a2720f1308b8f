"""What every dashboard view shares: access checks, request parsing and turning faults into pages."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import resolve_url
from django.template.loader import get_template
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf
from django.utils.translation import get_language
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterCrossSlotError,
    ClusterError,
    MaxConnectionsError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard import monitor, redis_access, registry
from dashboard.answers import CLUSTER_BUSY, CROSS_SLOT, LOADING, REFUSED_LOGIN
from dashboard.conf import get_config
from dashboard.permissions import Access, aaccess
from dashboard.registry import UnknownConnection, UnknownQueue
from dashboard.translation import message_of, translated
from queues.connections import PoolBusy
from queues.jobs import fetch_job
from queues.messages import gettext_lazy
from queues.models import JobDetail, NotAJob, QueueRef
from queues.states import STATES

logger = logging.getLogger("bullmq_dashboard")

View = Callable[..., Coroutine[Any, Any, HttpResponse]]


class BadRequest(ValueError):
    """A request parameter the dashboard cannot use; shown as a 400 with this message (a Message)."""


class NotFound(LookupError):
    """A job or page that does not exist; shown as a 404 with this message (a Message)."""


def dashboard_view(*, api: bool = False, actions: bool = False) -> Callable[[View], View]:
    """Require a permitted user and answer faults with a clear page (or JSON) instead of a traceback.

    The user is authenticated before anything is looked up in Redis. The queue a URL names is
    checked against the permission callable as the URL names it (a per-queue view restriction
    answers 404, exactly as an unknown queue), in the same thread hop as the user and, with
    `actions`, the actions the user may take there.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            url_queue = queue_of_url(kwargs)
            access = await aaccess(request, url_queue, actions)
            request.dashboard_access = access  # type: ignore[attr-defined]
            if not access.user.is_authenticated:
                if api:
                    return error_response(request, 401, gettext_lazy("Log in to use the API."), api=True)
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            if not access.may_view:
                message = gettext_lazy("You may not view the queue dashboard.")
                return error_response(request, 403, message, api=api)
            if url_queue is not None and not access.may_view_queue:
                return error_response(request, 404, no_queue_here(url_queue.key), api=api)
            monitor.ensure_started()
            try:
                if url_queue is not None and access.allowed:
                    # No action is offered that the connection's read-only Redis user could not take.
                    await redis_access.refresh(url_queue)
                    if redis_access.redis_read_only(url_queue):
                        access = replace(access, allowed=frozenset())
                        request.dashboard_access = access  # type: ignore[attr-defined]
                return await view(request, *args, **kwargs)
            except Exception as exc:  # known faults become a clear answer; others are raised again
                return fault_response(request, exc, api=api)

        return wrapper

    return decorate


def fault_response(request: HttpRequest, exc: Exception, *, api: bool) -> HttpResponse:
    """The 4xx/5xx answer for an exception of a view; unknown exceptions are raised again."""
    if isinstance(exc, BadRequest):
        return error_response(request, 400, message_of(exc), api=api)
    if isinstance(exc, UnknownConnection):
        message = gettext_lazy("No Redis connection named %(connection)s.", connection=str(exc))
        return error_response(request, 404, message, api=api)
    if isinstance(exc, UnknownQueue):
        return error_response(request, 404, no_queue_here(str(exc)), api=api)
    if isinstance(exc, NotFound | NotAJob):
        return error_response(request, 404, message_of(exc), api=api)
    if isinstance(exc, PoolBusy):
        logger.warning("Redis connections busy: %s", exc)
        return error_response(request, 503, message_of(exc), api=api)
    if isinstance(exc, MaxConnectionsError):  # a cluster node's pool is full (it has no bounded wait)
        logger.warning("Redis cluster connections busy: %s", exc)
        return error_response(request, 503, CLUSTER_BUSY, api=api)
    if isinstance(exc, ClusterCrossSlotError):  # a queue without a {hash tag} on a cluster: for good
        logger.warning("Redis Cluster: %s", exc)
        return error_response(request, 502, CROSS_SLOT, api=api)
    if isinstance(exc, TryAgainError | ClusterError):
        # A slot moving between nodes (TRYAGAIN until the move ends), a failover, or no node reachable.
        logger.warning("Redis Cluster: %s", exc)
        message = gettext_lazy(
            "Redis Cluster could not serve this now (a slot moving between nodes, or a failover): %(error)s."
            " Try again in a moment.",
            error=str(exc) or type(exc).__name__,
        )
        return error_response(request, 503, message, api=api)
    if isinstance(exc, RedisTimeoutError) and "connecting" not in str(exc).lower():
        # Connected, but no answer within SOCKET_TIMEOUT: a slow command or DEBUG SLEEP, not a down Redis.
        logger.warning("Redis did not answer in time: %s", exc)
        message = gettext_lazy("Redis did not answer in time: it is slow or busy. Try again in a moment.")
        return error_response(request, 504, message, api=api)
    if isinstance(exc, BusyLoadingError):
        # Up and answering, but refusing every command until its dataset is loaded: not "unreachable".
        logger.warning("Redis is loading its data: %s", exc)
        return error_response(request, 503, LOADING, api=api, redis_down=True)
    if isinstance(exc, AuthenticationError):
        logger.warning("Redis refused the login of connection %s: %s", connection_of(request), exc)
        return error_response(request, 503, REFUSED_LOGIN, api=api, redis_down=True)
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        logger.warning("Redis unreachable: %s", exc)
        message = gettext_lazy("Redis is unreachable. The page will work again once it is back.")
        return error_response(request, 503, message, api=api, redis_down=True)
    if isinstance(exc, RedisError) and str(exc).startswith("BUSY"):
        # redis-py has no exception type for it; Redis answers BUSY to everyone while a script runs long.
        logger.warning("Redis busy: %s", exc)
        message = gettext_lazy(
            "Redis is busy running a long script (BUSY) and answers nothing else until it ends."
            " Try again in a moment."
        )
        return error_response(request, 503, message, api=api)
    if isinstance(exc, RedisError):
        logger.warning("Redis error: %s", exc)
        message = gettext_lazy("Redis answered with an error: %(error)s", error=str(exc))
        return error_response(request, 502, message, api=api)
    raise exc


def connection_of(request: HttpRequest) -> str:
    """The connection alias the request's URL names, or "?"."""
    match = getattr(request, "resolver_match", None)
    return str(match.kwargs.get("connection", "?")) if match is not None else "?"


def no_queue_here(queue_key: str) -> str:
    """The 404 message for a queue that is not there (or not for this user)."""
    return gettext_lazy("No queue %(queue)s on this connection.", queue=queue_key)


def queue_of_url(kwargs: dict[str, Any]) -> QueueRef | None:
    """The queue a URL names, parsed from the URL alone (not looked up); None for a malformed key."""
    if "connection" not in kwargs or "queue_key" not in kwargs:
        return None
    try:
        return QueueRef.from_key(kwargs["connection"], kwargs["queue_key"])
    except ValueError:
        return None


def job_id_param(request: HttpRequest) -> str:
    """The `id` query parameter exactly as sent: one value, percent-decoded as strict UTF-8.

    Django's QueryDict would turn bytes that are not UTF-8 into U+FFFD, which names another job.
    """
    try:
        pairs = parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(gettext_lazy("The job id is not valid UTF-8.")) from None
    values = [value for name, value in pairs if name == "id"]
    if len(values) != 1:
        raise BadRequest(gettext_lazy("Give exactly one job id, as ?id=<job id> (percent-encoded)."))
    job_id: str = values[0]
    if not job_id:
        raise BadRequest(gettext_lazy("The job id is empty."))
    return job_id


def access_of(request: HttpRequest) -> Access:
    """What dashboard_view found this request may do."""
    access: Access = getattr(request, "dashboard_access")  # noqa: B009
    return access


def page_response(
    request: HttpRequest, template_name: str, context: dict[str, Any], status: int = 200
) -> TemplateResponse:
    """A full page: its context and what the page frame needs (bullmq_dashboard/layout.html): the base
    template to extend, the user and where "Log out" posts. The request is given too, so that the pages
    need no context processor of the host project."""
    config = get_config()
    access = getattr(request, "dashboard_access", None)
    frame = {
        "request": request,
        "bullmq_base_template": config.base_template,
        "bullmq_user": access.user if access is not None else getattr(request, "user", None),
        "bullmq_logout_url": logout_url(config.logout_url),
    }
    return TemplateResponse(request, template_name, {**frame, **context}, status=status)


@functools.lru_cache(maxsize=64)
def _logout_url(
    name_or_path: str, urlconf: str | None, script_prefix: str, language: str | None
) -> str | None:
    try:
        url = resolve_url(name_or_path)
    except NoReverseMatch:
        return None
    if url.startswith("/"):
        return url
    # Only a path of this site or an http(s) URL: never javascript: or data: as a form's action.
    try:
        return url if urlsplit(url).scheme in ("http", "https") else None
    except ValueError:  # not a URL at all (check W006 says so)
        return None


def logout_url(name_or_path: str | None) -> str | None:
    """The URL "Log out" posts to: a URL name or path; None when unset or when it does not reverse
    (bullmq_dashboard's checks say so)."""
    if not name_or_path:
        return None
    return _logout_url(name_or_path, get_urlconf(), get_script_prefix(), get_language())


def error_response(
    request: HttpRequest, status: int, message: str, *, api: bool, redis_down: bool = False
) -> HttpResponse:
    """A 4xx/5xx answer: JSON for the API, otherwise the error page (full or partial for htmx); the
    message in the active language."""
    message = translated(message)
    if api:
        return JsonResponse({"error": message, "status": status}, status=status)
    response = page_response(
        request,
        "bullmq_dashboard/error.html",
        {"status": status, "message": message, "redis_down": redis_down},
        status=status,
    )
    if getattr(request, "htmx", False):
        # htmx does not swap error responses by default; show the error where the content goes.
        response["HX-Retarget"] = "#bullmq-content"
        response["HX-Reswap"] = "innerHTML"
        response.template_name = "bullmq_dashboard/partials/error.html"
    return response


def parse_state(request: HttpRequest, default: str = "waiting") -> str:
    """The `state` parameter, one of BullMQ's state names."""
    state = request.GET.get("state", default)
    if state not in STATES:
        message = gettext_lazy(
            "Unknown state %(state)r. Use one of: %(states)s.", state=state, states=", ".join(STATES)
        )
        raise BadRequest(message)
    return state


def parse_positive(request: HttpRequest, name: str, default: int, maximum: int = 10**9) -> int:
    """A positive integer parameter such as `page`."""
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        message = gettext_lazy("%(name)s must be a whole number, not %(value)r.", name=name, value=raw[:40])
        raise BadRequest(message) from None
    if value < 1 or value > maximum:
        raise BadRequest(
            gettext_lazy("%(name)s must be between 1 and %(maximum)d.", name=name, maximum=maximum)
        )
    return value


def parse_per_page(request: HttpRequest) -> int:
    """The page size: any from 1 to MAX_PAGE_SIZE (the selector's PAGE_SIZES are only a convenience)."""
    config = get_config()
    return parse_positive(request, "per_page", config.default_page_size, maximum=config.max_page_size)


def partial_response(request: HttpRequest, template_name: str, context: dict[str, Any]) -> HttpResponse:
    """An htmx partial, rendered here on the event loop rather than in a thread like a TemplateResponse.

    Partials are the dashboard's own templates over context its views built: they read `request`
    (given here) and no context processor, so nothing in them can touch the database.
    """
    return HttpResponse(get_template(template_name).render({**context, "request": request}))


def wants_partial(request: HttpRequest) -> bool:
    """An htmx swap (not a history restore, which needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def swaps_only(request: HttpRequest, element_id: str) -> bool:
    """An htmx swap of the element `element_id` alone (its HX-Target)."""
    htmx = getattr(request, "htmx", None)
    return wants_partial(request) and htmx is not None and htmx.target == element_id


async def load_job(request: HttpRequest, connection: str, queue_key: str) -> tuple[JobDetail, list[QueueRef]]:
    """The job a URL names (404 when gone or not a job), and the connection's known queues for flow
    links."""
    job_id = job_id_param(request)
    queue = await registry.find_queue(connection, queue_key)
    log_page = parse_positive(request, "log_page", 1)
    job = await fetch_job(registry.client(connection), queue, job_id, get_config().limits, log_page)
    if job is None:
        message = gettext_lazy(
            "No job %(job)r in queue %(queue)s. It may have been removed.", job=job_id, queue=queue.key
        )
        raise NotFound(message)
    return job, await registry.directory(connection).get()
