"""Throughput (issue 14, point 1) against a real Redis: BullMQ's metrics keys read within bounds (hostile
elements, keys of the wrong type, missing fields), the dashboard's own samples recorded at controlled
times and read back as series, nothing written when read-only or refused, sample keys never taken for
queues, the metrics page, its JSON and the overview's sparklines."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links, throughput
from dashboard.throughput import SPARKLINES, sample_tick
from queues import sampling
from queues.connections import ConnectionSettings
from queues.discovery import scan_queues
from queues.latency import fetch_latency
from queues.models import QueueRef
from queues.sampling import MINUTE_MS, record_samples, sample_key, sampling_refusal
from queues.throughput import BULLMQ, NO_HISTORY, SAMPLED, WINDOWS, fetch_throughput, last_minute
from tests.support.builders import add_jobs, process
from tests.support.dashboard import dashboard_settings
from tests.support.urls import mount

pytestmark = pytest.mark.host_compatible

PREFIX = "bullmq-dashboard"
METRICS = QueueRef("default", "bull", "recorded")
SAMPLED_QUEUE = QueueRef("default", "bull", "sampled")
HOUR = WINDOWS["hour"]
FIVE_MB = b"9" * (5 * 1024 * 1024)


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    """No refusal or kept sparkline of another test."""
    sampling.forget_refusals()
    SPARKLINES.clear()
    yield
    sampling.forget_refusals()
    SPARKLINES.clear()


async def make_queue(client: Redis, queue: QueueRef, max_len_events: int = 10_000) -> None:
    """A queue's meta as BullMQ writes it (discovery confirms a queue by it)."""
    await client.hset(f"{queue.key_prefix}meta", mapping={"opts.maxLenEvents": str(max_len_events)})


async def record_metrics(
    client: Redis, queue: QueueRef, kind: str, prev_ts: int, count: int, prev: int, data: list[Any]
) -> None:
    """BullMQ's metrics keys of one type as collectMetrics leaves them (malformed data tests write others)."""
    await client.hset(
        f"{queue.key_prefix}metrics:{kind}", mapping={"count": count, "prevTS": prev_ts, "prevCount": prev}
    )
    if data:
        await client.rpush(f"{queue.key_prefix}metrics:{kind}:data", *data)


async def add_event(client: Redis, queue: QueueRef, at_ms: int, event: str, seq: int, **extra: Any) -> None:
    """An events stream entry with a chosen id (ms), in the shape moveToFinished writes."""
    fields = {"event": event, "jobId": f"job-{at_ms}-{seq}", **extra, "prev": "active"}
    await client.xadd(f"{queue.key_prefix}events", fields, id=f"{at_ms}-{seq}")


def values(rows: Any, attribute: str) -> dict[int, int | None]:
    return {bucket.start_ms: getattr(bucket, attribute) for bucket in rows.buckets}


# ---------------------------------------------------------------- BullMQ's metrics keys


async def test_bullmq_metrics_are_placed_by_minute_with_the_pending_minute_and_quiet_minutes(
    redis_client: Redis,
) -> None:
    now = now_ms()
    last = last_minute(now)
    counting = last - 4 * MINUTE_MS  # prevTS's minute: 4 minutes ago, then no job
    await make_queue(redis_client, METRICS)
    # Element i is the minute counting - 1 - i; the counting minute holds count - prevCount = 2.
    await record_metrics(redis_client, METRICS, "completed", counting + 1234, 20, 18, [5, 0, 7])
    await record_metrics(redis_client, METRICS, "failed", counting + 99, 3, 2, [1])
    await redis_client.zadd(f"{METRICS.key_prefix}completed", {"a": counting + 1234})
    (found,) = await fetch_throughput(redis_client, [METRICS], HOUR, now, PREFIX)
    assert found.source == BULLMQ and not found.stale and found.problems == ()
    completed, failed = values(found, "completed"), values(found, "failed")
    assert [completed[counting - n * MINUTE_MS] for n in (1, 2, 3)] == [5, 0, 7]
    assert completed[counting] == 2 and failed[counting] == 1
    assert failed[counting - MINUTE_MS] == 1
    # Older than the data list: nobody counted them (a gap, not a zero).
    assert completed[counting - 4 * MINUTE_MS] is None and failed[counting - 2 * MINUTE_MS] is None
    # After prevTS's minute no job finished (a recording worker would have started a point).
    assert [completed[counting + n * MINUTE_MS] for n in (1, 2, 3, 4)] == [0, 0, 0, 0]
    assert found.completed_total == 14 and found.failed_total == 2
    assert len(found.buckets) == 60 and found.last_minute == last
    assert found.completed_metrics is not None and found.completed_metrics.points == (5, 0, 7)


