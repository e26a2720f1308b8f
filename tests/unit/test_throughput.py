"""Throughput without Redis: placing BullMQ's metric points by minute, the sampler's entries and replies,
downsampling, percentiles, and the settings and their check (E012)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from redis.exceptions import NoPermissionError, OutOfMemoryError, ReadOnlyError, ResponseError

from dashboard.checks import check_dashboard_settings
from dashboard.throughput import (
    ThroughputSettingError,
    parse_settings,
    sampling_on,
    spark_values,
    sparkline,
    throughput_settings,
)
from queues import sampling
from queues.latency import parse_latency, percentile, percentiles
from queues.models import QueueRef
from queues.sampling import Sample, newest_recordable_minute, samples_of
from queues.throughput import (
    BULLMQ,
    NO_HISTORY,
    SAMPLED,
    WINDOWS,
    RecordedMetrics,
    downsample,
    last_minute,
    parse_throughput,
    window_bounds,
)

QUEUE = QueueRef("default", "bull", "q")
M = 60_000
T0 = 1_796_000_000_000 - 1_796_000_000_000 % M  # a whole minute


def test_windows_are_whole_minutes_ending_with_the_last_that_ended() -> None:
    assert last_minute(T0 + 59_999) == T0 - M and last_minute(T0) == T0 - M
    assert window_bounds(WINDOWS["hour"], T0 + 5) == (T0 - 60 * M, T0 - M)
    assert [(w.minutes, w.bucket_minutes, w.buckets) for w in WINDOWS.values()] == [
        (60, 1, 60),
        (1440, 5, 288),
        (10080, 60, 168),
    ]


def test_recorded_points_are_placed_before_the_minute_still_counting() -> None:
    recorded = RecordedMetrics(
        count=20, prev_ts=T0 + 1234, prev_count=18, first_index=1, length=5, points=(7, 9)
    )
    placed = recorded.per_minute(T0 - 5 * M, T0 + 2 * M)
    # first_index 1: the points read are elements 1 and 2, the minutes T0 - 2 and T0 - 3.
    assert placed[T0 - 2 * M] == 7 and placed[T0 - 3 * M] == 9
    assert placed[T0 - M] is None and placed[T0 - 4 * M] is None
    assert placed[T0] == 2 and placed[T0 + M] == 0 and placed[T0 + 2 * M] == 0
    stale = recorded.per_minute(T0 - 5 * M, T0 + 2 * M, live=False)
    assert stale[T0 + M] is None and stale[T0] == 2
    assert RecordedMetrics(None, None, None).per_minute(T0, T0 + M) == {T0: None, T0 + M: None}
    assert RecordedMetrics(5, T0, None).pending is None


def reply(
    completed: object = False, failed: object = False, live: int = 1, problems: object = None
) -> list[object]:
    """A reply of throughput.lua (one part of a window)."""
    return [completed, failed, live, problems or []]


def samples_reply(
    *buckets: tuple[int, int, int, int],
    problem: object = False,
    since: object = False,
    unread: object = False,
) -> list[object]:
    """A reply of throughput_samples.lua: per bucket completed, failed, minutes counted, lower bound."""
    return [problem, since, unread, *(str(value).encode() for bucket in buckets for value in bucket)]


def test_parse_chooses_bullmq_metrics_fills_a_missing_type_and_reports_bad_points() -> None:
    first, last = T0 - 4 * M, T0 - M
    completed = [b"9", str(T0 - 2 * M + 5).encode(), b"7", 0, 3, [b"1", b"x", False]]
    found = parse_throughput(QUEUE, WINDOWS["hour"], first, last, [reply(completed)])
    assert found.source == BULLMQ and not found.stale
    by_minute = {bucket.start_ms: (bucket.completed, bucket.failed) for bucket in found.buckets}
    # Element 0 is T0 - 3 minutes; the counting minute T0 - 2 holds 9 - 7; then nothing finished.
    assert by_minute == {T0 - 4 * M: (None, None), T0 - 3 * M: (1, 0), T0 - 2 * M: (2, 0), T0 - M: (0, 0)}
    assert found.completed_metrics is not None and found.completed_metrics.points == (1, None, None)
    assert any("not numbers" in problem for problem in found.problems)
    assert found.counted_minutes == 3 and found.completed_total == 3


def test_parse_prefers_samples_when_metrics_miss_jobs_and_says_no_history_without_any() -> None:
    first, last = T0 - 2 * M, T0 - M
    completed = [b"3", str(T0 - 10 * M).encode(), b"1", 0, 0, []]
    # The samples as throughput_samples.lua sums them: the second minute holds 4 and 1, "at least".
    sampled = samples_reply((0, 0, 0, 0), (4, 1, 1, 1), since=str(T0 - M).encode())
    found = parse_throughput(QUEUE, WINDOWS["hour"], first, last, [reply(completed, live=0)], [sampled], "p")
    assert found.source == SAMPLED and found.stale and found.sampled_since == T0 - M
    assert [(b.completed, b.failed, b.lower_bound) for b in found.buckets] == [
        (None, None, False),
        (4, 1, True),
    ]
    assert found.lower_bound and found.counted_minutes == 1
    stale_only = parse_throughput(QUEUE, WINDOWS["hour"], first, last, [reply(completed, live=0)])
    assert stale_only.source == BULLMQ and stale_only.stale
    none = samples_reply((0, 0, 0, 0), (0, 0, 0, 0))
    nothing = parse_throughput(QUEUE, WINDOWS["hour"], first, last, [reply(live=0)], [none], "p")
    assert nothing.source == NO_HISTORY and not nothing.has_history and nothing.buckets == ()
    broken = parse_throughput(QUEUE, WINDOWS["hour"], first, last, [ResponseError("WRONGTYPE")])
    assert broken.source == NO_HISTORY and "WRONGTYPE" in broken.problems[0]


def test_a_refused_sample_read_loses_only_the_sampled_part() -> None:
    first, last = T0 - 2 * M, T0 - M
    completed = [b"3", str(T0 - M).encode(), b"1", 0, 0, []]
    refused = NoPermissionError("this user has no permissions to access one of the keys")
    live = parse_throughput(QUEUE, WINDOWS["hour"], first, last, [reply(completed)], [refused], "ops")
    assert live.source == BULLMQ and live.problems == ()  # the samples were not needed
    stale = parse_throughput(
        QUEUE, WINDOWS["hour"], first, last, [reply(completed, live=0)], [refused], "ops"
    )
    assert stale.source == BULLMQ and stale.stale
    assert stale.problems[0].startswith("Sampling is unavailable: the Redis user may not read ops:*")


def test_parse_names_keys_of_the_wrong_type() -> None:
    problems = [b"bull:q:metrics:completed", b"list", b"x", b"too large"]
    samples = [samples_reply((0, 0, 0, 0), problem=b"hash")]
    found = parse_throughput(
        QUEUE, WINDOWS["hour"], T0, T0, [reply(problems=problems, live=0)], samples, "bullmq-dashboard"
    )
    assert found.problems == (
        "bull:q:metrics:completed is a list, not what BullMQ keeps there",
        "x is too large to read for a chart.",
        "bullmq-dashboard:samples:bull:q is a hash, not the dashboard's samples",
    )
    # Minutes a read left out are said, never shown as minutes nobody counted alone.
    unread = [samples_reply((0, 0, 0, 0), unread=str(T0).encode())]
    cut = parse_throughput(QUEUE, WINDOWS["hour"], T0, T0, [reply(live=0)], unread, "bullmq-dashboard")
    assert cut.problems == (
        "1 minute of bullmq-dashboard:samples:bull:q was not read: the read budget was spent, or an entry "
        "was too long to be a sample.",
    )


def test_downsampling_sums_buckets_and_keeps_gaps_and_bounds() -> None:
    minutes = [
        (T0, 1, 0, False),
        (T0 + M, None, None, False),
        (T0 + 2 * M, 2, 1, True),
        (T0 + 3 * M, None, None, False),
        (T0 + 4 * M, None, None, False),
        (T0 + 5 * M, None, None, False),
    ]
    buckets = list(downsample(minutes, 3))
    assert [(b.start_ms, b.completed, b.failed, b.lower_bound) for b in buckets] == [
        (T0, 3, 1, True),
        (T0 + 3 * M, None, None, False),
    ]


def test_sample_entries_round_trip_and_foreign_ones_are_refused() -> None:
    sample = Sample(T0, 12, 3, completed_lower_bound=True, failed_lower_bound=True)
    assert sample.entry_id == f"{T0}-0" and sample.fields == {"c": 12, "f": 3, "b": 3}
    entry = [
        sample.entry_id.encode(),
        [key.encode() for pair in sample.fields.items() for key in map(str, pair)],
    ]
    assert Sample.parse(entry) == sample
    for bad in (
        [f"{T0 + 1}-0", ["c", "1", "f", "0", "b", "0"]],  # not a whole minute
        [f"{T0}-0", ["c", "1", "f", "0"]],  # no flags
        [f"{T0}-0", ["c", "-1", "f", "0", "b", "0"]],
        [f"{T0}-0", ["c", "\u0661", "f", "0", "b", "0"]],  # an Arabic-Indic digit is no ASCII number
        "junk",
    ):
        assert Sample.parse(bad) is None


def test_counted_minutes_are_exact_while_the_stream_holds_them_else_lower_bounds() -> None:
    minute = str(T0).encode()
    later = str(T0 + M).encode()
    covered = [b"count", 1, False, minute, 3, 1, 5, 0, later, 2, 0, False, False]
    assert samples_of(covered) == [Sample(T0, 3, 1), Sample(T0 + M, 2, 0)]
    # The read was cut in the second minute: it, and every minute the stream does not reach back to,
    # is the larger of the two counts, as "at least".
    cut = [b"count", 1, T0 + M, minute, 3, 1, 5, 0, later, 2, 0, 1, 4]
    assert samples_of(cut) == [Sample(T0, 3, 1), Sample(T0 + M, 2, 4, True, True)]
    trimmed = [b"count", 0, False, minute, 3, 1, 5, 0]
    assert samples_of(trimmed) == [Sample(T0, 5, 1, True, True)]
    assert samples_of([b"live"]) == samples_of([b"done"]) == samples_of(ResponseError("x")) == []


def test_the_newest_minute_recorded_ended_a_moment_ago() -> None:
    assert newest_recordable_minute(T0 + sampling.SETTLE_MS) == T0 - M
    assert newest_recordable_minute(T0 + sampling.SETTLE_MS - 1) == T0 - 2 * M


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (NoPermissionError("no permissions"), True),
        (ReadOnlyError("You can't write against a read only replica."), True),
        (OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), True),
        (ResponseError("NOPERM this user has no permissions"), True),
        (ResponseError("WRONGTYPE Operation against a key"), False),
    ],
)
def test_refusals_are_told_apart_from_other_errors(error: Exception, refused: bool) -> None:
    assert sampling._is_refusal(error) is refused


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 201))
    assert [percentile(values, rank) for rank in (50, 90, 99, 100)] == [100, 180, 198, 200]
    assert percentile([7], 99) == 7
    found = percentiles([30, 10, 20])
    assert found is not None and (found.p50, found.p90, found.p99, found.count) == (20, 30, 30, 3)
    assert percentiles([]) is None
    with pytest.raises(ValueError):
        percentile([], 50)


def test_latency_reply_is_parsed_defensively() -> None:
    fields = [
        b"100",
        b"0",
        b"150",
        b"190",
        b"100",
        b"20",
        b"170",
        b"171",
        False,
        False,
        b"5",
        b"9",
        b"x",
        b"",
        b"1",
        False,
    ]
    found = parse_latency(QUEUE, 1000, [b"400", 4, fields, False])
    assert found.oldest_waiting_since == 400 and found.oldest_waiting_ms == 600
    assert found.processing is not None and found.processing.count == 3  # finishedOn - processedOn
    assert (found.processing.p50, found.processing.p99) == (4, 40)
    assert found.waiting is not None and found.waiting.count == 2  # processedOn - timestamp - delay
    assert (found.waiting.p50, found.waiting.p99) == (50, 50)
    assert parse_latency(QUEUE, 1000, [False, 0, [], b"list"]).problem.startswith(
        "bull:q:completed is a list"
    )
    assert "Redis answered" in parse_latency(QUEUE, 1000, ResponseError("boom")).problem


def test_sparkline_values_keep_gaps() -> None:
    assert spark_values([1, None, 0, 12]) == "1,,0,12"
    assert sparkline(None) is None
    found = parse_throughput(
        QUEUE, WINDOWS["hour"], T0, T0 + M, [reply([b"3", str(T0 + 2 * M).encode(), b"3", 0, 1, [b"2"]])]
    )
    shown = sparkline(found)
    # Element 0 is the minute before prevTS's (T0 + 1); T0 would be element 1, which was not read.
    assert shown is not None and (shown.completed, shown.failed, shown.completed_total) == (",2", ",0", 2)


def test_settings_are_checked() -> None:
    assert parse_settings({"KEY_PREFIX": "ops", "THROUGHPUT": {"RECENT_JOBS": 50}}).recent_jobs == 50
    for bad in (
        {"KEY_PREFIX": "{ops}", "THROUGHPUT": {}},
        {"KEY_PREFIX": "", "THROUGHPUT": {}},
        {"KEY_PREFIX": "ops", "THROUGHPUT": []},
        {"KEY_PREFIX": "ops", "THROUGHPUT": {"RECENT_JOBS": "many"}},
        {"KEY_PREFIX": "ops", "THROUGHPUT": {"RECENT_JOBS": 0}},
        {"KEY_PREFIX": "ops", "THROUGHPUT": {"RECENT_JOBS": 10_001}},
        {"KEY_PREFIX": "ops", "THROUGHPUT": {"MAX_SAMPLED_QUEUES": "all"}},
        {"KEY_PREFIX": "ops", "THROUGHPUT": {"MAX_SAMPLED_QUEUES": True}},
        # From an environment variable: "false" is a true value, so only a real bool is taken.
        {"KEY_PREFIX": "ops", "THROUGHPUT": {"SAMPLING": "false"}},
        {"KEY_PREFIX": "ops", "THROUGHPUT": {"SAMPLING": 0}},
        # KEY_PREFIX overlapping a configured queue prefix: equal, holding it, or under it.
        {"KEY_PREFIX": "bull", "THROUGHPUT": {}, "CONNECTIONS": {"a": {"URL": "x", "PREFIXES": ["bull"]}}},
        {
            "KEY_PREFIX": "ops",
            "THROUGHPUT": {},
            "CONNECTIONS": {"a": {"URL": "x", "PREFIXES": "ops:samples"}},
        },
        {"KEY_PREFIX": "ops:dash", "THROUGHPUT": {}, "CONNECTIONS": {"a": {"URL": "x", "QUEUES": ["ops:q"]}}},
    ):
        with pytest.raises(ThroughputSettingError):
            parse_settings(bad)
    fine = {"URL": "x", "PREFIXES": ["bull", "opsx"], "QUEUES": ["{ops}:q"]}
    assert parse_settings({"KEY_PREFIX": "ops", "THROUGHPUT": {}, "CONNECTIONS": {"a": fine}}).sampling
    with override_settings(BULLMQ_DASHBOARD={"KEY_PREFIX": "{slot}"}):
        assert "bullmq_dashboard.E012" in {message.id for message in check_dashboard_settings()}
    with override_settings(BULLMQ_DASHBOARD={"THROUGHPUT": {"SAMPLING": "false"}}):
        assert "bullmq_dashboard.E012" in {message.id for message in check_dashboard_settings()}
        # Settings that do not parse sample nothing; BullMQ's metrics are still read.
        unusable = throughput_settings()
        assert not unusable.sampling and not sampling_on() and unusable.key_prefix == "bullmq-dashboard"
        assert "SAMPLING" in unusable.problem
    with override_settings(BULLMQ_DASHBOARD={"KEY_PREFIX": "ops dash", "THROUGHPUT": {"RECENT_JOBS": 50}}):
        unusable = throughput_settings()
        assert (unusable.key_prefix, unusable.sampling, unusable.recent_jobs) == (None, False, 50)
    with override_settings(BULLMQ_DASHBOARD={"THROUGHPUT": {"SAMPLNG": False}}):
        messages = check_dashboard_settings()
        assert any(m.id == "bullmq_dashboard.W007" and "SAMPLING" in (m.hint or "") for m in messages)
