"""Jobs completed and failed per minute, from the difference between two reads of the counts.

BullMQ keeps no rate unless workers run with `metrics`, so the live view measures its own: the growth of
the completed and failed sets between two refreshes. A set that shrank (a clean, `removeOnComplete`
trimming it to a fixed size) counts as no growth, so such queues show less than they do.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.terminal.reading import Snapshot
from queues.models import QueueRef


@dataclass(frozen=True)
class Rate:
    """Jobs a minute that finished in a queue between two reads."""

    completed: float
    failed: float


def rates(previous: Snapshot | None, current: Snapshot) -> dict[QueueRef, Rate]:
    """Per queue read in both snapshots (without error), its completed and failed jobs a minute."""
    if previous is None or current.at <= previous.at:
        return {}
    minutes = (current.at - previous.at) / 60
    before = {row.queue: row.counts for row in previous.rows if not row.error}
    found: dict[QueueRef, Rate] = {}
    for row in current.rows:
        old = before.get(row.queue)
        if row.error or old is None:
            continue
        completed = max(row.counts.get("completed", 0) - old.get("completed", 0), 0)
        failed = max(row.counts.get("failed", 0) - old.get("failed", 0), 0)
        found[row.queue] = Rate(completed / minutes, failed / minutes)
    return found