async def test_only_the_points_of_the_window_are_read(redis_client: Redis) -> None:
    now = now_ms()
    last = last_minute(now)
    await make_queue(redis_client, METRICS)
    # A week of points; prevTS in the current minute, so element 0 is the last whole minute.
    await record_metrics(redis_client, METRICS, "completed", last + MINUTE_MS + 5, 10, 10, list(range(10080)))
    (hour,) = await fetch_throughput(redis_client, [METRICS], HOUR, now, PREFIX)
    assert hour.completed_metrics is not None
    assert hour.completed_metrics.points == tuple(range(60)) and hour.completed_metrics.length == 10080
    assert values(hour, "completed")[last] == 0 and values(hour, "completed")[last - 59 * MINUTE_MS] == 59
    (day,) = await fetch_throughput(redis_client, [METRICS], WINDOWS["day"], now, PREFIX)
    assert len(day.buckets) == 288 and day.buckets[-1].completed == 0 + 1 + 2 + 3 + 4
    assert day.buckets[0].completed == sum(range(1435, 1440))
    (week,) = await fetch_throughput(redis_client, [METRICS], WINDOWS["week"], now, PREFIX)
    assert len(week.buckets) == 168 and week.completed_total == sum(range(10080))


@pytest.fixture
def no_memory_url(redis_url: str) -> Iterator[str]:
    """A Redis user that may do anything but MEMORY (an ACL without +memory, a managed Redis)."""
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", "nomem", "on", ">pw", "~*", "+@all", "-memory")
    try:
        yield redis_url.replace("redis://", "redis://nomem:pw@")
    finally:
        admin.execute_command("ACL", "DELUSER", "nomem")
        admin.close()


async def test_hostile_points_are_length_checked_and_the_read_stays_bounded(
    redis_client: Redis, no_memory_url: str
) -> None:
    now = now_ms()
    last = last_minute(now)
    await make_queue(redis_client, METRICS)
    data = f"{METRICS.key_prefix}metrics:completed:data"
    await record_metrics(redis_client, METRICS, "completed", last + MINUTE_MS, 9, 9, [])
    await redis_client.rpush(data, "3", "not a number", FIVE_MB, FIVE_MB, "4")
    started = time.monotonic()
    (found,) = await fetch_throughput(redis_client, [METRICS], HOUR, now, PREFIX)
    assert time.monotonic() - started < 2
    # The list takes over READ_BUDGET in memory: BullMQ's is a few KB, so it is not read at all.
    assert found.completed_metrics is not None and found.completed_metrics.points == ()
    assert f"{data} is too large to read for a chart." in found.problems
    assert values(found, "completed")[last] is None

    # Without MEMORY, one element at a time: the first 5 MB element ends the read (it is no point),
    # so what follows is not read, and that is said; the long one and the word are no points.
    reader = Redis.from_url(no_memory_url)
    try:
        (found,) = await fetch_throughput(reader, [METRICS], HOUR, now, PREFIX)
    finally:
        await reader.aclose()
    assert found.completed_metrics is not None
    assert found.completed_metrics.points == (3, None, None)
    completed = values(found, "completed")
    assert completed[last] == 3 and completed[last - MINUTE_MS] is None
    assert completed[last - 4 * MINUTE_MS] is None
    assert any("not numbers" in problem for problem in found.problems)
    assert any(f"2 points of {data} were not read" in problem for problem in found.problems)


