"""The overview's data: every queue's counts, grouped by connection and prefix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import groupby

from django.utils.safestring import SafeString
from redis.exceptions import BusyLoadingError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard import registry
from dashboard.answers import LOADING
from dashboard.conf import get_config
from dashboard.live.hub import LiveView, ViewKind, get_hub
from dashboard.row_cache import RowCache
from dashboard.throughput import Sparkline, sparkline
from queues.counts import fetch_counts
from queues.events import EventWatcher
from queues.health import Verdict
from queues.messages import gettext_lazy
from queues.models import QueueCounts, QueueRef
from queues.states import STATES


@dataclass(frozen=True)
class GroupTotals:
    """Jobs per state over the queues of a connection and prefix that the census read."""

    queues: int
    counts: dict[str, int]


@dataclass(frozen=True)
class QueueGroup:
    """Queues sharing a connection and prefix, and their rendered table rows."""

    connection: str
    prefix: str
    rows: list[QueueCounts]
    # Each row's last hour for its sparkline (dashboard.throughput.SPARKLINES); a row without one shows
    # none.
    sparks: dict[QueueRef, Sparkline] = field(default_factory=dict)
    # Each row's health verdict (dashboard.health); None where it could not be judged.
    verdicts: dict[QueueRef, Verdict | None] = field(default_factory=dict)
    # Jobs per state over every queue of the group (not only the page's rows) and how many queues
    # that is, from the census; None when not given.
    totals: GroupTotals | None = None

    @property
    def html(self) -> list[SafeString]:
        """The rows as HTML, re-rendered only for queues whose counts, sparkline or health changed."""
        return [row_html(row, self.sparks.get(row.queue), self.verdicts.get(row.queue)) for row in self.rows]


# How long a page view keeps the events watcher following the overview's queues without a socket.
LEASE_SECONDS = 60.0

_ROWS = RowCache("bullmq_dashboard/partials/overview_row.html", size=5000)


def row_html(row: QueueCounts, spark: Sparkline | None = None, verdict: Verdict | None = None) -> SafeString:
    """One overview row, from the same partials the live updates push, with its sparkline and health
    verdict when given."""
    shown = sparkline(spark)
    key = (
        row.queue,
        tuple(row.counts.get(state, 0) for state in STATES),
        row.paused,
        row.problem,
        row.last_failed_at,
        row.failed_last_hour,
        shown,
        health_key(verdict),
    )
    return _ROWS.render(key, {"row": row, "states": STATES, "spark": shown, "verdict": verdict})


def health_key(verdict: Verdict | None) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """What a health cell shows of a verdict (its status and reasons' sentences), to key rendered rows."""
    if verdict is None:
        return None
    return verdict.verdict.value, tuple(
        (reason.code.value, str(reason.message)) for reason in verdict.reasons
    )


async def all_counts(
    queues: list[QueueRef], just_read: dict[QueueRef, QueueCounts] | None = None, follow: bool = True
) -> list[QueueCounts]:
    """Counts of these queues, in order.

    With live updates on, a page view leases the process's events watcher for these queues: counts
    of queues whose events stream has been quiet since they were last read come from it, so views
    (and viewers) cost Redis nothing more. The rest are read in one pipelined round trip per connection.
    """
    # Without `follow` (a list of every queue): read once, not followed for a minute after.
    watcher = await _leased_watcher(queues) if follow else None
    fresh = watcher.fresh_counts(queues) if watcher is not None else {}
    if watcher is None:
        # Rows this request has read already (the census's first read of them) are not read twice.
        # With the watcher they are: read after it tails their streams, they stay current for it.
        wanted = set(queues)
        fresh.update({queue: row for queue, row in (just_read or {}).items() if queue in wanted})
    missing = [queue for queue in queues if queue not in fresh]
    read_at = time.monotonic()
    fetched = await fetch_rows(missing)
    if watcher is not None:
        # Rows of a connection that did not answer are no counts: the next view reads them again.
        watcher.remember_counts([row for row in fetched if not row.error], read_at)
    by_queue = {**fresh, **{row.queue: row for row in fetched}}
    return [by_queue[queue] for queue in queues]


async def _leased_watcher(queues: list[QueueRef]) -> EventWatcher | None:
    """The watcher, following these queues (and only these) for LEASE_SECONDS."""
    if not get_config().live.enabled:
        return None
    return await get_hub().lease(LiveView(ViewKind.OVERVIEW, queues=tuple(queues)), LEASE_SECONDS)


async def fetch_rows(queues: list[QueueRef]) -> list[QueueCounts]:
    """One pipelined round trip per connection, connections in parallel. A connection that is down or
    too slow fails only its own rows (with the reason), unless every configured connection was asked
    and failed: then the error is raised, and the page answers as for a down Redis (a page holding
    only the rows of the one connection that is down, of several, shows them with the reason)."""
    by_alias: dict[str, list[QueueRef]] = {}
    for queue in queues:
        by_alias.setdefault(queue.connection, []).append(queue)
    results = await asyncio.gather(
        *(fetch_counts(registry.client(alias), members) for alias, members in by_alias.items()),
        return_exceptions=True,
    )
    faults = [result for result in results if isinstance(result, BaseException)]
    for fault in faults:
        if not isinstance(fault, RedisError | OSError):
            raise fault
    if faults and len(faults) == len(results) and set(by_alias) >= set(get_config().connections):
        raise faults[0]
    rows: list[QueueCounts] = []
    for members, result in zip(by_alias.values(), results, strict=True):
        if isinstance(result, BaseException):
            reason = unanswered(result)
            rows.extend(QueueCounts.failed(queue, reason) for queue in members)
        else:
            rows.extend(result)
    return rows


def unanswered(exc: BaseException) -> str:
    """Why a connection's counts are missing, as its rows say it."""
    if isinstance(exc, BusyLoadingError):
        return LOADING
    if isinstance(exc, RedisTimeoutError) and "connecting" not in str(exc).lower():
        return gettext_lazy("Redis did not answer in time: it is slow or busy.")
    if isinstance(exc, RedisConnectionError | OSError):
        return gettext_lazy("Redis is unreachable: %(error)s", error=str(exc) or type(exc).__name__)
    return gettext_lazy("Redis answered with an error: %(error)s", error=str(exc))


def group(
    rows: list[QueueCounts],
    keep_order: bool = False,
    sparks: dict[QueueRef, Sparkline] | None = None,
    verdicts: dict[QueueRef, Verdict | None] | None = None,
    group_totals: dict[tuple[str, str], GroupTotals] | None = None,
) -> list[QueueGroup]:
    """Rows grouped by (connection, prefix), in name order (in the order given with `keep_order`), with
    the sparklines of `sparks`, the health of `verdicts` and the totals of `group_totals` (over every
    queue of a group, not only those shown)."""
    sums = group_totals or {}
    if keep_order:
        ordered = sorted(rows, key=lambda row: (row.queue.connection, row.queue.prefix))
    else:
        ordered = sorted(rows, key=lambda row: (row.queue.connection, row.queue.prefix, row.queue.name))
    return [
        QueueGroup(
            connection,
            prefix,
            list(members),
            sparks or {},
            verdicts or {},
            sums.get((connection, prefix)),
        )
        for (connection, prefix), members in groupby(
            ordered, key=lambda row: (row.queue.connection, row.queue.prefix)
        )
    ]


@dataclass(frozen=True)
class OverviewSummary:
    """What the overview shows of every queue it may list: each group's totals, and the rows with
    failed jobs (the top error groups pick among them)."""

    groups: dict[tuple[str, str], GroupTotals]
    failing: list[QueueCounts]


def summarize(rows: Iterable[QueueCounts]) -> OverviewSummary:
    """The summary of these rows."""
    by_group: dict[tuple[str, str], list[QueueCounts]] = {}
    failing = []
    for row in rows:
        by_group.setdefault((row.queue.connection, row.queue.prefix), []).append(row)
        if row.counts.get("failed", 0) > 0:
            failing.append(row)
    groups = {key: GroupTotals(len(members), totals(members)) for key, members in by_group.items()}
    return OverviewSummary(groups, failing)


def totals(rows: list[QueueCounts]) -> dict[str, int]:
    """Jobs per state over all queues."""
    return {state: sum(row.counts.get(state, 0) for row in rows) for state in STATES}
