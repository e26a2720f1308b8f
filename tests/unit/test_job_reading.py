"""Grouping of stack traces and the attempts a timeline reads from the events stream (no Redis)."""

from __future__ import annotations

from dashboard.templatetags.bullmq_dashboard_job import trace_head
from queues.timeline import JobEvent, attempts_of, parse_window
from queues.traces import group_traces, trace_attempts


def test_identical_traces_are_one_group_with_their_attempts() -> None:
    groups = group_traces(["B", "A", "A", "B", "A"], attempts_made=5, state="failed")
    assert [(group.trace, group.attempts, group.count) for group in groups] == [
        ("B", (5, 2), 2),
        ("A", (4, 3, 1), 3),
    ]
    assert groups[1].numbered == [1, 3, 4]


def test_attempt_numbers_of_a_job_that_completed_after_failing() -> None:
    assert trace_attempts(2, attempts_made=3, state="completed") == [2, 1]
    # Traces BullMQ would not have written for these counters: no numbers rather than wrong ones.
    assert trace_attempts(3, attempts_made=1, state="failed") == [None, None, None]


def event(ms: int, name: str, prev: str = "") -> JobEvent:
    return JobEvent(f"{ms}-0", ms, name, prev, "")


def test_attempts_from_events_are_numbered_back_from_the_attempts_started() -> None:
    events = [
        event(100, "added"),
        event(110, "active", "waiting"),
        event(150, "waiting", "active"),  # retryJob: a retry without backoff
        event(200, "active", "waiting"),
        event(260, "delayed"),  # moveToDelayed: a retry with backoff
        event(900, "active", "waiting"),
        event(990, "failed", "active"),
    ]
    attempts = attempts_of(events, last_number=3)
    assert [(a.number, a.started, a.ended, a.outcome, a.duration_ms) for a in attempts] == [
        (1, 110, 150, "requeued", 40),
        (2, 200, 260, "delayed", 60),
        (3, 900, 990, "failed", 90),
    ]


def test_an_attempt_whose_start_left_the_window_and_one_still_running() -> None:
    attempts = attempts_of([event(500, "failed", "active"), event(600, "active")], last_number=7)
    assert [(a.number, a.started, a.ended, a.outcome) for a in attempts] == [
        (6, None, 500, "failed"),
        (7, 600, None, "running"),
    ]
    # More attempts seen than counted (counters of another writer): not numbered.
    assert [a.number for a in attempts_of([event(1, "active"), event(2, "active")], 1)] == [None, None]


def test_the_window_reply_is_read_oldest_first() -> None:
    window = parse_window(
        [5, 5, b"100-0", 0, [b"300-1", b"failed", b"active", b"boom", b"200-0", b"active", b"", b""]]
    )
    assert [(e.at, e.event) for e in window.events] == [(200, "active"), (300, "failed")]
    assert window.whole and window.oldest == 100 and window.events[1].detail == "boom"


def test_the_head_of_a_trace_names_its_error() -> None:
    assert trace_head("Error: boom\n    at x (a.js:1)") == "Error: boom"
    python = 'Traceback (most recent call last):\n  File "w.py", line 1\nValueError: bad\n'
    assert trace_head(python) == "ValueError: bad"