async def test_keys_of_the_wrong_type_and_missing_fields_are_reported_not_raised(redis_client: Redis) -> None:
    now = now_ms()
    broken = QueueRef("default", "bull", "broken")
    await make_queue(redis_client, broken)
    await redis_client.rpush(f"{broken.key_prefix}metrics:completed", "x")
    await redis_client.hset(f"{broken.key_prefix}metrics:failed", mapping={"count": "4"})  # no prevTS
    await redis_client.hset(f"{broken.key_prefix}metrics:failed:data", mapping={"a": "1"})
    await redis_client.hset(sample_key(PREFIX, broken), mapping={"a": "1"})
    await make_queue(redis_client, METRICS)
    await record_metrics(redis_client, METRICS, "completed", last_minute(now), 1, 0, [2])
    found, fine = await fetch_throughput(redis_client, [broken, METRICS], HOUR, now, PREFIX)
    assert found.source == NO_HISTORY and not found.has_history
    problems = " ".join(found.problems)
    assert f"{broken.key_prefix}metrics:completed is a list" in problems
    assert f"{sample_key(PREFIX, broken)} is a hash" in problems
    assert fine.source == BULLMQ and fine.problems == ()
    # A metrics field too long to read counts as missing.
    await redis_client.hset(f"{METRICS.key_prefix}metrics:completed", "prevTS", FIVE_MB)
    (cut,) = await fetch_throughput(redis_client, [METRICS], HOUR, now, PREFIX)
    assert cut.completed_metrics is not None and cut.completed_metrics.prev_ts is None


async def test_metrics_that_miss_jobs_are_stale_and_the_queue_is_sampled(redis_client: Redis) -> None:
    now = now_ms()
    last = last_minute(now)
    await make_queue(redis_client, METRICS)
    await record_metrics(redis_client, METRICS, "completed", last - 5 * MINUTE_MS, 3, 1, [4])
    # A job finished after prevTS's minute without a point: some worker does not record metrics.
    await redis_client.zadd(f"{METRICS.key_prefix}completed", {"late": last - MINUTE_MS + 10})
    await add_event(redis_client, METRICS, last - MINUTE_MS + 12, "completed", 0)
    (found,) = await fetch_throughput(redis_client, [METRICS], HOUR, now, PREFIX)
    assert found.source == BULLMQ and found.stale
    assert values(found, "completed")[last] is None  # not "0": a non-recording worker may have run
    await record_samples(redis_client, [METRICS], now, PREFIX)
    (sampled,) = await fetch_throughput(redis_client, [METRICS], HOUR, now, PREFIX)
    assert sampled.source == SAMPLED
    assert values(sampled, "completed")[last - MINUTE_MS] == 1


# ---------------------------------------------------------------- the dashboard's samples


