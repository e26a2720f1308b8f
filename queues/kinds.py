"""Which queues are Bull 3/4's (npm `bull`) rather than BullMQ's: discovery tells them apart by their keys
(docs/compatibility.md) and remembers the answer here, process-wide, for readers and writers to ask."""

from __future__ import annotations

from queues.models import QueueRef

# A set of at most the listed queues: discovery marks and unmarks each queue it confirms.
_BULL: set[QueueRef] = set()

# The keys of a Bull queue (besides its `id` counter) of which at least one exists while it holds jobs
# or is paused; a stray `<x>:<y>:id` string of another program has none of them.
BULL_STRUCTURES = (
    "wait",
    "paused",
    "active",
    "delayed",
    "completed",
    "failed",
    "priority",
    "meta-paused",
    "repeat",
)


def is_bull(queue: QueueRef) -> bool:
    """True when discovery found this queue to be one of Bull 3/4 (its keys, scripts and fields)."""
    return queue in _BULL


def mark(queue: QueueRef, bull: bool) -> None:
    """Remember what discovery found this queue to be."""
    if bull:
        _BULL.add(queue)
    else:
        _BULL.discard(queue)


def forget() -> None:
    """Forget every answer (tests; settings changed)."""
    _BULL.clear()
