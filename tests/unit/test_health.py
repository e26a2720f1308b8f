"""The health verdict's rules (queues.health): each reason, what makes a queue stuck, degraded, idle or
healthy, the sentences, and the alert conditions and Prometheus samples made of the same reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest

from queues.alerts import Condition, Thresholds, findings
from queues.health import (
    HealthMemory,
    HealthThresholds,
    ReasonCode,
    Severity,
    Status,
    Verdict,
    child_queue,
    judge,
    rate_limited_ms,
    waited_on,
)
from queues.messages import duration_words
from queues.models import QueueCounts, QueueRef
from queues.prometheus import QueueMetrics, exposition
from queues.signals import MANUAL_RATE_LIMIT, EventCounts, QueueLimits, QueueSignals

QUEUE = QueueRef("default", "bull", "email")
CHILD = QueueRef("default", "bull", "thumbs")
NOW = 10_000_000
DEFAULT = HealthThresholds()


def signals(
    *,
    paused: bool = False,
    limits: QueueLimits | None = None,
    oldest: int | None = None,
    broken: tuple[tuple[str, str], ...] = (),
    waiting_on: tuple[str, ...] = (),
    read_at: int = NOW,
    **counts: int,
) -> QueueSignals:
    states = {"waiting": 0, "active": 0, "prioritized": 0, "delayed": 0, "paused": 0, "waiting-children": 0}
    row = QueueCounts(QUEUE, {**states, **counts}, paused=paused, broken_keys=broken)
    return QueueSignals(
        row,
        read_at,
        oldest_waiting_since=oldest,
        limits=limits or QueueLimits(),
        waiting_on=waiting_on,
    )


def events(stalled: int = 0, deduplicated: int = 0, completed: int = 0, failed: int = 0) -> EventCounts:
    return EventCounts(completed, failed, stalled, deduplicated, span_ms=600_000)


def codes(verdict: Verdict | None) -> list[str]:
    assert verdict is not None
    return [reason.code.value for reason in verdict.reasons]


def test_nothing_waiting_or_active_is_idle_and_work_with_workers_is_healthy() -> None:
    idle = judge(signals(completed=5, delayed=2), DEFAULT, workers=1, events=events())
    assert idle is not None and (idle.verdict, idle.reasons) == (Status.IDLE, ())
    busy = judge(signals(waiting=3, active=1), DEFAULT, workers=2, events=events(completed=9))
    assert busy is not None and (busy.verdict, busy.reasons) == (Status.HEALTHY, ())
    assert busy.checked_at == NOW and not busy.needs_attention and not idle.needs_attention


def test_a_read_that_failed_has_no_verdict() -> None:
    row = QueueSignals(QueueCounts.failed(QUEUE, "BUSY"), NOW)
    assert judge(row, DEFAULT, workers=0) is None


def test_paused_with_jobs_waiting_is_stuck_and_paused_empty_is_degraded() -> None:
    stuck = judge(signals(paused=True, waiting=7), DEFAULT, workers=1)
    assert stuck is not None and stuck.verdict is Status.STUCK
    reason = stuck.reasons[0]
    assert (reason.code, reason.value, reason.severity) == (ReasonCode.PAUSED, 7, Severity.STUCK)
    assert str(reason.message) == "paused with 7 jobs waiting"
    one = judge(signals(paused=True, prioritized=1), DEFAULT, workers=1)
    assert one is not None and str(one.reasons[0].message) == "paused with 1 job waiting"
    empty = judge(signals(paused=True), DEFAULT, workers=1)
    assert empty is not None and empty.verdict is Status.DEGRADED
    assert str(empty.reasons[0].message) == "paused: jobs added now will wait"


def test_no_workers_turns_stuck_after_the_threshold_seen_by_the_memory() -> None:
    memory = HealthMemory()
    first = judge(signals(waiting=4), DEFAULT, workers=0, memory=memory)
    assert first is not None and first.verdict is Status.DEGRADED
    assert str(first.reasons[0].message) == "no worker connected"
    assert first.reasons[0].since == NOW
    later = judge(signals(waiting=4, read_at=NOW + 12 * 60_000), DEFAULT, workers=0, memory=memory)
    assert later is not None and later.verdict is Status.STUCK
    assert str(later.reasons[0].message) == "no worker connected for 12 min"
    assert later.reasons[0].since == NOW and later.reasons[0].value == 720
    # A worker connects: the absence is forgotten, and starts again from the next time it is seen.
    assert judge(signals(waiting=4, read_at=NOW + 13 * 60_000), DEFAULT, workers=1, memory=memory) is not None
    again = judge(signals(waiting=4, read_at=NOW + 14 * 60_000), DEFAULT, workers=0, memory=memory)
    assert again is not None and again.verdict is Status.DEGRADED


def test_unknown_workers_say_nothing_and_an_empty_queue_without_workers_is_idle() -> None:
    unknown = judge(signals(waiting=4), DEFAULT, workers=None)
    assert unknown is not None and unknown.verdict is Status.HEALTHY
    empty = judge(signals(), DEFAULT, workers=0)
    assert empty is not None and empty.verdict is Status.IDLE
    later = judge(signals(delayed=3), DEFAULT, workers=0)
    assert later is not None and later.verdict is Status.DEGRADED and codes(later) == ["no_workers"]


def test_active_jobs_without_a_worker_are_stuck_after_the_threshold() -> None:
    memory = HealthMemory()
    judge(signals(active=2), DEFAULT, workers=0, memory=memory)
    found = judge(signals(active=2, read_at=NOW + 61_000), DEFAULT, workers=0, memory=memory)
    assert found is not None and found.verdict is Status.STUCK


@pytest.mark.parametrize(
    ("limits", "waiting", "active", "expected"),
    [
        (QueueLimits(rate_max=10, limiter_count=10, limiter_ttl_ms=41_000), 5, 0, 41_000),
        (QueueLimits(rate_max=10, limiter_count=9, limiter_ttl_ms=41_000), 5, 0, None),
        (QueueLimits(limiter_count=MANUAL_RATE_LIMIT, limiter_ttl_ms=3_600_000), 5, 3, 3_600_000),
        # A worker's own limiter: its max is not in Redis; jobs wait and none runs.
        (QueueLimits(limiter_count=1, limiter_ttl_ms=30_000), 5, 0, 30_000),
        (QueueLimits(limiter_count=1, limiter_ttl_ms=30_000), 5, 1, None),
        # A key without expiry (PTTL -1) or gone holds nothing, as getRateLimitTTL has it.
        (QueueLimits(rate_max=1, limiter_count=5, limiter_ttl_ms=-1), 5, 0, None),
        (QueueLimits(rate_max=1), 5, 0, None),
    ],
)
def test_rate_limited_as_bullmq_reads_the_limiter(
    limits: QueueLimits, waiting: int, active: int, expected: int | None
) -> None:
    assert rate_limited_ms(limits, waiting, active) == expected


def test_rate_limited_for_long_is_stuck_and_briefly_degraded() -> None:
    brief = QueueLimits(rate_max=10, limiter_count=10, limiter_ttl_ms=40_200)
    found = judge(signals(waiting=3, limits=brief), DEFAULT, workers=1)
    assert found is not None and found.verdict is Status.DEGRADED
    assert str(found.reasons[0].message) == "rate-limited for 41 s more"
    assert found.reasons[0].value == 40_200
    hour = QueueLimits(limiter_count=MANUAL_RATE_LIMIT, limiter_ttl_ms=3_600_000)
    stuck = judge(signals(waiting=3, limits=hour), DEFAULT, workers=1)
    assert stuck is not None and stuck.verdict is Status.STUCK
    assert str(stuck.reasons[0].message) == "rate-limited for 60 min more"
    # Nothing waiting: the limiter holds nothing back.
    quiet = judge(signals(limits=hour), DEFAULT, workers=1)
    assert quiet is not None and quiet.verdict is Status.IDLE


def test_at_the_global_concurrency_cap() -> None:
    capped = QueueLimits(concurrency=5)
    memory = HealthMemory()
    found = judge(
        signals(waiting=9, active=5, limits=capped), DEFAULT, workers=2, memory=memory, events=events()
    )
    assert found is not None and found.verdict is Status.DEGRADED
    assert str(found.reasons[0].message) == "at its global concurrency of 5 with 5 active"
    assert found.reasons[0].value == 5
    # Ten minutes at the cap and no job finished in the window: nothing moves.
    later = signals(waiting=9, active=5, limits=capped, read_at=NOW + 600_000)
    stuck = judge(later, DEFAULT, workers=2, memory=memory, events=events())
    assert stuck is not None and stuck.verdict is Status.STUCK
    moving = judge(later, DEFAULT, workers=2, memory=memory, events=events(completed=3))
    assert moving is not None and moving.verdict is Status.DEGRADED
    zero = judge(signals(waiting=1, limits=QueueLimits(concurrency=0)), DEFAULT, workers=2)
    assert zero is not None and zero.verdict is Status.STUCK
    below = judge(signals(waiting=9, active=4, limits=capped), DEFAULT, workers=2)
    assert below is not None and below.verdict is Status.HEALTHY
    nothing_waits = judge(signals(active=5, limits=capped), DEFAULT, workers=2)
    assert nothing_waits is not None and nothing_waits.reasons == ()


def test_stalls_and_dedups_over_the_window() -> None:
    found = judge(signals(waiting=1), DEFAULT, workers=1, events=events(stalled=9, deduplicated=3))
    assert found is not None and found.verdict is Status.DEGRADED
    assert codes(found) == ["stalled", "deduplicated"]
    assert str(found.reasons[0].message) == "9 jobs stalled in the last 10 min"
    assert found.reasons[0].since == NOW - 600_000
    assert str(found.reasons[1].message) == "3 jobs deduplicated in the last 10 min"
    assert found.reasons[1].severity is Severity.INFO
    one = judge(signals(), DEFAULT, workers=1, events=events(stalled=1, deduplicated=1))
    assert one is not None
    assert [str(reason.message) for reason in one.reasons] == [
        "1 job stalled in the last 10 min",
        "1 job deduplicated in the last 10 min",
    ]
    # Deduplicated jobs explain, they never make a queue need attention.
    only_dedup = judge(signals(waiting=1), DEFAULT, workers=1, events=events(deduplicated=50))
    assert (
        only_dedup is not None
        and only_dedup.verdict is Status.HEALTHY
        and codes(only_dedup) == ["deduplicated"]
    )
    off = HealthThresholds(stalled=None, deduplicated=None)
    assert codes(judge(signals(), off, workers=1, events=events(stalled=9, deduplicated=3))) == []
    # A window still counting (a capped read) says its counts are lower bounds.
    behind = replace(events(stalled=3, deduplicated=2), behind=True)
    assert [str(each.message) for each in judge(signals(), DEFAULT, workers=1, events=behind).reasons] == [  # type: ignore[union-attr]
        "at least 3 jobs stalled in the last 10 min",
        "at least 2 jobs deduplicated in the last 10 min",
    ]
    # A window younger than WINDOW says how long it covers.
    young = replace(events(stalled=2), span_ms=120_000)
    assert str(judge(signals(), DEFAULT, workers=1, events=young).reasons[0].message) == (  # type: ignore[union-attr]
        "2 jobs stalled in the last 2 min"
    )


def test_oldest_waiting_job() -> None:
    found = judge(signals(waiting=2, oldest=NOW - 2 * 3600_000), DEFAULT, workers=1)
    assert found is not None and found.verdict is Status.DEGRADED
    reason = found.reasons[0]
    assert (reason.code, reason.since, reason.value) == (ReasonCode.OLDEST_WAITING, NOW - 7_200_000, 7200)
    assert str(reason.message) == "oldest waiting job 2 h old"
    fresh = judge(signals(waiting=2, oldest=NOW - 60_000), DEFAULT, workers=1)
    assert fresh is not None and fresh.verdict is Status.HEALTHY


def test_children_in_a_stuck_queue() -> None:
    stuck_child = Verdict(CHILD, Status.STUCK, (), NOW)
    healthy_child = Verdict(CHILD, Status.HEALTHY, (), NOW)
    only_parents = judge(signals(**{"waiting-children": 4}), DEFAULT, workers=1, children=[stuck_child])
    assert only_parents is not None and only_parents.verdict is Status.STUCK
    reason = only_parents.reasons[0]
    assert str(reason.message) == "waiting on children in bull:thumbs which is stuck"
    assert reason.value == "bull:thumbs"
    beside = judge(signals(waiting=1, **{"waiting-children": 4}), DEFAULT, workers=1, children=[stuck_child])
    assert beside is not None and beside.verdict is Status.DEGRADED
    fine = judge(signals(**{"waiting-children": 4}), DEFAULT, workers=1, children=[healthy_child])
    assert fine is not None and fine.verdict is Status.IDLE


def test_child_queues_are_found_by_the_longest_key_prefix() -> None:
    tagged = QueueRef("default", "{t}:bull", "thumbs")
    by_prefix = {queue.key_prefix: queue for queue in (CHILD, tagged, QUEUE)}
    assert child_queue("bull:thumbs:job:with:colons", by_prefix) == CHILD
    assert child_queue("{t}:bull:thumbs:7", by_prefix) == tagged
    assert child_queue("bull:thumbs:", by_prefix) is None
    assert child_queue("other:queue:1", by_prefix) is None
    row = signals(waiting_on=("bull:thumbs:1", "bull:thumbs:2", "bull:email:3", "nope:x:1"))
    assert waited_on(row, by_prefix) == [CHILD]


def test_broken_keys_and_settings_bullmq_cannot_read() -> None:
    broken = judge(signals(broken=(("wait", "hash"),)), DEFAULT, workers=1)
    assert broken is not None and broken.verdict is Status.STUCK and codes(broken) == ["broken"]
    assert "BullMQ's scripts fail on this queue" in str(broken.reasons[0].message)
    odd = QueueLimits(problems=(("concurrency", "'five' is not a number"),))
    found = judge(signals(limits=odd), DEFAULT, workers=1)
    assert found is not None and found.verdict is Status.DEGRADED
    assert str(found.reasons[0].message) == (
        "bull:email:meta holds concurrency = 'five' is not a number; BullMQ reads it as a number"
    )


def test_reasons_are_listed_worst_first() -> None:
    found = judge(
        signals(waiting=3, paused=True, oldest=NOW - 3600_000),
        DEFAULT,
        workers=1,
        events=events(stalled=2, deduplicated=1),
    )
    assert codes(found) == ["paused", "stalled", "oldest_waiting", "deduplicated"]


def test_the_memory_is_bounded() -> None:
    memory = HealthMemory(size=2)
    for index in range(3):
        memory.since(QueueRef("default", "bull", f"q{index}"), ReasonCode.PAUSED, True, index)
    assert memory.known(QueueRef("default", "bull", "q0"), ReasonCode.PAUSED) is None
    assert memory.known(QueueRef("default", "bull", "q2"), ReasonCode.PAUSED) == 2


def test_duration_words() -> None:
    assert [duration_words(seconds) for seconds in (0, 41, 119, 720, 7199, 7200, 200_000)] == [
        "0 s",
        "41 s",
        "119 s",
        "12 min",
        "119 min",
        "2 h",
        "2 d",
    ]


def test_alert_conditions_are_the_verdicts_reasons() -> None:
    row = signals(paused=True, waiting=2, limits=QueueLimits(concurrency=0))
    verdict = judge(row, DEFAULT, workers=1)
    assert verdict is not None
    rule = Thresholds(paused=True, at_capacity=True, stuck=True)
    found = {finding.condition: finding for finding in findings(row, rule, verdict=verdict)}
    assert set(found) == {Condition.PAUSED, Condition.AT_CAPACITY, Condition.STUCK}
    assert found[Condition.PAUSED].message is verdict.reason(ReasonCode.PAUSED).message  # type: ignore[union-attr]
    assert str(found[Condition.STUCK].message) == (
        "stuck: paused with 2 jobs waiting; at its global concurrency of 0 with 0 active"
    )
    assert found[Condition.STUCK].value == 2
    assert findings(row, Thresholds(rate_limited=True), verdict=verdict) == []
    assert Thresholds(stuck=True).any and not Thresholds().any


def test_prometheus_exports_the_verdict_and_its_reasons() -> None:
    row = signals(paused=True, waiting=2)
    verdict = judge(row, DEFAULT, workers=1)
    text = exposition([QueueMetrics(row, 1, verdict=verdict)], 1)
    where = 'prefix="bull", connection="default"'
    assert f'bullmq_dashboard_queue_health{{queue="email", verdict="stuck", {where}}} 1' in text
    assert f'bullmq_dashboard_queue_health{{queue="email", verdict="healthy", {where}}} 0' in text
    assert f'bullmq_dashboard_health_reason{{queue="email", code="paused", {where}}} 1' in text
    unjudged = exposition([QueueMetrics(row, 1)], 1)
    assert "bullmq_dashboard_queue_health{" not in unjudged