async def test_record_samples_at_controlled_times_gives_the_series(redis_client: Redis) -> None:
    real = now_ms()
    start = last_minute(real) - 30 * MINUTE_MS
    await make_queue(redis_client, SAMPLED_QUEUE)
    for seq in range(3):
        await add_event(redis_client, SAMPLED_QUEUE, start + 1000, "completed", seq, returnvalue="null")
    await add_event(redis_client, SAMPLED_QUEUE, start + 1000, "active", 3)
    await add_event(redis_client, SAMPLED_QUEUE, start + MINUTE_MS + 5, "failed", 0, failedReason="boom")
    await add_event(redis_client, SAMPLED_QUEUE, start + 2 * MINUTE_MS + 59_999, "completed", 0)
    await add_event(redis_client, SAMPLED_QUEUE, start + 3 * MINUTE_MS + 1, "completed", 0)  # not yet ended
    key = sample_key(PREFIX, SAMPLED_QUEUE)

    (before,) = await fetch_throughput(redis_client, [SAMPLED_QUEUE], HOUR, start + 3 * MINUTE_MS, PREFIX)
    assert before.source == NO_HISTORY and not before.has_history  # never sampled: no zeros

    tick = start + 3 * MINUTE_MS + 5_000
    await record_samples(redis_client, [SAMPLED_QUEUE], tick, PREFIX)
    entries = await redis_client.xrange(key)
    # The first tick counts CATCH_UP_MINUTES back, up to the last minute that ended 2 s before it.
    assert [int(entry_id.split(b"-")[0]) for entry_id, _ in entries] == [
        start + n * MINUTE_MS for n in range(3 - sampling.CATCH_UP_MINUTES, 3)
    ]
    (found,) = await fetch_throughput(redis_client, [SAMPLED_QUEUE], HOUR, tick, PREFIX)
    assert found.source == SAMPLED and found.sampled_since == start - 7 * MINUTE_MS
    completed, failed = values(found, "completed"), values(found, "failed")
    assert (completed[start], completed[start + MINUTE_MS], completed[start + 2 * MINUTE_MS]) == (3, 0, 1)
    assert (failed[start], failed[start + MINUTE_MS]) == (0, 1)
    assert completed[start - 8 * MINUTE_MS] is None  # before sampling began
    assert not found.lower_bound and found.completed_total == 4 and found.failed_total == 1

    # The same tick again, or another process at the same time: nothing new is written.
    await record_samples(redis_client, [SAMPLED_QUEUE], tick, PREFIX)
    assert len(await redis_client.xrange(key)) == 10
    # A minute later: one more minute, holding the event of the minute that had not ended.
    await record_samples(redis_client, [SAMPLED_QUEUE], tick + MINUTE_MS, PREFIX)
    newest = await redis_client.xrevrange(key, count=1)
    assert newest[0][0] == f"{start + 3 * MINUTE_MS}-0".encode() and newest[0][1][b"c"] == b"1"
    # Bounded: trimmed to a week of minutes, and the key expires a week after its last write.
    assert 0 < await redis_client.pttl(key) <= sampling.WEEK_MS


async def test_a_gap_is_caught_up_at_most_ten_minutes_back(redis_client: Redis) -> None:
    start = last_minute(now_ms()) - 50 * MINUTE_MS
    await make_queue(redis_client, SAMPLED_QUEUE)
    await record_samples(redis_client, [SAMPLED_QUEUE], start + 5_000, PREFIX)
    await record_samples(redis_client, [SAMPLED_QUEUE], start + 30 * MINUTE_MS + 5_000, PREFIX)
    (found,) = await fetch_throughput(
        redis_client, [SAMPLED_QUEUE], HOUR, start + 30 * MINUTE_MS + 5_000, PREFIX
    )
    counted = [bucket.start_ms for bucket in found.buckets if bucket.completed is not None]
    # The ticks' minutes are counted, the gap between them (beyond ten minutes back) is not.
    assert start - MINUTE_MS in counted and start + 29 * MINUTE_MS in counted
    assert start + 20 * MINUTE_MS in counted and start + 19 * MINUTE_MS not in counted
    assert start + 5 * MINUTE_MS not in counted
    assert found.lower_bound is False and 0 < found.counted_minutes < 60


async def test_minutes_the_stream_no_longer_holds_are_lower_bounds_from_the_finished_sets(
    redis_client: Redis,
) -> None:
    start = last_minute(now_ms()) - 20 * MINUTE_MS
    await make_queue(redis_client, SAMPLED_QUEUE, max_len_events=4)
    # Trimmed to 4 entries: the stream begins inside the minute, so earlier events may be gone.
    for seq in range(4):
        await add_event(redis_client, SAMPLED_QUEUE, start + 30_000, "completed", seq)
    await redis_client.zadd(
        f"{SAMPLED_QUEUE.key_prefix}completed", {f"kept-{n}": start + 1000 * n for n in range(6)}
    )
    await redis_client.zadd(f"{SAMPLED_QUEUE.key_prefix}failed", {"f": start + 2000})
    await record_samples(redis_client, [SAMPLED_QUEUE], start + MINUTE_MS + 5_000, PREFIX)
    (found,) = await fetch_throughput(redis_client, [SAMPLED_QUEUE], HOUR, start + MINUTE_MS + 5_000, PREFIX)
    minute = next(bucket for bucket in found.buckets if bucket.start_ms == start)
    assert (minute.completed, minute.failed, minute.lower_bound) == (6, 1, True)
    assert found.lower_bound


