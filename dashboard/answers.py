"""What an action request answers: a status, a message and counts, for JSON or a toast; and the answer
for each way an action can fail (by exception type, never by matching message prefixes).

Messages stay English `queues.messages.Message`s here (the audit log keeps them so); they are
translated when the answer is rendered (`dashboard.translation.translated`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import (
    AskError,
    AuthenticationError,
    BusyLoadingError,
    ClusterCrossSlotError,
    MaxConnectionsError,
    MovedError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard.models import AuditEntry
from dashboard.translation import message_of
from queues.actions import Conflict, Interrupted, Invalid
from queues.connections import PoolBusy
from queues.messages import gettext_lazy
from queues.models import NotAJob

if TYPE_CHECKING:
    from dashboard.operations import Operation

logger = logging.getLogger("bullmq_dashboard")
Result = AuditEntry.Result


class Refusal(Exception):
    """An action refused before anything was written; carries its HTTP status and audit result."""

    def __init__(self, status: int, message: str, result: str = Result.REFUSED) -> None:
        super().__init__(message)
        self.status = status
        self.result = result


@dataclass(frozen=True)
class Answer:
    """The result of an action request, before it is rendered as JSON or a toast."""

    status: int
    action: str
    message: str
    done: int = 0
    skipped: int = 0
    operation: Operation | None = None
    redirect: str = ""
    result: str = Result.DONE
    # The jobs the action made or changed (a duplicate's new id first).
    job_ids: tuple[str, ...] = ()
    # The POST URL that undoes it, offered in its toast (Pause: Resume), when the user may take it.
    undo: str = ""

    @property
    def ok(self) -> bool:
        """2xx."""
        return self.status < 300


@dataclass(frozen=True)
class Fault:
    """How an exception is answered: status, audit result, what happened, and whether it is certain
    that the failing step changed nothing (said as "nothing was changed", or what earlier batches did)."""

    status: int
    result: str
    message: str
    unchanged: bool = False


def answer_for_error(action: str, exc: BaseException, progress: int = 0) -> Answer:
    """The answer (status, message, audit result) for an exception an action raised; `progress` jobs
    already done by earlier batches are said, and counted, rather than "nothing was changed"."""
    fault = _classify(exc)
    message = fault.message
    if progress:
        if fault.unchanged:
            message = gettext_lazy(
                "Stopped after %(done)d done: %(message)s The rest was not changed.",
                done=progress,
                message=message,
            )
        else:
            message = gettext_lazy("Stopped after %(done)d done: %(message)s", done=progress, message=message)
    elif fault.unchanged:
        message = gettext_lazy("%(message)s Nothing was changed.", message=message)
    return Answer(fault.status, action, message, done=progress, result=fault.result)


def answer_before_writing(action: str, exc: BaseException) -> Answer:
    """The answer for a Redis error met while an action was being prepared (its reads), when it is
    certain that nothing was written."""
    fault = _classify(exc)
    if fault.unchanged:
        message = gettext_lazy("%(message)s Nothing was changed.", message=fault.message)
    else:
        message = gettext_lazy(
            "Redis failed while the action was being prepared, before anything was written (%(error)s)."
            " Nothing was changed.",
            error=type(exc).__name__,
        )
    return Answer(fault.status, action, message, result=fault.result)


def _classify(exc: BaseException) -> Fault:
    if isinstance(exc, Refusal):
        return Fault(exc.status, exc.result, message_of(exc))
    if isinstance(exc, Interrupted) and exc.__cause__ is not None:
        # Something was written before the error: whatever the error, never "nothing was changed".
        cause = _classify(exc.__cause__)
        message = gettext_lazy(
            "It stopped partway: %(done)s. %(message)s", done=message_of(exc), message=cause.message
        )
        return Fault(cause.status, Result.FAILED, message)
    if isinstance(exc, Conflict):
        return Fault(409, Result.CONFLICT, message_of(exc))
    if isinstance(exc, Invalid):
        return Fault(400, Result.INVALID, message_of(exc))
    if isinstance(exc, NotAJob):
        return Fault(404, Result.REFUSED, message_of(exc))
    if isinstance(exc, PoolBusy):
        return Fault(503, Result.FAILED, message_of(exc), unchanged=True)
    if isinstance(exc, RedisError | OSError):
        return _redis_fault(exc)
    logger.error("action failed", exc_info=exc)
    message = gettext_lazy("The action failed (%(error)s); see the server log.", error=type(exc).__name__)
    return Fault(500, Result.FAILED, message)


# A connection whose user name or password Redis does not accept (or whose user is off).
REFUSED_LOGIN = gettext_lazy(
    "Redis refused the dashboard's login: the user name or password of this connection is wrong, or the"
    " user is off."
)


# Every connection of the dashboard's pool for one cluster node is in use.
CLUSTER_BUSY = gettext_lazy(
    "All of the dashboard's connections to this Redis Cluster node are in use; try again in a moment."
)


# Refused (TRYAGAIN, or redirected until the client gave up) while the queue's slot moves between
# cluster nodes; the answer adds that nothing was changed (queues.actions.SLOT_MOVING says it itself).
SLOT_MOVES = gettext_lazy("Redis Cluster is moving this queue's slot to another node; try again in a moment.")


# A queue whose keys lie in several hash slots of a Redis Cluster: no command or script naming two of
# them can run there (CROSSSLOT), so BullMQ cannot use the queue on a cluster.
CROSS_SLOT = gettext_lazy(
    "The keys of this queue lie in several hash slots of the Redis Cluster (its prefix and name have no"
    " {hash tag}): Redis refuses every script that names two of them, so BullMQ cannot use it there."
)


# Redis restarted and loads its dataset: it refuses every command (LOADING) until it is done.
LOADING = gettext_lazy("Redis is loading its data after a restart (LOADING); try again in a moment.")


def _redis_fault(exc: BaseException) -> Fault:
    """Redis errors in words: what happened and whether anything may have changed."""
    said = str(exc)
    failed = Result.FAILED
    if isinstance(exc, ReadOnlyError) or "READONLY" in said:
        return Fault(503, failed, gettext_lazy("Redis is a read-only replica (READONLY)."), unchanged=True)
    if isinstance(exc, OutOfMemoryError) or said.startswith("OOM") or " OOM " in said:
        message = gettext_lazy("Redis is out of memory (OOM). Redis said: %(said)s", said=said)
        return Fault(503, failed, message, unchanged=True)
    if said.startswith("BUSY"):  # refused before it ran: Redis is running another script
        message = gettext_lazy("Redis is busy running a long script (BUSY); try again in a moment.")
        return Fault(503, failed, message, unchanged=True)
    if isinstance(exc, AuthenticationError):
        return Fault(503, failed, REFUSED_LOGIN, unchanged=True)
    if isinstance(exc, BusyLoadingError):  # refused before it ran, like every command until loaded
        return Fault(503, failed, LOADING, unchanged=True)
    if isinstance(exc, MaxConnectionsError):  # a cluster node's pool is full: nothing was sent
        return Fault(503, failed, CLUSTER_BUSY, unchanged=True)
    if isinstance(exc, ClusterCrossSlotError):  # refused before it ran, by the client or by Redis
        return Fault(409, failed, CROSS_SLOT, unchanged=True)
    if isinstance(exc, TryAgainError):  # refused while the queue's slot moves between cluster nodes
        return Fault(503, failed, SLOT_MOVES, unchanged=True)
    if isinstance(exc, RedisTimeoutError):
        message = gettext_lazy(
            "Redis did not answer in time. The action may or may not have run: check before trying again."
        )
        return Fault(503, failed, message)
    if isinstance(exc, RedisConnectionError | OSError):
        if "connecting" in said.lower():
            return Fault(503, failed, gettext_lazy("Redis is unreachable."), unchanged=True)
        message = gettext_lazy(
            "The connection to Redis broke. The action may or may not have run: check before trying again."
        )
        return Fault(503, failed, message)
    if "WRONGTYPE" in said:
        message = gettext_lazy(
            "A key of this queue holds another type than BullMQ keeps there (another program wrote it);"
            " BullMQ's script stopped. Redis said: %(said)s",
            said=said,
        )
        return Fault(409, failed, message)
    # redis-py strips the MOVED / ASK code from the message (MovedError, AskError): asked by type.
    if isinstance(exc, MovedError | AskError) or said.startswith(("MOVED", "ASK")) or " MOVED " in said:
        message = gettext_lazy(
            "This connection reached a Redis Cluster node; configure it as a cluster (CLUSTER: True):"
            " %(said)s",
            said=said,
        )
        return Fault(502, failed, message)
    if isinstance(exc, NoPermissionError) or _acl_refusal(said):
        message = gettext_lazy(
            "The dashboard's Redis user may not do this: its ACL denies it (a read-only Redis user?)."
            " Redis said: %(said)s",
            said=said,
        )
        # Refused before it ran; a script refused midway keeps what it wrote before (Redis has no rollback).
        unchanged = isinstance(exc, NoPermissionError)
        return Fault(403, Result.REFUSED if unchanged else failed, message, unchanged=unchanged)
    if isinstance(exc, NoScriptError):
        message = gettext_lazy(
            "Redis lost BullMQ's script (NOSCRIPT) and it could not be loaded: %(said)s", said=said
        )
        return Fault(502, failed, message)
    if isinstance(exc, ResponseError):
        return Fault(502, failed, gettext_lazy("Redis refused the action: %(said)s", said=said))
    return Fault(502, failed, gettext_lazy("Redis failed: %(said)s", said=said))


def _acl_refusal(said: str) -> bool:
    """Redis's words for a command or key its ACL denies, at top level (NOPERM) or inside a script."""
    return said.startswith("NOPERM") or "script can't" in said or "no permissions to" in said
