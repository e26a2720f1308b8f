"""The overview's data: every queue's counts, grouped by connection and prefix."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from itertools import groupby

from dashboard import registry
from queues.counts import fetch_counts
from queues.models import QueueCounts, QueueRef
from queues.states import STATES


@dataclass(frozen=True)
class QueueGroup:
    """Queues sharing a connection and prefix."""

    connection: str
    prefix: str
    rows: list[QueueCounts]


async def all_counts(queues: list[QueueRef]) -> list[QueueCounts]:
    """Counts of all queues: one pipelined round trip per connection, connections in parallel."""
    by_alias: dict[str, list[QueueRef]] = {}
    for queue in queues:
        by_alias.setdefault(queue.connection, []).append(queue)
    results = await asyncio.gather(
        *(fetch_counts(registry.client(alias), members) for alias, members in by_alias.items())
    )
    return [counts for batch in results for counts in batch]


def group(rows: list[QueueCounts]) -> list[QueueGroup]:
    """Rows grouped by (connection, prefix), in name order."""
    ordered = sorted(rows, key=lambda row: (row.queue.connection, row.queue.prefix, row.queue.name))
    return [
        QueueGroup(connection, prefix, list(members))
        for (connection, prefix), members in groupby(
            ordered, key=lambda row: (row.queue.connection, row.queue.prefix)
        )
    ]


def totals(rows: list[QueueCounts]) -> dict[str, int]:
    """Jobs per state over all queues."""
    return {state: sum(row.counts.get(state, 0) for row in rows) for state in STATES}