async def test_a_tick_counts_at_most_its_entries_and_bytes(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = last_minute(now_ms()) - 20 * MINUTE_MS
    await make_queue(redis_client, SAMPLED_QUEUE)
    for seq in range(5):
        await add_event(redis_client, SAMPLED_QUEUE, start + 1000, "completed", seq)
    monkeypatch.setattr(sampling, "EVENT_ENTRIES", 3)
    await record_samples(redis_client, [SAMPLED_QUEUE], start + MINUTE_MS + 5_000, PREFIX)
    (capped,) = await fetch_throughput(redis_client, [SAMPLED_QUEUE], HOUR, start + MINUTE_MS + 5_000, PREFIX)
    minute = next(bucket for bucket in capped.buckets if bucket.start_ms == start)
    assert (minute.completed, minute.lower_bound) == (3, True)

    # Small entries over the byte budget: read an entry at a time until the budget is spent.
    small = QueueRef("default", "bull", "many-events")
    await make_queue(redis_client, small)
    for seq in range(40):
        await add_event(redis_client, small, start + 1000, "completed", seq)
    monkeypatch.setattr(sampling, "EVENT_ENTRIES", 10_000)
    monkeypatch.setattr(sampling, "EVENT_BYTES", 400)
    await record_samples(redis_client, [small], start + MINUTE_MS + 5_000, PREFIX)
    (stepwise,) = await fetch_throughput(redis_client, [small], HOUR, start + MINUTE_MS + 5_000, PREFIX)
    minute = next(bucket for bucket in stepwise.buckets if bucket.start_ms == start)
    assert minute.completed is not None and 0 < minute.completed < 40 and minute.lower_bound
    monkeypatch.setattr(sampling, "EVENT_BYTES", 4 * 1024 * 1024)

    # A failed event with a 5 MB reason: the stream does not fit the budget, and its entries are large
    # on average, so it is not read at all (an entry is copied whole before its size is known); the
    # minute is counted from the finished sets, as a lower bound.
    other = QueueRef("default", "bull", "huge-events")
    await make_queue(redis_client, other)
    await add_event(redis_client, other, start + 1000, "failed", 0, failedReason=FIVE_MB)
    await add_event(redis_client, other, start + 2000, "completed", 0)
    await redis_client.zadd(f"{other.key_prefix}failed", {"job-1": start + 1000})
    started = time.monotonic()
    await record_samples(redis_client, [other], start + MINUTE_MS + 5_000, PREFIX)
    assert time.monotonic() - started < 2
    (found,) = await fetch_throughput(redis_client, [other], HOUR, start + MINUTE_MS + 5_000, PREFIX)
    minute = next(bucket for bucket in found.buckets if bucket.start_ms == start)
    assert (minute.failed, minute.completed, minute.lower_bound) == (1, 0, True)


async def test_queues_whose_workers_record_metrics_are_not_sampled(redis_client: Redis) -> None:
    now = now_ms()
    await make_queue(redis_client, METRICS)
    await record_metrics(redis_client, METRICS, "completed", last_minute(now), 2, 1, [1])
    await record_samples(redis_client, [METRICS], now, PREFIX)
    assert await redis_client.exists(sample_key(PREFIX, METRICS)) == 0


async def test_a_sample_key_of_another_type_skips_that_queue_alone(redis_client: Redis) -> None:
    start = last_minute(now_ms()) - 20 * MINUTE_MS
    taken = QueueRef("default", "bull", "taken")
    for queue in (taken, SAMPLED_QUEUE):
        await make_queue(redis_client, queue)
    await redis_client.set(sample_key(PREFIX, taken), "someone else's")
    await record_samples(redis_client, [taken, SAMPLED_QUEUE], start, PREFIX)
    assert await redis_client.get(sample_key(PREFIX, taken)) == b"someone else's"
    assert await redis_client.xlen(sample_key(PREFIX, SAMPLED_QUEUE)) == 10


async def test_sample_keys_are_never_taken_for_queues(redis_client: Redis, redis_url: str) -> None:
    named_meta = QueueRef("default", "bull", "meta")
    for queue in (SAMPLED_QUEUE, named_meta):
        await make_queue(redis_client, queue)
    await record_samples(redis_client, [SAMPLED_QUEUE, named_meta], now_ms(), PREFIX)
    # `bullmq-dashboard:samples:bull:meta` ends in `:meta`; a stream is never a queue's meta hash.
    assert await redis_client.type(sample_key(PREFIX, named_meta)) == b"stream"
    everywhere = ConnectionSettings(alias="default", url=redis_url)
    assert await scan_queues(redis_client, everywhere) == [named_meta, SAMPLED_QUEUE]
    under_prefix = ConnectionSettings(alias="default", url=redis_url, prefixes=(PREFIX, "bull"))
    assert await scan_queues(redis_client, under_prefix) == [named_meta, SAMPLED_QUEUE]


# ---------------------------------------------------------------- read-only and refused writes


@pytest.fixture
def sampled_settings(redis_url: str) -> Iterator[None]:
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url)):
        yield


