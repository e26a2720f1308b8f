"""Failure recency without Redis: the count cache reports a change of the failures of the last hour (they
go down without an event), the live overview cells carry the failure cells, the overview's order."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from dashboard.live import fragments
from dashboard.overview_order import OverviewOrder, parse_order
from dashboard.views.base import BadRequest
from queues.counts import parse_counts
from queues.live.count_cache import CountCache
from queues.live.options import WatcherOptions
from queues.models import QueueCounts, QueueRef

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
PUSH = QueueRef("default", "bull", "Push")


def row(queue: QueueRef, failed: int = 0, hour: int | None = 0, last: int | None = None) -> QueueCounts:
    return QueueCounts(
        queue, {"waiting": 0, "failed": failed}, False, last_failed_at=last, failed_last_hour=hour
    )


def test_failures_ageing_out_of_the_hour_are_a_change_the_resync_publishes() -> None:
    cache = CountCache(WatcherOptions())
    assert cache.record(row(EMAIL, failed=3, hour=3, last=1000), 1.0)
    assert not cache.record(row(EMAIL, failed=3, hour=3, last=1000), 2.0)
    assert cache.record(row(EMAIL, failed=3, hour=1, last=1000), 3.0)  # same counts, fewer in the hour
    assert cache.record(row(EMAIL, failed=3, hour=1, last=2000), 4.0)


def test_counts_reply_with_and_without_the_recency() -> None:
    base: list[object] = [0, 0, 0, 0, 2, 3, 0, 0, b"", b"bullmq:5.0.0", []]
    new = parse_counts(EMAIL, [*base, b"1733112233445", 2])
    assert (new.last_failed_at, new.failed_last_hour) == (1733112233445, 2)
    unread = parse_counts(EMAIL, [*base, None, None])
    assert (unread.last_failed_at, unread.failed_last_hour) == (None, None)
    old = parse_counts(EMAIL, base)  # a reply of an older script
    assert (old.last_failed_at, old.failed_last_hour) == (None, None)
    assert parse_counts(EMAIL, [*base, b"inf", 1]).last_failed_at is None


def test_live_overview_cells_include_the_failure_cells() -> None:
    cells = fragments.overview_cells(row(EMAIL, failed=3, hour=2, last=1_733_112_233_445))
    hour = cells[fragments.failure_dom_id(EMAIL, "failed-hour")]
    last = cells[fragments.failure_dom_id(EMAIL, "last-failed")]
    assert ">2</a>" in hour and "data-live" in hour
    assert '<time class="clock" datetime="2024-12-02T04:03:53.445Z"' in last and ">04:03:53</time>" in last


def test_the_order_sorts_within_the_rows_and_puts_missing_values_last() -> None:
    rows = [row(EMAIL, 3, 3, 1000), row(SMS, 1, 1, 3000), row(PUSH, 0, 0, None)]

    def names(order: OverviewOrder) -> list[str]:
        return [r.queue.name for r in order.apply(rows)]

    assert names(OverviewOrder(column="name")) == ["email", "Push", "sms"]  # case-insensitive
    assert names(OverviewOrder(column="last_failed", descending=True)) == ["sms", "email", "Push"]
    assert names(OverviewOrder(column="last_failed")) == ["email", "sms", "Push"]
    assert names(OverviewOrder(column="failed_hour", descending=True, failing=True)) == ["email", "sms"]
    # A head links to its first direction, the current column's head to the other one.
    order = OverviewOrder(query="e", column="failed", descending=True)
    assert order.header("failed")["aria_sort"] == "descending"
    assert order.header("failed")["url"].endswith("?q=e&sort=failed")
    assert order.header("name")["url"].endswith("?q=e&sort=name")
    assert order.header("last_failed")["url"].endswith("?q=e&sort=-last_failed")


@pytest.mark.parametrize("query", ["sort=nope", "sort=-", "failing=2"])
def test_unknown_sorts_and_filters_are_bad_requests(query: str) -> None:
    with pytest.raises(BadRequest):
        parse_order(RequestFactory().get("/queues/?" + query), "")
