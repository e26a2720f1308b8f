"""Recording actions: an AuditEntry row written before a change starts and completed after it, and one
line on the `bullmq_dashboard.audit` logger each.

What is stored is bounded (ids, parameters, messages), so no request can make a row large. Refusals
of anonymous requests (a bot posting to action URLs) never reach the table: they go to the log, at
most a few lines a minute per address; a logged-in user's refusals are stored, a few a minute, and
each user's actions are limited to ACTIONS_PER_MINUTE (one row each).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from django.http import HttpRequest

from dashboard.models import AuditEntry
from dashboard.users import User
from queues.models import QueueRef

logger = logging.getLogger("bullmq_dashboard.audit")

MAX_IDS = 1000
MAX_ID_LENGTH = 256
MAX_PARAMS = 20
MAX_PARAM_LENGTH = 500
MAX_MESSAGE = 2000
# Refusals recorded per minute for one user (stored) or one anonymous address (logged).
REFUSALS_PER_MINUTE = 10


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def bounded_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """At most MAX_PARAMS parameters, each a short string, number, boolean or None."""
    kept: dict[str, Any] = {}
    for name, value in list((params or {}).items())[:MAX_PARAMS]:
        key = _cut(str(name), 64)
        if value is None or isinstance(value, bool | int | float):
            kept[key] = value
        else:
            kept[key] = _cut(str(value), MAX_PARAM_LENGTH)
    return kept


def bounded_ids(job_ids: list[str] | tuple[str, ...]) -> list[str]:
    """At most MAX_IDS ids, each cut to MAX_ID_LENGTH characters."""
    return [_cut(str(job_id), MAX_ID_LENGTH) for job_id in list(job_ids)[:MAX_IDS]]


class _RateLimit:
    """At most `per_minute` events per key in any minute; remembers a bounded number of keys."""

    def __init__(self, per_minute: int, keys: int = 10_000) -> None:
        self.per_minute = per_minute
        self.keys = keys
        self._events: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """True if another event for `key` fits in the last minute (and count it)."""
        now = time.monotonic()
        recent = [moment for moment in self._events.pop(key, []) if now - moment < 60]
        allowed = len(recent) < self.per_minute
        if allowed:
            recent.append(now)
        self._events[key] = recent
        while len(self._events) > self.keys:
            self._events.popitem(last=False)
        return allowed


_refusals = _RateLimit(REFUSALS_PER_MINUTE)
# Actions one user may take a minute (each is an audit row): bulk actions cover more jobs at once.
ACTIONS_PER_MINUTE = 120
_actions = _RateLimit(ACTIONS_PER_MINUTE)


def allow_action(user: User) -> bool:
    """Count an action of this user; False beyond ACTIONS_PER_MINUTE."""
    return _actions.allow(f"user:{user.pk}")


def reset_rate_limits() -> None:
    """Forget counted refusals and actions (tests)."""
    _refusals._events.clear()
    _actions._events.clear()


def _address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


async def begin(
    request: HttpRequest,
    user: User,
    action: str,
    queue: QueueRef,
    *,
    job_ids: list[str] | tuple[str, ...] = (),
    params: dict[str, Any] | None = None,
) -> AuditEntry:
    """Store an entry for a change about to start (result "started")."""
    return await AuditEntry.objects.acreate(
        user_id=user.pk,
        username=user.get_username(),
        action=_cut(action, 40),
        connection=_cut(queue.connection, 100),
        queue=_cut(queue.key, 500),
        job_ids=bounded_ids(job_ids),
        result=AuditEntry.Result.STARTED,
        message="",
        params=bounded_params(params),
        remote_addr=_address(request),
    )


async def complete(
    entry: AuditEntry,
    result: str,
    message: str,
    *,
    job_ids: list[str] | tuple[str, ...] | None = None,
    count: int = 0,
    skipped: int = 0,
) -> None:
    """Complete a started entry with what happened, and log it."""
    entry.result = result
    entry.message = _cut(message, MAX_MESSAGE)
    entry.count = count
    entry.skipped = skipped
    fields = ["result", "message", "count", "skipped"]
    if job_ids is not None:
        entry.job_ids = bounded_ids(job_ids)
        fields.append("job_ids")
    await entry.asave(update_fields=fields)
    _log(entry)


async def refused(
    request: HttpRequest,
    user: User | None,
    action: str,
    queue_label: str,
    connection: str,
    status: int,
    message: str,
) -> None:
    """Record a refusal: stored for a logged-in user, logged for anonymous requests; rate-limited."""
    authenticated = bool(getattr(user, "is_authenticated", False))
    who = f"user:{getattr(user, 'pk', None)}" if authenticated else f"addr:{_address(request)}"
    if not _refusals.allow(who):
        return
    if not authenticated:
        logger.info(
            "anonymous %s %s refused (%d) from %s: %s",
            _cut(action, 40),
            _cut(queue_label, 200) or "-",
            status,
            _address(request) or "?",
            message,
        )
        return
    entry = await AuditEntry.objects.acreate(
        user_id=getattr(user, "pk", None),
        username=user.get_username() if user is not None else "",  # authenticated: never None
        action=_cut(action, 40),
        connection=_cut(connection, 100),
        queue=_cut(queue_label, 500),
        result=AuditEntry.Result.INVALID if status == 400 else AuditEntry.Result.REFUSED,
        message=_cut(message, MAX_MESSAGE),
        params={"status": status},
        remote_addr=_address(request),
    )
    _log(entry)


def _log(entry: AuditEntry) -> None:
    logger.info(
        "%s %s %s %s: %s",
        entry.username or "anonymous",
        entry.action,
        entry.queue or "-",
        entry.result,
        entry.message,
        extra={
            "audit": {
                "id": entry.pk,
                "job_ids": entry.job_ids,
                "count": entry.count,
                "skipped": entry.skipped,
            }
        },
    )