async def dashboard_keys(client: Redis) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"{PREFIX}:*")]


async def test_read_only_writes_nothing_and_the_chart_says_why(
    client: AsyncClient, redis_client: Redis, redis_url: str
) -> None:
    await add_jobs(redis_url, "sampled", [("job", {}, {})])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, READ_ONLY=True)):
        await sample_tick(now_ms())
        assert await dashboard_keys(redis_client) == []
        response = await client.get(links.queue_metrics_url(SAMPLED_QUEUE))
        assert response.status_code == 200
        page = response.content.decode()
        assert "data-sampling-unavailable" in page and "the dashboard is read-only" in page
        answer = await client.get(links.queue_metrics_api_url(SAMPLED_QUEUE))
        assert answer.json()["source"] == "none"
        assert "read-only" in answer.json()["samplingUnavailable"]


@pytest.fixture
def reader_url(redis_url: str) -> Iterator[str]:
    """A Redis user that may read and run scripts but not write (as an ACL of a read-only role)."""
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", "sampler", "on", ">pw", "~*", "+@read", "+@scripting", "-@write")
    try:
        yield redis_url.replace("redis://", "redis://sampler:pw@")
    finally:
        admin.execute_command("ACL", "DELUSER", "sampler")
        admin.close()


async def test_refused_writes_are_remembered_and_shown_never_raised(
    client: AsyncClient, redis_client: Redis, redis_url: str, reader_url: str
) -> None:
    await add_jobs(redis_url, "sampled", [("job", {}, {})])
    reader = Redis.from_url(reader_url)
    try:
        await record_samples(reader, [SAMPLED_QUEUE], now_ms(), PREFIX)
    finally:
        await reader.aclose()
    assert await dashboard_keys(redis_client) == []
    refusal = sampling_refusal("default")
    assert refusal is not None and "refused" in refusal.reason
    response = await client.get(links.queue_metrics_url(SAMPLED_QUEUE))
    assert response.status_code == 200
    assert "Sampling is unavailable" in response.content.decode()
    # A tick that writes again clears it.
    await record_samples(redis_client, [SAMPLED_QUEUE], now_ms(), PREFIX)
    assert sampling_refusal("default") is None


async def test_out_of_memory_is_a_refusal(redis_client: Redis) -> None:
    await make_queue(redis_client, SAMPLED_QUEUE)
    await redis_client.config_set("maxmemory", "1")
    try:
        await record_samples(redis_client, [SAMPLED_QUEUE], now_ms(), PREFIX)
    finally:
        await redis_client.config_set("maxmemory", "0")
    refusal = sampling_refusal("default")
    assert refusal is not None and "maxmemory" in refusal.reason
    assert await dashboard_keys(redis_client) == []


