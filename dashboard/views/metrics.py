"""`<mount>/metrics`: the queues' counts in Prometheus's text exposition format.

For a scraper with the bearer token of `METRICS_TOKEN` (every queue), or a logged-in user who may view
the dashboard (the queues the permission callable lets them view, as on the overview). Anyone else
gets a plain 401, never a redirect to the login page.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import replace

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from dashboard import alerts, monitor, registry
from dashboard.conf import get_config
from dashboard.health import get_health
from dashboard.permissions import aaccess, avisible
from dashboard.rate_limit import RateLimit
from dashboard.views.base import fault_response
from queues.live.reachability import REDIS_FAULTS
from queues.models import QueueRef
from queues.prometheus import CONTENT_TYPE, QueueMetrics, exposition

logger = logging.getLogger("bullmq_dashboard.metrics")

# Scrapes a signed-in user may make a minute (a scrape every 5 s; Prometheus scrapes every 15 s or more).
VIEWER_SCRAPES_PER_MINUTE = 12
_viewer_scrapes = RateLimit(VIEWER_SCRAPES_PER_MINUTE)


def _text(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="bullmq-dashboard"'
    return response


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    """Every queue's counts and signals (at most METRICS_MAX_QUEUES of them) as Prometheus metrics."""
    monitor.ensure_started()
    given = _bearer(request)
    if given is not None:
        token = get_config().raw.get("METRICS_TOKEN")
        if not token or not hmac.compare_digest(given.encode(), str(token).encode()):
            return _text(401, gettext("Wrong metrics token."))
        scope = None
    else:
        access = await aaccess(request, None)
        if not access.user.is_authenticated:
            return _text(401, gettext("Log in or send the metrics token."))
        if not access.may_view:
            return _text(403, gettext("You may not view the queue dashboard."))
        # Each scrape reads every queue the user may view afresh: a signed-in browser tab or script
        # must not turn that into a read per request (the token's scraper is one trusted Prometheus).
        if not _viewer_scrapes.allow(f"user:{access.user.pk}"):
            answer = _text(
                429,
                gettext(
                    "At most %(count)d scrapes a minute for a signed-in user; a Prometheus server should"
                    " send the metrics token."
                )
                % {"count": VIEWER_SCRAPES_PER_MINUTE},
            )
            answer["Retry-After"] = str(60 // VIEWER_SCRAPES_PER_MINUTE)
            return answer
        scope = access.user
    config = get_config()
    try:
        queues, down = await registry.reachable_queues()
        if down and len(down) == len(config.connections):
            # Nothing to export: the scrape fails, so that Prometheus's `up` says so.
            return _text(
                503, gettext("Redis is unreachable: %(error)s") % {"error": "; ".join(down.values())}
            )
        if scope is not None:
            queues = await avisible(scope, queues)
        rows, unread = await _fetch(queues[: config.metrics_max_queues])
    except Exception as exc:  # the API's answer to a fault (4xx/5xx), as plain text
        answer = fault_response(request, exc, api=True)
        return _text(answer.status_code, json.loads(answer.content)["error"])
    # One connection that cannot be read leaves its queues out; the others are exported.
    up = {alias: alias not in down and alias not in unread for alias in config.connections}
    response = HttpResponse(exposition(rows, len(queues), up), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


async def _fetch(queues: list[QueueRef]) -> tuple[list[QueueMetrics], set[str]]:
    """Per connection one pipelined read of every queue's signals and one CLIENT LIST, connections in
    parallel; the firing alerts from the database. The rows of the connections that answered, in the
    order given, and the connections that did not."""
    by_alias: dict[str, list[QueueRef]] = {}
    for queue in queues:
        by_alias.setdefault(queue.connection, []).append(queue)
    batches, firing = await asyncio.gather(
        asyncio.gather(
            *(_connection(alias, members) for alias, members in by_alias.items()), return_exceptions=True
        ),
        alerts.firing_conditions(),
    )
    by_queue: dict[QueueRef, QueueMetrics] = {}
    unread: set[str] = set()
    for alias, batch in zip(by_alias, batches, strict=True):
        if isinstance(batch, BaseException):
            if not isinstance(batch, REDIS_FAULTS):
                raise batch
            logger.warning("metrics of connection %s not read: %s", alias, batch)
            unread.add(alias)
            continue
        by_queue.update((row.counts.queue, row) for row in batch)
    rows = [replace(by_queue[queue], firing=firing.get(queue, ())) for queue in queues if queue in by_queue]
    return rows, unread


async def _connection(alias: str, queues: list[QueueRef]) -> list[QueueMetrics]:
    # The health service's read: the signals, the workers and the verdicts the pages show (one
    # pipeline, its events tally shared by the queues, one CLIENT LIST).
    # A fresh CLIENT LIST for every scrape: the exposition is one read, never a mix with cached workers.
    judged = await get_health().read(alias, queues, workers_age=0)
    return [
        QueueMetrics(row, judged.workers.get(row.queue), verdict=judged.verdicts.get(row.queue))
        for row in judged.signals.values()
    ]
