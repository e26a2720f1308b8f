"""Attacks on the issue-17 scale changes (quiet resync, named-tuple QueueRef, census caches, exact remove)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from queues.live.count_cache import CountCache
from queues.live.interest import Interest, JobRef, Viewers
from queues.live.options import WatcherOptions
from queues.live.pending import PendingWork
from queues.live.reachability import Reachability
from queues.live.refresh import Refresher
from queues.models import QueueCounts, QueueRef

EMAIL = QueueRef("default", "bull", "email")


async def _noop(*_args: Any) -> None:
    return None


async def test_an_event_on_a_queue_tailed_only_for_a_watched_job_makes_its_kept_counts_stale() -> None:
    """The overview counted `email` (kept counts), then closed while a job page of `email` stays open:
    its stream is still tailed, so the queue is "quiet" unless an event marks it. A job author's event
    then arrives; the refresh drops the mark (the queue is no longer counted), and page views were
    served the old counts as current for QUIET_RESYNC_FACTOR + 1 resync intervals (40 s) though the
    stream said they changed."""
    options = WatcherOptions()
    pending = PendingWork()
    viewers = Viewers(["default"], options.max_queues)
    counts = CountCache(options)
    refresher = Refresher(
        {},
        options,
        viewers,
        pending,
        counts,
        Reachability(pending),
        _noop,
        _noop,
        asyncio.Event(),
        tailed=lambda queue: True,
    )
    overview = Interest(queues=(EMAIL,))
    viewers.add(overview)
    # Counted a little over the short interval ago (well within the quiet serving time).
    counts.record(QueueCounts(EMAIL, {"waiting": 1}, False), time.monotonic() - 2 * options.interval)
    viewers.remove(overview)
    viewers.add(Interest(jobs=(JobRef(EMAIL, "j1"),)))  # the job page: tailed, not counted
    pending.queues.add(EMAIL)  # the stream said the queue changed (a job added)

    def quiet(queue: QueueRef) -> bool:
        return queue not in pending.queues

    assert counts.fresh([EMAIL], quiet) == {}  # marked: not served
    await refresher._refresh(False, False)  # nothing counted is due: no Redis read
    assert counts.fresh([EMAIL], quiet) == {}, "counts older than an event served as current"