async def test_sample_tick_samples_the_discovered_queues_up_to_the_cap(
    redis_client: Redis, redis_url: str
) -> None:
    await add_jobs(redis_url, "one", [("job", {}, {})])
    await add_jobs(redis_url, "two", [("job", {}, {})])
    settings = dashboard_settings(redis_url, THROUGHPUT={"MAX_SAMPLED_QUEUES": 1})
    with override_settings(BULLMQ_DASHBOARD=settings):
        await sample_tick(now_ms())
    assert await dashboard_keys(redis_client) == [f"{PREFIX}:samples:bull:one".encode()]
    with override_settings(BULLMQ_DASHBOARD={**settings, "KEY_PREFIX": "ops-dash", "THROUGHPUT": {}}):
        await sample_tick(now_ms())
    assert await redis_client.exists("ops-dash:samples:bull:two") == 1


# ---------------------------------------------------------------- waiting and processing times


async def test_latency_of_real_jobs(redis_client: Redis, redis_url: str) -> None:
    async def work(job: Any, token: str) -> str:
        return "done"

    await add_jobs(redis_url, "timed", [("job", {"n": n}, {}) for n in range(5)])
    await process(redis_url, "timed", work, until=5)
    await add_jobs(redis_url, "timed", [("later", {}, {}), ("latest", {}, {})])
    queue = QueueRef("default", "bull", "timed")
    now = now_ms()
    (found,) = await fetch_latency(redis_client, [queue], now, recent_jobs=3)
    # The job next in line is the first added of those waiting.
    waiting = await redis_client.lrange(f"{queue.key_prefix}wait", -1, -1)
    added = int(await redis_client.hget(f"{queue.key_prefix}{waiting[0].decode()}", "timestamp") or 0)
    assert found.oldest_waiting_since == added and found.oldest_waiting_ms == max(0, now - added)
    newest = await redis_client.zrevrange(f"{queue.key_prefix}completed", 0, 2)
    runs = []
    for job_id in newest:
        fields = await redis_client.hmget(f"{queue.key_prefix}{job_id.decode()}", "processedOn", "finishedOn")
        runs.append(int(fields[1] or 0) - int(fields[0] or 0))
    assert found.jobs_read == 3 and found.processing is not None and found.processing.count == 3
    assert found.processing.p50 == sorted(runs)[1] and found.processing.p99 == max(runs)
    assert found.waiting is not None and found.waiting.count == 3


async def test_latency_skips_hostile_ids_and_fields(redis_client: Redis) -> None:
    queue = QueueRef("default", "bull", "odd")
    await make_queue(redis_client, queue)
    completed = f"{queue.key_prefix}completed"
    await redis_client.zadd(completed, {"x" * 100_000: 3, "meta": 2, "ok": 1, "big": 4})
    await redis_client.hset(
        f"{queue.key_prefix}ok", mapping={"timestamp": 10, "processedOn": 15, "finishedOn": 40}
    )
    await redis_client.hset(
        f"{queue.key_prefix}big", mapping={"timestamp": 10, "processedOn": FIVE_MB, "finishedOn": 1}
    )
    await redis_client.rpush(f"{queue.key_prefix}wait", "missing")
    (found,) = await fetch_latency(redis_client, [queue], now_ms())
    assert found.processing is not None and (found.processing.count, found.processing.p50) == (1, 25)
    assert found.waiting is not None and found.waiting.p50 == 5
    assert found.oldest_waiting_since is None  # the job next in line has no hash
    await redis_client.delete(completed)
    await redis_client.rpush(completed, "not a zset")
    (broken,) = await fetch_latency(redis_client, [queue], now_ms())
    assert "is a list" in broken.problem and broken.processing is None


# ---------------------------------------------------------------- pages, JSON and sparklines


