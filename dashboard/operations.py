"""Long actions (retry all, promote all, clean, bulk) run as background tasks that report progress.

A request waits a few seconds for the task; if it is not done by then the answer is 202 with a URL that
shows its progress, and the task goes on in the server's event loop, one bounded batch at a time.
Operations live in this process only (a multi-process deployment shows progress on the process that
runs it; the result is in the audit log either way).
"""

from __future__ import annotations

import asyncio
import contextvars
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from queues.actions import Outcome

MAX_KEPT = 200


@dataclass
class Operation:
    """A running or finished long action."""

    id: str
    action: str
    queue_key: str
    started: float = field(default_factory=time.time)
    progress: int = 0
    outcome: Outcome | None = None
    error: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        """True once the task ended, well or not."""
        return self.outcome is not None or bool(self.error)

    async def report(self, progress: int) -> None:
        """Progress callback for QueueWriter batch methods."""
        self.progress = progress


_operations: dict[str, Operation] = {}


def start(
    action: str,
    queue_key: str,
    work: Callable[[Operation], Awaitable[Outcome]],
    on_finish: Callable[[Operation], Awaitable[None]],
) -> Operation:
    """Run `work` in the background; `on_finish` records the result (audit) whatever happens."""
    operation = Operation(secrets.token_urlsafe(12), action, queue_key)

    async def run() -> None:
        try:
            operation.outcome = await work(operation)
        except Exception as exc:  # reported to the user and the audit log, never lost
            operation.error = f"{type(exc).__name__}: {exc}"
        finally:
            await on_finish(operation)

    # A fresh context: the task outlives the request, whose thread-sensitive executor it must not use.
    operation.task = asyncio.get_running_loop().create_task(run(), context=contextvars.Context())
    _operations[operation.id] = operation
    while len(_operations) > MAX_KEPT:
        oldest = next(iter(_operations))
        if not _operations[oldest].finished:
            break
        del _operations[oldest]
    return operation


async def wait(operation: Operation, seconds: float) -> bool:
    """Wait up to `seconds` for an operation; True if it finished (the task is never cancelled)."""
    if operation.task is None:
        return operation.finished
    done, _ = await asyncio.wait({operation.task}, timeout=seconds)
    return bool(done)


def get(operation_id: str) -> Operation | None:
    """A known operation."""
    return _operations.get(operation_id)


async def wait_all() -> None:
    """Let every running operation finish (tests and shutdown)."""
    tasks = [op.task for op in _operations.values() if op.task is not None and not op.task.done()]
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
