"""Every action runs as a task of its own that reports progress and always finishes its audit entry.

A request waits a few seconds for the task; if it is not done by then the answer is 202 with a URL that
shows its progress, and the task goes on in the server's event loop, one bounded batch at a time. A
request that is cancelled (the browser went away) never cancels the task: the change and its audit
entry complete either way. Operations live in this process only (a multi-process deployment shows
progress on the process that runs it; the result is in the audit log either way).
"""

from __future__ import annotations

import asyncio
import contextvars
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dashboard.answers import Answer
from queues.models import QueueRef

MAX_KEPT = 200


@dataclass
class Operation:
    """A running or finished action."""

    id: str
    action: str
    queue: QueueRef
    started: float = field(default_factory=time.time)
    progress: int = 0
    answer: Answer | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        """True once the task ended and its answer is known."""
        return self.answer is not None

    async def report(self, progress: int) -> None:
        """Progress callback for QueueWriter batch methods."""
        self.progress = progress


_operations: dict[str, Operation] = {}


def start(action: str, queue: QueueRef, run: Callable[[Operation], Awaitable[Answer]]) -> Operation:
    """Run `run` in the background; it must record its own audit entry and return the answer."""
    operation = Operation(secrets.token_urlsafe(16), action, queue)

    async def runner() -> None:
        operation.answer = await run(operation)

    # A fresh context: the task outlives the request, whose thread-sensitive executor it must not use.
    operation.task = asyncio.get_running_loop().create_task(runner(), context=contextvars.Context())
    _operations[operation.id] = operation
    while len(_operations) > MAX_KEPT:
        oldest = next(iter(_operations))
        if not _operations[oldest].finished:
            break
        del _operations[oldest]
    return operation


async def wait(operation: Operation, seconds: float) -> bool:
    """Wait up to `seconds` for an operation; True if it finished. The task is never cancelled, not
    even when the waiting request is."""
    if operation.task is None:
        return operation.finished
    done, _ = await asyncio.wait({operation.task}, timeout=seconds)
    return bool(done) and operation.finished


def get(operation_id: str) -> Operation | None:
    """A known operation."""
    return _operations.get(operation_id)


async def wait_all() -> None:
    """Let every running operation finish (tests and shutdown)."""
    tasks = [op.task for op in _operations.values() if op.task is not None and not op.task.done()]
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
