"""Error groups for the pages: settings (`BULLMQ_DASHBOARD["ERROR_GROUPS"]`), one queue's groups, the
groups of the queues with most failures, and the overview's bounded "top error groups"."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from dashboard import registry
from dashboard.conf import DEFAULTS, get_config
from queues.error_groups import CACHE, ErrorGroup, ErrorGroups, error_groups, scan_failures
from queues.models import QueueCounts, QueueRef


@dataclass(frozen=True)
class GroupSettings:
    """`BULLMQ_DASHBOARD["ERROR_GROUPS"]`, each value falling back to its default when not usable."""

    scan_limit: int
    cache_seconds: float
    max_queues: int
    overview_queues: int
    overview_scan_limit: int


def _positive(options: dict[str, Any], name: str) -> int:
    default = int(DEFAULTS["ERROR_GROUPS"][name])
    try:
        value = int(options.get(name, default))
    except (TypeError, ValueError):
        return default
    return value if value >= 0 else default


def group_settings() -> GroupSettings:
    """The error group settings, merged key by key over the defaults."""
    given = get_config().raw.get("ERROR_GROUPS")
    options = given if isinstance(given, dict) else {}
    return GroupSettings(
        scan_limit=max(1, _positive(options, "SCAN_LIMIT")),
        cache_seconds=float(_positive(options, "CACHE_SECONDS")),
        max_queues=max(1, _positive(options, "MAX_QUEUES")),
        overview_queues=_positive(options, "OVERVIEW_QUEUES"),
        overview_scan_limit=max(1, _positive(options, "OVERVIEW_SCAN_LIMIT")),
    )


async def queue_groups(queue: QueueRef) -> ErrorGroups:
    """One queue's groups (cached while its failed set is unchanged)."""
    settings = group_settings()
    return await error_groups(
        registry.client(queue.connection), queue, settings.scan_limit, settings.cache_seconds
    )


async def resolve_group(queue: QueueRef, fingerprint: str) -> ErrorGroups:
    """A fresh scan of the queue's failures that collects the ids of the group `fingerprint`."""
    groups, _signature = await scan_failures(
        registry.client(queue.connection), queue, group_settings().scan_limit, collect=fingerprint
    )
    return groups


@dataclass(frozen=True)
class QueueGroup:
    """One error group and the queue it belongs to (for lists across queues)."""

    queue: QueueRef
    group: ErrorGroup


@dataclass(frozen=True)
class CrossQueueGroups:
    """Groups of several queues, most jobs first; which queues were grouped, which were left out."""

    groups: list[QueueGroup]
    results: list[ErrorGroups]
    left_out: list[QueueRef]
    failed: list[tuple[QueueRef, str]]
    scan_limit: int


def most_failed(rows: list[QueueCounts], limit: int) -> tuple[list[QueueRef], list[QueueRef]]:
    """The `limit` queues with most failed jobs (those with none left out), and the others with some."""
    ranked = sorted(
        (row for row in rows if row.counts.get("failed", 0) > 0),
        key=lambda row: (-row.counts.get("failed", 0), row.queue),
    )
    queues = [row.queue for row in ranked]
    return queues[:limit], queues[limit:]


async def across_queues(rows: list[QueueCounts], max_queues: int, scan_limit: int) -> CrossQueueGroups:
    """The groups of the `max_queues` queues with most failures, each from its newest `scan_limit`
    failed jobs (through the cache); a queue that cannot be read is listed with the reason."""
    chosen, left_out = most_failed(rows, max_queues)
    ttl = group_settings().cache_seconds

    async def one(queue: QueueRef) -> ErrorGroups:
        return await error_groups(registry.client(queue.connection), queue, scan_limit, ttl)

    results = await asyncio.gather(*(one(queue) for queue in chosen), return_exceptions=True)
    found: list[ErrorGroups] = []
    failed: list[tuple[QueueRef, str]] = []
    for queue, result in zip(chosen, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            failed.append((queue, str(result)))
        else:
            found.append(result)
    groups = [QueueGroup(result.queue, group) for result in found for group in result.groups]
    groups.sort(key=lambda item: (-item.group.count, -(item.group.last_seen or 0)))
    return CrossQueueGroups(groups, found, left_out, failed, scan_limit)


async def overview_groups(rows: list[QueueCounts], shown: int = 5) -> CrossQueueGroups:
    """The overview's top groups: only the OVERVIEW_QUEUES queues with most failures, each from its
    newest OVERVIEW_SCAN_LIMIT failures, served from the cache while it is younger than CACHE_SECONDS
    (no Redis command at all then)."""
    settings = group_settings()
    chosen, left_out = most_failed(rows, settings.overview_queues)
    cached = [CACHE.fresh(queue, settings.overview_scan_limit, settings.cache_seconds) for queue in chosen]
    if all(result is not None for result in cached):
        found = [result for result in cached if result is not None]
        groups = [QueueGroup(result.queue, group) for result in found for group in result.groups]
        groups.sort(key=lambda item: (-item.group.count, -(item.group.last_seen or 0)))
        summary = CrossQueueGroups(groups, found, left_out, [], settings.overview_scan_limit)
    else:
        queue_rows = [row for row in rows if row.queue in chosen]
        summary = await across_queues(queue_rows, settings.overview_queues, settings.overview_scan_limit)
        summary = CrossQueueGroups(
            summary.groups, summary.results, left_out, summary.failed, summary.scan_limit
        )
    return CrossQueueGroups(
        summary.groups[:shown], summary.results, summary.left_out, summary.failed, summary.scan_limit
    )
