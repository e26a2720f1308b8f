"""Recording actions: an AuditEntry row written before a change starts and completed after it, and one
line on the `bullmq_dashboard.audit` logger each.

What is stored is bounded (ids, parameters, messages), so no request can make a row large. Refusals
of anonymous requests (a bot posting to action URLs) never reach the table: they go to the log, at
most a few lines a minute per address; a logged-in user's refusals are stored, a few a minute, and
each user's actions are limited to ACTIONS_PER_MINUTE (one row each). Actions taken at a terminal
(`manage.py queues`) are written the same way, by a dashboard user named with `--user` or by the OS
login (`cli:<login>`), and marked `via: cli` in their parameters.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from dashboard.models import AuditEntry
from dashboard.rate_limit import RateLimit
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


_refusals = RateLimit(REFUSALS_PER_MINUTE)
# Actions one user may take a minute (each is an audit row): bulk actions cover more jobs at once.
ACTIONS_PER_MINUTE = 120
_actions = RateLimit(ACTIONS_PER_MINUTE)


def allow_action(user: User) -> bool:
    """Count an action of this user; False beyond ACTIONS_PER_MINUTE."""
    return _actions.allow(f"user:{user.pk}")


def reset_rate_limits() -> None:
    """Forget counted refusals, actions and scrapes (tests)."""
    for limit in RateLimit.every:
        limit.reset()


def _address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


# The username of an entry made at a terminal without a dashboard user: `cli:<OS login>`. Django's
# username validators allow no colon, so no dashboard user can be mistaken for it.
TERMINAL_PREFIX = "cli:"


@dataclass(frozen=True)
class Actor:
    """Who an entry names: a dashboard user (of a web request or named at a terminal), an anonymous
    request, or the OS account at a terminal."""

    user: User | None
    username: str
    remote_addr: str | None = None
    # Taken with `manage.py queues` rather than over HTTP: its entries say so (params `via: cli`).
    terminal: bool = False

    @property
    def stored(self) -> bool:
        """True when this actor's refusals are stored: a logged-in user, or anyone at a terminal."""
        return self.terminal or self.user is not None


def request_actor(request: HttpRequest, user: User | None) -> Actor:
    """The actor of a web request: its user when logged in (else anonymous), and its address."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(None, "", _address(request))
    return Actor(user, user.get_username(), _address(request))


def terminal_actor(user: User | None = None) -> Actor:
    """The actor at a terminal: the dashboard user named with `--user`, else the OS login."""
    if user is not None:
        return Actor(user, user.get_username(), terminal=True)
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry and no $USER
        login = "unknown"
    return Actor(None, _cut(TERMINAL_PREFIX + login, 150), terminal=True)


def _params(actor: Actor, params: dict[str, Any] | None) -> dict[str, Any]:
    kept = bounded_params(params)
    if actor.terminal:
        kept["via"] = "cli"
    return kept


async def begin(
    actor: Actor,
    action: str,
    queue: QueueRef,
    *,
    job_ids: list[str] | tuple[str, ...] = (),
    params: dict[str, Any] | None = None,
) -> AuditEntry:
    """Store an entry for a change about to start (result "started")."""
    return await AuditEntry.objects.acreate(
        user_id=actor.user.pk if actor.user is not None else None,
        username=actor.username,
        action=_cut(action, 40),
        connection=_cut(queue.connection, 100),
        queue=_cut(queue.key, 500),
        job_ids=bounded_ids(job_ids),
        result=AuditEntry.Result.STARTED,
        message="",
        params=_params(actor, params),
        remote_addr=actor.remote_addr,
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
    actor: Actor,
    action: str,
    queue_label: str,
    connection: str,
    status: int,
    message: str,
) -> None:
    """Record a refusal: stored for a logged-in user or a terminal, logged for anonymous requests;
    rate-limited."""
    if actor.user is not None:
        who = f"user:{actor.user.pk}"
    else:
        who = actor.username if actor.terminal else f"addr:{actor.remote_addr}"
    if not _refusals.allow(who):
        return
    if not actor.stored:
        logger.info(
            "anonymous %s %s refused (%d) from %s: %s",
            _cut(action, 40),
            _cut(queue_label, 200) or "-",
            status,
            actor.remote_addr or "?",
            message,
        )
        return
    entry = await AuditEntry.objects.acreate(
        user_id=actor.user.pk if actor.user is not None else None,
        username=actor.username,
        action=_cut(action, 40),
        connection=_cut(connection, 100),
        queue=_cut(queue_label, 500),
        result=AuditEntry.Result.INVALID if status == 400 else AuditEntry.Result.REFUSED,
        message=_cut(message, MAX_MESSAGE),
        params=_params(actor, {"status": status}),
        remote_addr=actor.remote_addr,
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
