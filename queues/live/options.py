"""How often and how much the events watcher reads.

These are the library's defaults; the dashboard's `BULLMQ_DASHBOARD["LIVE"]` takes its own from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from queues.jobs import ReadLimits


@dataclass(frozen=True)
class WatcherOptions:
    """How often and how much the watcher reads."""

    # Watched jobs are re-read at most once per this many seconds.
    interval: float = 1.0
    # A queue's counts are re-read at most once per this many seconds (and never less often than
    # `interval`): a count change reaches the page within about half of it also when the queue's
    # events come faster (bench/event_rate.py: 20 events/s, p50 487 ms at 1.0 s, about 190 ms at 0.3 s).
    count_interval: float = 0.3
    # Blocking reads of the events streams are at least this many seconds apart while events keep
    # coming, so that a busy stream is read in batches (the commands this saves pay for the more
    # frequent counts); the first event after a quiet spell is read at once.
    gather: float = 0.1
    # Viewed queues are re-counted this often even without events (heals trimmed or missed events).
    resync_interval: float = 10.0
    # At most this many queues are counted, and their events streams tailed, per process.
    max_queues: int = 2000
    # A blocking XREAD waits this long (ms) before it is re-issued, so a changed set of streams is
    # picked up.
    block_ms: int = 1000
    # Entries read per stream by one projected read.
    batch: int = 500
    limits: ReadLimits = field(default_factory=ReadLimits)
    # Retries after a failure wait from about `backoff_min` up to `backoff_max` seconds.
    backoff_min: float = 0.25
    backoff_max: float = 10.0
