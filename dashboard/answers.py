"""What an action request answers: a status, a message and counts, for JSON or a toast; and the answer
for each way an action can fail (by exception type, never by matching message prefixes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, OutOfMemoryError, ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard.models import AuditEntry
from queues.actions import Conflict, Invalid
from queues.connections import PoolBusy
from queues.models import NotAJob

if TYPE_CHECKING:
    from dashboard.operations import Operation

logger = logging.getLogger("dashboard")
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

    @property
    def ok(self) -> bool:
        """2xx."""
        return self.status < 300


def answer_for_error(action: str, exc: BaseException) -> Answer:
    """The answer (status, message, audit result) for an exception an action raised."""
    status, result, message = _classify(exc)
    return Answer(status, action, message, result=result)


def _classify(exc: BaseException) -> tuple[int, str, str]:
    if isinstance(exc, Refusal):
        return exc.status, exc.result, str(exc)
    if isinstance(exc, Conflict):
        return 409, Result.CONFLICT, str(exc)
    if isinstance(exc, Invalid):
        return 400, Result.INVALID, str(exc)
    if isinstance(exc, NotAJob):
        return 404, Result.REFUSED, str(exc)
    if isinstance(exc, PoolBusy):
        return 503, Result.FAILED, f"{exc} Nothing was changed."
    if isinstance(exc, RedisError | OSError):
        return _redis_fault(exc)
    logger.error("action failed", exc_info=exc)
    return 500, Result.FAILED, f"The action failed ({type(exc).__name__}); see the server log."


def _redis_fault(exc: BaseException) -> tuple[int, str, str]:
    """Redis errors in words: what happened and whether anything may have changed."""
    said = str(exc)
    if isinstance(exc, ReadOnlyError) or "READONLY" in said:
        return 503, Result.FAILED, "Redis is a read-only replica (READONLY): nothing was changed."
    if isinstance(exc, OutOfMemoryError) or said.startswith("OOM") or " OOM " in said:
        return 503, Result.FAILED, f"Redis is out of memory (OOM): nothing was changed. Redis said: {said}"
    if isinstance(exc, RedisTimeoutError):
        return (
            503,
            Result.FAILED,
            ("Redis did not answer in time. The action may or may not have run: check before trying again."),
        )
    if isinstance(exc, RedisConnectionError | OSError):
        if "connecting" in said.lower():
            return 503, Result.FAILED, "Redis is unreachable: nothing was changed."
        return (
            503,
            Result.FAILED,
            ("The connection to Redis broke. The action may or may not have run: check before trying again."),
        )
    if "WRONGTYPE" in said:
        return (
            409,
            Result.FAILED,
            (
                "A key of this queue holds another type than BullMQ keeps there (another program wrote it);"
                f" BullMQ's script stopped. Redis said: {said}"
            ),
        )
    if said.startswith(("MOVED", "ASK")) or " MOVED " in said:
        return (
            502,
            Result.FAILED,
            f"This connection reached a Redis Cluster node; configure it as a cluster: {said}",
        )
    if isinstance(exc, NoScriptError):
        return 502, Result.FAILED, f"Redis lost BullMQ's script (NOSCRIPT) and it could not be loaded: {said}"
    if isinstance(exc, ResponseError):
        return 502, Result.FAILED, f"Redis refused the action: {said}"
    return 502, Result.FAILED, f"Redis failed: {said}"
