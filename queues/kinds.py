"""Which queues are Bull 3/4's (npm `bull`) rather than BullMQ's: discovery tells them apart by their keys
(docs/compatibility.md) and remembers the answer here, process-wide, for readers and writers to ask."""

from __future__ import annotations

from queues.models import QueueRef

# At most the listed queues: discovery marks and unmarks each queue it confirms.
_BULL: set[QueueRef] = set()
# Queues holding keys only Bull writes and keys only BullMQ writes (both libraries wrote to them: a
# BullMQ Queue opened on a Bull queue's name, a Bull client on a BullMQ queue's): read, never acted on.
_MIXED: set[QueueRef] = set()

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
# Keys, with their type, that only Bull writes (BullMQ keeps prioritized jobs in `prioritized` and its
# paused flag in `meta`) ...
BULL_ONLY = (("meta-paused", "string"), ("priority", "zset"))
# ... and that only BullMQ writes (Bull publishes its events, and has no markers). Types are asked, not
# existence: a job whose custom id is one of these names is a hash, and says nothing of the library.
BULLMQ_ONLY = (("events", "stream"), ("marker", "zset"), ("prioritized", "zset"))


def is_bull(queue: QueueRef) -> bool:
    """True when BullMQ's scripts must not write to this queue: discovery found it to be Bull 3/4's (its
    keys, scripts and fields), or to hold keys of both libraries (`is_mixed`), on which Bull's writer
    refuses every action."""
    return queue in _BULL or queue in _MIXED


def is_mixed(queue: QueueRef) -> bool:
    """True when discovery found keys that only Bull writes beside keys that only BullMQ writes."""
    return queue in _MIXED


def mark(queue: QueueRef, bull: bool, mixed: bool = False) -> None:
    """Remember what discovery found this queue to be."""
    for kind, member in ((_BULL, bull and not mixed), (_MIXED, mixed)):
        if member:
            kind.add(queue)
        else:
            kind.discard(queue)


def forget() -> None:
    """Forget every answer (tests; settings changed)."""
    _BULL.clear()
    _MIXED.clear()
