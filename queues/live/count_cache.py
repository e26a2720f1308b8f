"""The latest counts of every counted queue: served to page views while they are current, and
compared with the previous refresh to tell which queues changed."""

from __future__ import annotations

import time
from collections.abc import Callable

from queues.live.options import WatcherOptions
from queues.models import QueueCounts, QueueRef

# A quiet viewed queue is re-counted this many resync intervals apart (Refresher._resync_slice): 50
# quiet rows on an open overview were 70 Redis commands a second at every 10 s. Its counts serve views
# for one more interval than that, so that a view between two re-counts reads nothing.
QUIET_RESYNC_FACTOR = 3.0

# What a refresh compares of a queue's counts: counts by state, the paused flag, the problem, and the
# failure recency (the failures of the last hour go down without an event, so resyncs catch that).
Signature = tuple[tuple[tuple[str, int], ...], bool, str, int | None, int | None]


class CountCache:
    """Counts by queue with the time they were read, and what the previous refresh saw."""

    def __init__(self, options: WatcherOptions) -> None:
        self._options = options
        self._latest: dict[QueueRef, tuple[QueueCounts, float]] = {}
        self._signatures: dict[QueueRef, Signature] = {}

    def fresh(self, queues: list[QueueRef], quiet: Callable[[QueueRef], bool]) -> dict[QueueRef, QueueCounts]:
        """The counts known to be current: read within the interval, or read since the last event of a
        `quiet` queue (its stream is tailed and no event touched it since: a later change would have)."""
        now = time.monotonic()
        fresh: dict[QueueRef, QueueCounts] = {}
        for queue in queues:
            known = self._latest.get(queue)
            if known is None:
                continue
            row, read_at = known
            if now - read_at < self._options.interval or (
                quiet(queue) and now - read_at < self._options.resync_interval * (QUIET_RESYNC_FACTOR + 1)
            ):
                fresh[queue] = row
        return fresh

    def remember(self, rows: list[QueueCounts], read_at: float, tailed: Callable[[QueueRef], bool]) -> None:
        """Keep counts read elsewhere (at `read_at`, after the stream was tailed) unless newer ones are
        known; counts of a queue whose stream is not tailed could not be trusted later."""
        for row in rows:
            known = self._latest.get(row.queue)
            if tailed(row.queue) and (known is None or known[1] < read_at):
                self._latest[row.queue] = (row, read_at)

    def record(self, row: QueueCounts, read_at: float) -> bool:
        """Keep counts the watcher read; True when they differ from the previous refresh's (or are the
        first)."""
        self._latest[row.queue] = (row, read_at)
        signature = (
            tuple(sorted(row.counts.items())),
            row.paused,
            row.problem,
            row.last_failed_at,
            row.failed_last_hour,
        )
        if self._signatures.get(row.queue) == signature:
            return False
        self._signatures[row.queue] = signature
        return True

    def forget(self, queue: QueueRef) -> None:
        """Drop what is known of a queue no longer followed."""
        self._latest.pop(queue, None)
        self._signatures.pop(queue, None)
