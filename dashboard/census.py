"""The overview's census: the counts of every queue, kept per process and read a few queues a second.

A page of the overview reads and follows only its own rows. Which queues come first (those needing
attention), the sort by a column, the "failing" and "needs attention" filters and the totals span every
queue, so they are taken from the census instead: rows as last read, each at most one census pass old
(`OVERVIEW_CENSUS_RATE` queues a second, while someone views the overview and for a minute after
the last view). A view reads itself only the rows the census has never read, at most
`OVERVIEW_CENSUS_READS` of them: on a first view of 10,000 queues the rest follow in the background
and the page says how many are still unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from redis.exceptions import RedisError

from dashboard import registry
from dashboard.conf import get_config
from dashboard.live.hub import get_hub
from queues.models import QueueCounts, QueueRef

logger = logging.getLogger("bullmq_dashboard.census")

# How long the census keeps reading after the last overview view or socket.
LEASE_SECONDS = 60.0
# A row is read again by the census at most this often (with few queues the rate would otherwise
# re-read each of them every second).
REREAD_SECONDS = 30.0
# What views derive from the rows is kept for at most this many filters and orders at a time.
MAX_DERIVED = 32
# How long a view's "oldest row read at" is kept.
OLDEST_SECONDS = 1.0
# What views derive is computed again at least this often, even when no row changed.
DERIVED_SECONDS = 30.0

T = TypeVar("T")


class Census:
    """Every queue's last read counts, and the paced background reading that keeps them current."""

    def __init__(self) -> None:
        self._rows: dict[QueueRef, QueueCounts] = {}
        self._read_at: dict[QueueRef, float] = {}
        self._until = 0.0
        self._task: asyncio.Task[None] | None = None
        self._cursor = 0
        # Bumped whenever a row shows something else: what views derive from every row (the order of
        # 10,000 queues, the group totals: 70 ms a view) is kept until then.
        self.version = 0
        self._derived: dict[Hashable, tuple[float, Any]] = {}
        self._derived_version = 0
        self._oldest: dict[tuple[QueueRef, ...], tuple[float, float | None]] = {}

    def rows(self, queues: Iterable[QueueRef]) -> dict[QueueRef, QueueCounts]:
        """The rows the census holds of these queues."""
        return {queue: self._rows[queue] for queue in queues if queue in self._rows}

    def unread(self, queues: Iterable[QueueRef]) -> list[QueueRef]:
        """Of these queues, those the census never read, in the order given."""
        return [queue for queue in queues if queue not in self._rows]

    def oldest(self, queues: Iterable[QueueRef]) -> float | None:
        """When the longest-unread row of these queues was read (time.monotonic), None when none was."""
        times = [self._read_at[queue] for queue in queues if queue in self._read_at]
        return min(times) if times else None

    def unread_of(self, fingerprint: tuple[QueueRef, ...]) -> list[QueueRef]:
        """unread() of a view's list of queues, kept until a row changes (a row read for the first
        time is one): a pass over 10,000 queues each view otherwise."""
        return self.derived(("unread", fingerprint), lambda: self.unread(fingerprint))

    def oldest_of(self, fingerprint: tuple[QueueRef, ...]) -> float | None:
        """oldest() of a view's list of queues, kept for OLDEST_SECONDS: rows are read again every
        second without changing what they show, and the page says the age in whole seconds."""
        now = time.monotonic()
        kept = self._oldest.get(fingerprint)
        if kept is None or now - kept[0] >= OLDEST_SECONDS:
            if len(self._oldest) >= MAX_DERIVED:
                self._oldest.clear()
            kept = self._oldest[fingerprint] = (now, self.oldest(fingerprint))
        return kept[1]

    def remember(self, rows: Iterable[QueueCounts], read_at: float) -> None:
        """Rows read at `read_at` (by a view or the census itself). A row that could not be read (its
        connection is down, a key of another program's type) is kept too, with its reason: it is no
        longer "never read", so neither views nor the census try it again before its turn comes round,
        and the order puts it with the queues that need attention."""
        for row in rows:
            if self._read_at.get(row.queue, float("-inf")) <= read_at:
                if _shown(self._rows.get(row.queue)) != _shown(row):
                    self.version += 1
                self._rows[row.queue] = row
                self._read_at[row.queue] = read_at

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """What `compute` derives from the rows, kept under `key` until a row changes, and at most
        DERIVED_SECONDS (the order also depends on the time: work with no completion lately)."""
        if self._derived_version != self.version:
            self._derived.clear()
            self._derived_version = self.version
        now = time.monotonic()
        kept = self._derived.get(key)
        if kept is None or now - kept[0] >= DERIVED_SECONDS:
            if len(self._derived) >= MAX_DERIVED:
                self._derived.clear()
            kept = self._derived[key] = (now, compute())
        found: T = kept[1]
        return found

    def forget_except(self, queues: Iterable[QueueRef], keep: set[str] | None = None) -> None:
        """Drop the rows of queues that are gone (obliterated, or no longer listed), except those of
        the connections in `keep`."""
        listed = set(queues)
        kept = keep or set()
        for queue in [q for q in self._rows if q not in listed and q.connection not in kept]:
            self.version += 1
            del self._rows[queue]
            self._read_at.pop(queue, None)

    async def fill(self, queues: tuple[QueueRef, ...], budget: int) -> dict[QueueRef, QueueCounts]:
        """Read at most `budget` of these queues' rows that the census never read, in one pipeline per
        connection, and return them (the view shows those of its page without reading them again). When
        Redis cannot be reached at all, nothing is read: the page's own read says so."""
        from dashboard.overview import fetch_rows

        unread = self.unread_of(queues)[:budget]
        if not unread:
            return {}
        read_at = time.monotonic()
        try:
            rows = await fetch_rows(unread)
        except (RedisError, OSError):
            return {}
        self.remember(rows, read_at)
        return {row.queue: row for row in rows}

    def keep_reading(self) -> None:
        """Keep the background reading going for LEASE_SECONDS more (a view or an open socket)."""
        self._until = time.monotonic() + LEASE_SECONDS
        if not get_config().census_rate:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._read_loop(), name="overview-census")

    async def stop(self) -> None:
        """Stop the background reading (tests and shutdown); the rows are kept."""
        task, self._task = self._task, None
        self._until = 0.0
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read_loop(self) -> None:
        # A second after the view that started it, which reads what it needs itself meanwhile.
        await asyncio.sleep(1.0)
        while time.monotonic() < self._until or get_hub().overview_viewers:
            started = time.monotonic()
            try:
                await self.step(get_config().census_rate)
            except (RedisError, OSError) as exc:
                logger.warning("the overview census could not read: %s", exc)
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    async def step(self, count: int) -> int:
        """Read at most `count` rows: those never read first, then round the list of every queue,
        skipping rows read within the last REREAD_SECONDS (a few queues are not re-read every second).
        Returns how many were read."""
        from dashboard.overview import fetch_rows

        listed, failed = await registry.reachable_queues()
        queues = list(dict.fromkeys(listed))
        # The rows of a connection that could not be listed are kept (with their reasons) until it can.
        self.forget_except(queues, keep=set(failed))
        now = time.monotonic()
        chosen = self.unread(queues)[:count]
        looked = 0
        while len(chosen) < count and looked < len(queues):
            self._cursor %= len(queues)
            queue = queues[self._cursor]
            self._cursor += 1
            looked += 1
            if now - self._read_at.get(queue, float("-inf")) >= REREAD_SECONDS and queue not in chosen:
                chosen.append(queue)
        if not chosen:
            return 0
        read_at = time.monotonic()
        rows = await fetch_rows(chosen)
        before = {row.queue: self._rows.get(row.queue) for row in rows}
        self.remember(rows, read_at)
        changed = {
            row.queue: row for row in rows if not row.error and _shown(before[row.queue]) != _shown(row)
        }
        if changed and get_config().live.enabled:
            from dashboard.overview_page import looks_troubled

            troubled = {queue for queue, row in changed.items() if looks_troubled(row)}
            await get_hub().publish_census(changed, troubled)
        return len(chosen)


def _shown(row: QueueCounts | None) -> object:
    """What an overview row shows of counts (None for a queue never read)."""
    if row is None:
        return None
    return (row.counts, row.paused, row.broken_keys, row.last_failed_at, row.failed_last_hour, row.error)


# One census per event loop, as the live hub: daphne runs one loop per process; tests run one loop
# (and one Redis) per test.
_censuses: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Census] = weakref.WeakKeyDictionary()


def get_census() -> Census:
    """The census of the running event loop."""
    loop = asyncio.get_running_loop()
    census = _censuses.get(loop)
    if census is None:
        census = _censuses[loop] = Census()
    return census
