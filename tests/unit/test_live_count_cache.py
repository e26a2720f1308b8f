"""The watcher's count cache: which counts a page view may take, and which refresh saw a change."""

from __future__ import annotations

import time

from queues.live.count_cache import CountCache
from queues.live.options import WatcherOptions
from queues.models import QueueCounts, QueueRef

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
OPTIONS = WatcherOptions(interval=1.0, resync_interval=10.0)


def counts(queue: QueueRef, waiting: int, paused: bool = False) -> QueueCounts:
    return QueueCounts(queue, {"waiting": waiting, "active": 0}, paused)


def test_counts_are_fresh_within_the_interval_or_while_the_queue_is_quiet() -> None:
    cache = CountCache(OPTIONS)
    now = time.monotonic()
    cache.record(counts(EMAIL, 1), now)
    cache.record(counts(SMS, 2), now - 5)
    assert cache.fresh([EMAIL, SMS], quiet=lambda queue: False) == {EMAIL: counts(EMAIL, 1)}
    assert cache.fresh([EMAIL, SMS], quiet=lambda queue: True) == {
        EMAIL: counts(EMAIL, 1),
        SMS: counts(SMS, 2),
    }
    cache.record(counts(SMS, 2), now - 35)  # quiet: fresh until a resync interval after its re-count
    assert cache.fresh([SMS], quiet=lambda queue: True) == {SMS: counts(SMS, 2)}
    cache.record(counts(SMS, 2), now - 45)  # past it: read again
    assert cache.fresh([SMS], quiet=lambda queue: True) == {}


def test_a_change_is_reported_once() -> None:
    cache = CountCache(OPTIONS)
    assert cache.record(counts(EMAIL, 1), 1.0)
    assert not cache.record(counts(EMAIL, 1), 2.0)
    assert cache.record(counts(EMAIL, 1, paused=True), 3.0)
    assert cache.record(counts(EMAIL, 2, paused=True), 4.0)
    cache.forget(EMAIL)
    assert cache.record(counts(EMAIL, 2, paused=True), 5.0)  # forgotten: new again
    assert cache.fresh([EMAIL], quiet=lambda queue: True) == {}  # read long ago (at 5.0)


def test_a_page_views_counts_are_kept_only_when_tailed_and_newer() -> None:
    cache = CountCache(OPTIONS)
    now = time.monotonic()
    cache.remember([counts(EMAIL, 1), counts(SMS, 1)], now, tailed=lambda queue: queue == EMAIL)
    assert cache.fresh([EMAIL, SMS], quiet=lambda queue: False) == {EMAIL: counts(EMAIL, 1)}
    cache.remember([counts(EMAIL, 9)], now - 0.5, tailed=lambda queue: True)  # older than known
    assert cache.fresh([EMAIL], quiet=lambda queue: False) == {EMAIL: counts(EMAIL, 1)}
