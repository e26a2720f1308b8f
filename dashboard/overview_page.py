"""Which queues one page of the overview shows: picked among every matching queue by the census's
rows (dashboard/census.py), so a page costs the reads of its own rows whatever Redis holds.

The order, without a sort column: within each connection and prefix, the queues that look like they
need attention (failed jobs in the last hour, paused, a backlog nobody takes, work but no job completed
lately, a key another program broke) first, then the others, each by name; queues the census has not
read yet come last. The page view and its socket pick the page the same way, so the socket follows
exactly the rows shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dashboard.census import Census, get_census
from dashboard.conf import get_config
from dashboard.health import health_settings, queue_verdicts
from dashboard.overview_order import OverviewOrder
from queues.health import Verdict
from queues.models import QueueCounts, QueueRef


@dataclass(frozen=True)
class OverviewPage:
    """One page of the overview: its queues, and what the census knew when they were picked."""

    shown: list[QueueRef]
    number: int
    pages: int
    # Queues matching the filter text (and the user's permissions), and how many of them pass the
    # page's filters (failing, needs attention) by what the census knows.
    matching: int
    listed: int
    # Matching queues the census has not read: not ordered yet, not in the totals or filters.
    unread: int
    verdicts: dict[QueueRef, Verdict | None] = field(default_factory=dict)
    census_read_at: float | None = None
    # Every queue listed, on this page and the others, in order.
    ordered: list[QueueRef] = field(default_factory=list)
    # Rows this pick read (queues the census had never read): the view does not read them again.
    just_read: dict[QueueRef, QueueCounts] = field(default_factory=dict)
    # With `?attention=1`: queues read but not judged (over OVERVIEW_MAX_QUEUES), so not listed.
    unjudged: int = 0
    # The matching queues, as the key what views derive from them is kept under by the census.
    fingerprint: tuple[QueueRef, ...] = ()


@dataclass(frozen=True)
class OverviewPaging:
    """What the overview's pager and census note show of a page."""

    page: OverviewPage
    order: OverviewOrder

    @property
    def first(self) -> int:
        """The position of the page's first row among the queues listed (1-based)."""
        return (self.page.number - 1) * get_config().overview_page_size + 1 if self.page.shown else 0

    @property
    def last(self) -> int:
        """The position of the page's last row."""
        return self.first + len(self.page.shown) - 1 if self.page.shown else 0

    @property
    def previous_url(self) -> str | None:
        """The page before, None on the first."""
        return self.order.url(page=self.page.number - 1) if self.page.number > 1 else None

    @property
    def next_url(self) -> str | None:
        """The page after, None on the last."""
        return self.order.url(page=self.page.number + 1) if self.page.number < self.page.pages else None

    @property
    def census_age(self) -> int | None:
        """Seconds since the oldest row the order and totals rest on was read."""
        if self.page.census_read_at is None:
            return None
        return max(0, round(time.monotonic() - self.page.census_read_at))


def looks_troubled(row: QueueCounts, now_ms: int | None = None, window_ms: float | None = None) -> bool:
    """What the census's counts alone say needs attention: failures in the last hour, paused, a
    backlog with nothing active, work but no completion within the health window (HEALTH["WINDOW"];
    judged only when completed jobs are kept), a key of the wrong type, or no answer."""
    counts = row.counts
    backlog = counts.get("waiting", 0) + counts.get("prioritized", 0)
    active = counts.get("active", 0)
    return bool(
        row.error
        or row.broken_keys
        or row.paused
        or (row.failed_last_hour or 0) > 0
        or (backlog > 0 and not active)
        or (backlog + active > 0 and not completed_lately(row, now_ms, window_ms))
    )


def completed_lately(row: QueueCounts, now_ms: int | None = None, window_ms: float | None = None) -> bool:
    """A job completed within the health window, or nothing can tell (no completed job is kept)."""
    if row.last_completed_at is None:
        return True
    now = int(time.time() * 1000) if now_ms is None else now_ms
    window = attention_window_ms() if window_ms is None else window_ms
    return now - row.last_completed_at <= window


def attention_window_ms() -> float:
    """How long work may go without a completion before the queue is ordered with the troubled."""
    return health_settings().thresholds.window_seconds * 1000


async def pick_page(queues: list[QueueRef], order: OverviewOrder, number: int) -> OverviewPage:
    """Page `number` (1-based, past the last page: the last) of these queues, in `order`."""
    config = get_config()
    census = get_census()
    census.keep_reading()
    # The queues themselves, not a hash of them: two users' lists must never share a kept order.
    fingerprint = tuple(queues)
    just_read = await census.fill(fingerprint, config.census_reads)
    verdicts: dict[QueueRef, Verdict | None] = {}
    unjudged = 0
    if order.attention:
        known = census.rows(queues)
        read = [known[queue] for queue in queues if queue in known]
        unjudged = max(0, len(read) - config.overview_max_queues)
        # The verdicts of the rows read, at most OVERVIEW_MAX_QUEUES of them (each queue's health is
        # read at most once per HEALTH["CACHE_SECONDS"]).
        judged = read[: config.overview_max_queues]
        verdicts = await queue_verdicts([row.queue for row in judged], known)
        ordered = _grouped([row.queue for row in order.apply(judged, verdicts)])
    else:
        # The same queues in the same order, until a census row changes: the rows are gathered and
        # sorted again only then, not on each view.
        key = ("order", fingerprint, order)
        ordered = census.derived(key, lambda: _ordered(queues, order, census))
    size = config.overview_page_size
    pages = max(1, -(-len(ordered) // size))
    number = min(max(1, number), pages)
    return OverviewPage(
        shown=ordered[(number - 1) * size : number * size],
        number=number,
        pages=pages,
        matching=len(queues),
        listed=len(ordered),
        unread=len(census.unread_of(fingerprint)),
        verdicts=verdicts,
        census_read_at=census.oldest_of(fingerprint),
        ordered=ordered,
        just_read=just_read,
        unjudged=unjudged,
        fingerprint=fingerprint,
    )


def _ordered(queues: list[QueueRef], order: OverviewOrder, census: Census) -> list[QueueRef]:
    """The queues in `order` (not "needs attention", which depends on health read apart), by the rows
    the census holds."""
    known = census.rows(queues)
    now, window = int(time.time() * 1000), attention_window_ms()
    if order.column or order.failing:
        ordered = [row.queue for row in order.apply([known[q] for q in queues if q in known])]
        if order.column and not order.failing:
            ordered += census.unread(queues)  # no value yet: last, as rows without one
        return _grouped(ordered)
    return sorted(
        queues,
        key=lambda queue: (
            queue.connection,
            queue.prefix,
            _rank(known.get(queue), now, window),
            queue.name.casefold(),
            queue.name,
        ),
    )


def _rank(row: QueueCounts | None, now_ms: int, window_ms: float) -> int:
    if row is None:
        return 2
    return 0 if looks_troubled(row, now_ms, window_ms) else 1


def _grouped(queues: list[QueueRef]) -> list[QueueRef]:
    """The order given, within each connection and prefix (stable: the filter's order is kept)."""
    return sorted(queues, key=lambda queue: (queue.connection, queue.prefix))
