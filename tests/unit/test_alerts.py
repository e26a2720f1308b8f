"""Alert rules and their evaluation (queues.alerts): thresholds, windows, pending and firing."""

from __future__ import annotations

import pytest

from queues.alerts import (
    AlertBook,
    Condition,
    EventWindow,
    Rule,
    Thresholds,
    findings,
    thresholds_for,
)
from queues.models import QueueCounts, QueueRef
from queues.signals import MinuteTally, QueueSignals

QUEUE = QueueRef("default", "bull", "email")
OTHER = QueueRef("eu", "{tenant}", "sms")


def signals(read_at: int = 3_600_000, oldest: int | None = None, **counts: int) -> QueueSignals:
    row = QueueCounts(QUEUE, {"waiting": 0, "prioritized": 0, "paused": 0, **counts}, paused=False)
    return QueueSignals(row, read_at, oldest_waiting_since=oldest)


def test_later_rules_override_earlier_ones_for_matching_queues() -> None:
    rules = [
        Rule(("*",), {"backlog": 1000, "stalled": 1}),
        Rule(("bull:email",), {"backlog": 10}),
        Rule(("eu/*",), {"stalled": 5}),
    ]
    assert thresholds_for(QUEUE, rules) == Thresholds(backlog=10, stalled=1)
    assert thresholds_for(OTHER, rules) == Thresholds(backlog=1000, stalled=5)
    assert not thresholds_for(QUEUE, [Rule(("bull:sms",), {"backlog": 1})]).any


def test_backlog_counts_waiting_prioritized_and_legacy_paused() -> None:
    found = findings(signals(waiting=5, prioritized=3, paused=2), Thresholds(backlog=10))
    assert [(each.condition, each.value) for each in found] == [(Condition.BACKLOG, 10)]
    assert str(found[0].message) == "10 jobs waiting (threshold 10)"
    assert findings(signals(waiting=9), Thresholds(backlog=10)) == []


def test_oldest_waiting_age_is_measured_at_the_read() -> None:
    found = findings(signals(read_at=900_000, oldest=300_000), Thresholds(oldest_waiting_seconds=600))
    assert [(each.condition, each.value) for each in found] == [(Condition.OLDEST_WAITING, 600)]
    assert "10 min" in found[0].message
    assert findings(signals(read_at=899_999, oldest=300_000), Thresholds(oldest_waiting_seconds=600)) == []
    assert findings(signals(oldest=None), Thresholds(oldest_waiting_seconds=0)) == []


def window(*minutes: MinuteTally, started: int = 0) -> EventWindow:
    events = EventWindow("0-0", started)
    events.add(minutes, keep_from_ms=0)
    return events


def test_failure_rate_over_the_window_needs_enough_finished_jobs() -> None:
    now = 3_600_000
    thresholds = Thresholds(failure_rate=0.5, min_finished=10, window_seconds=600)
    # 20 minutes ago: outside the window; the last 10 minutes: 6 failed of 10.
    events = window(
        MinuteTally(now - 20 * 60_000, completed=0, failed=50),
        MinuteTally(now - 5 * 60_000, completed=4, failed=6),
    )
    found = findings(signals(read_at=now), thresholds, window=events)
    assert [(each.condition, each.value) for each in found] == [(Condition.FAILURE_RATE, 0.6)]
    assert str(found[0].message).startswith("60% of 10 finished jobs failed in the last 10 min")
    few = window(MinuteTally(now - 60_000, completed=1, failed=8))
    assert findings(signals(read_at=now), thresholds, window=few) == []


def test_stalled_events_in_the_window() -> None:
    now = 3_600_000
    events = window(MinuteTally(now - 120_000, stalled=2), MinuteTally(now - 60_000, stalled=1))
    found = findings(signals(read_at=now), Thresholds(stalled=3, window_seconds=600), window=events)
    assert [(each.condition, each.value) for each in found] == [(Condition.STALLED, 3)]
    assert findings(signals(read_at=now), Thresholds(stalled=4, window_seconds=600), window=events) == []


def test_window_merges_a_minute_read_in_two_ticks_and_drops_old_minutes() -> None:
    events = EventWindow("0-0", 0)
    events.add([MinuteTally(60_000, completed=1)], keep_from_ms=0)
    events.add([MinuteTally(60_000, failed=2), MinuteTally(120_000, stalled=1)], keep_from_ms=0)
    assert events.totals(0) == (1, 2, 1)
    events.add([MinuteTally(600_000, completed=5)], keep_from_ms=540_000)
    assert [minute.minute_ms for minute in events.minutes] == [600_000]


def test_no_workers_after_the_threshold_and_unknown_when_not_listed() -> None:
    thresholds = Thresholds(no_workers_seconds=300)
    row = signals(read_at=1_000_000)
    assert (
        findings(row, thresholds, workers=0, workers_absent_since_ms=700_000)[0].condition
        is Condition.NO_WORKERS
    )
    assert findings(row, thresholds, workers=0, workers_absent_since_ms=700_001) == []
    assert findings(row, thresholds, workers=None, workers_absent_since_ms=0) == []
    assert findings(row, thresholds, workers=2, workers_absent_since_ms=0) == []


def test_an_unreadable_queue_has_no_findings() -> None:
    broken = QueueSignals(QueueCounts.failed(QUEUE, "WRONGTYPE"), 0)
    assert findings(broken, Thresholds(backlog=0, oldest_waiting_seconds=0)) == []


def test_pending_until_for_then_firing_then_resolved() -> None:
    book = AlertBook()
    thresholds = Thresholds(backlog=1)
    found = findings(signals(waiting=3), thresholds)
    assert book.update([QUEUE], found, 0, {QUEUE: 60}) == []
    assert book.firing() == []
    fired = book.update([QUEUE], found, 60_000, {QUEUE: 60})
    assert [(each.condition, each.firing, each.since_ms) for each in fired] == [(Condition.BACKLOG, True, 0)]
    assert book.update([QUEUE], found, 90_000, {QUEUE: 60}) == []
    assert [each.condition for each in book.firing()] == [Condition.BACKLOG]
    # A queue not evaluated (its connection down) keeps its alerts.
    assert book.update([], [], 120_000, {}) == []
    resolved = book.update([QUEUE], [], 150_000, {QUEUE: 60})
    assert [(each.firing, str(each.message)) for each in resolved] == [
        (False, "resolved: 3 jobs waiting (threshold 1)")
    ]
    assert book.firing() == []


def test_a_condition_that_stops_holding_before_for_never_fires() -> None:
    book = AlertBook()
    found = findings(signals(waiting=3), Thresholds(backlog=1))
    book.update([QUEUE], found, 0, {QUEUE: 60})
    assert book.update([QUEUE], [], 30_000, {QUEUE: 60}) == []
    assert book.update([QUEUE], found, 60_000, {QUEUE: 60}) == []  # pending again from 60 s


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (90, 90.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("500ms", 0.5),
    ],
)
def test_durations(given: object, seconds: float) -> None:
    from dashboard.alerts import duration_seconds

    assert duration_seconds(given) == seconds


def test_the_demo_s_alert_rules_are_readable() -> None:
    from dashboard.alerts import parse_rule
    from demo.__main__ import DEMO_ALERTS

    rules = [parse_rule(rule) for rule in DEMO_ALERTS["RULES"]]
    webhooks = thresholds_for(QueueRef("default", "bull", "webhooks"), rules)
    assert webhooks.failure_rate == 0.2 and webhooks.backlog == 2000 and webhooks.for_seconds == 60