async def test_metrics_page_and_json(client: AsyncClient, redis_client: Redis, redis_url: str) -> None:
    await add_jobs(redis_url, "recorded", [("job", {}, {})])
    now = now_ms()
    counting = last_minute(now) - 2 * MINUTE_MS
    await record_metrics(redis_client, METRICS, "completed", counting + 10, 9, 4, [3, 2])
    await record_metrics(redis_client, METRICS, "failed", counting + 20, 1, 0, [])

    detail = await client.get(links.queue_api_url(METRICS))
    assert detail.json()["metrics_url"] == links.queue_metrics_api_url(METRICS)

    queue_page = await client.get(links.queue_url(METRICS))
    assert links.queue_metrics_url(METRICS) in queue_page.content.decode()

    response = await client.get(links.queue_metrics_url(METRICS))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Source: BullMQ metrics" in page and "data-throughput-chart" in page
    assert "Last hour: 10 completed, 1 failed." in page
    series = json.loads(html.unescape(page.split('data-series="')[1].split('"')[0]))
    assert (
        len(series["x"]) == 60
        and series["completed"][-3:] == [5, 0, 0]
        and series["failed"][-3:] == [1, 0, 0]
    )
    assert "The job next in line has waited" in page

    answer = (await client.get(links.queue_metrics_api_url(METRICS), {"window": "day"})).json()
    assert (answer["source"], answer["window"], answer["bucketMinutes"]) == ("bullmq", "day", 5)
    assert len(answer["buckets"]) == 288 and answer["completed"] == 10 and answer["failed"] == 1
    assert answer["bullmq"]["completed"] == {
        "count": 9,
        "prevTS": counting + 10,
        "prevCount": 4,
        "dataLength": 2,
        "dataStart": 0,
        "data": [3, 2],
    }
    assert answer["oldestWaitingSince"] is not None and answer["html_url"].endswith("?window=day")
    week = (await client.get(links.queue_metrics_api_url(METRICS), {"window": "week"})).json()
    assert len(week["buckets"]) == 168

    bad = await client.get(links.queue_metrics_api_url(METRICS), {"window": "year"})
    assert bad.status_code == 400 and "Unknown window" in bad.json()["error"]

    # An htmx window switch gets the body alone.
    partial = await client.get(links.queue_metrics_url(METRICS, "week"), headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert body.startswith('<section id="metrics-body"') and 'data-window="week"' in body


async def test_a_queue_never_sampled_has_no_history_yet(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "sampled", [("job", {}, {})])
    page = (await client.get(links.queue_metrics_url(SAMPLED_QUEUE))).content.decode()
    assert "No history yet." in page and "data-no-history" in page and "data-throughput-chart" not in page
    assert "Last hour: 0 completed" not in page


async def test_overview_sparklines_are_read_once_a_minute(
    client: AsyncClient, redis_client: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_jobs(redis_url, "sampled", [("job", {}, {})])
    await add_jobs(redis_url, "recorded", [("job", {}, {})])
    await record_metrics(redis_client, METRICS, "completed", last_minute(now_ms()) - MINUTE_MS, 7, 2, [4])
    reads: list[list[QueueRef]] = []
    real = throughput.fetch_throughput

    async def counted(client: Redis, queues: list[QueueRef], *args: Any) -> Any:
        reads.append(list(queues))
        return await real(client, queues, *args)

    monkeypatch.setattr(throughput, "fetch_throughput", counted)
    first = (await client.get(mount())).content.decode()
    second = (await client.get(mount())).content.decode()
    assert reads == [[METRICS, SAMPLED_QUEUE]]  # one pipelined read of the rows shown, then the cache
    for content in (first, second):
        assert "data-sparkline" in content and 'data-completed="' in content
        # The recorded queue's last hour as text: 4 a minute before the counting minute, which holds 5.
        assert "9 completed, 0 failed" in content and 'data-completed="' + "," * 57 + '4,5,0"' in content
        assert "no history yet" in content  # the queue nobody sampled yet
    assert "bullmq_dashboard/vendor/uPlot.iife" in first and "bullmq_dashboard/charts.js" in first
