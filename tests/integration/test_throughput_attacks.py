"""Attacks on the throughput charts (issue 14, point 1) and what answers them: each test states what
should hold. Kept from an adversarial review (first written in a scratch directory, failing), with the
documented ACLs, the EVALSHA_RO fallback and the sampling cap's counting added."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.throughput import SPARKLINES, sample_tick
from queues import sampling, throughput
from queues.models import QueueRef
from queues.sampling import MINUTE_MS, record_samples, sample_key
from queues.throughput import BULLMQ, NO_HISTORY, SAMPLED, WINDOWS, fetch_throughput, last_minute
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings

pytestmark = pytest.mark.host_compatible

PREFIX = "bullmq-dashboard"
HOUR = WINDOWS["hour"]
METRICS = QueueRef("default", "bull", "recorded")
SAMPLED_QUEUE = QueueRef("default", "bull", "sampled")


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    sampling.forget_refusals()
    SPARKLINES.clear()
    yield
    sampling.forget_refusals()
    SPARKLINES.clear()


async def make_queue(client: Redis, queue: QueueRef) -> None:
    await client.hset(f"{queue.key_prefix}meta", mapping={"opts.maxLenEvents": "10000"})


async def record_metrics(
    client: Redis, queue: QueueRef, kind: str, prev_ts: int, count: int, prev: int, data: list[Any]
) -> None:
    await client.hset(
        f"{queue.key_prefix}metrics:{kind}", mapping={"count": count, "prevTS": prev_ts, "prevCount": prev}
    )
    if data:
        await client.rpush(f"{queue.key_prefix}metrics:{kind}:data", *data)


async def slowest_script_us(client: Redis) -> int:
    """The longest EVALSHA in the slow log (µs), which is reset and set to log everything by `logging`."""
    entries = await client.slowlog_get(1000)
    durations = [
        int(entry["duration"])
        for entry in entries
        if str(entry["command"]).lower().startswith(("evalsha", "b'evalsha"))  # EVALSHA_RO too
    ]
    return max(durations, default=0)


class SlowLog:
    def __init__(self, client: Redis) -> None:
        self.client = client

    async def __aenter__(self) -> SlowLog:
        await self.client.config_set("slowlog-log-slower-than", 0)
        await self.client.config_set("slowlog-max-len", 100000)
        await self.client.slowlog_reset()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.config_set("slowlog-log-slower-than", 10000)

    async def slowest_eval_ms(self) -> float:
        return await slowest_script_us(self.client) / 1000


def acl_user(redis_url: str, name: str, *rules: str) -> Iterator[str]:
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", f">{name}-pw", *rules)
    try:
        yield redis_url.replace("redis://", f"redis://{name}:{name}-pw@")
    finally:
        admin.execute_command("ACL", "DELUSER", name)
        admin.close()


# ------------------------------------------------------------------------------------------------
# 1. A least-privilege ACL on the queues' key pattern (docs/deployment.md recommends `~bull:*`) breaks
#    every chart, even of queues whose workers record BullMQ's metrics: throughput.lua declares the
#    dashboard's sample key in KEYS, and Redis refuses the whole EVALSHA with NOPERM.


@pytest.fixture
def bull_only_url(redis_url: str) -> Iterator[str]:
    yield from acl_user(redis_url, "bullonly", "~bull:*", "+@all")


async def test_acl_on_the_queue_prefix_still_draws_bullmq_metrics(
    redis_client: Redis, bull_only_url: str
) -> None:
    now = now_ms()
    await make_queue(redis_client, METRICS)
    await record_metrics(redis_client, METRICS, "completed", last_minute(now) - MINUTE_MS, 7, 2, [4])
    reader = Redis.from_url(bull_only_url)
    try:
        (found,) = await fetch_throughput(reader, [METRICS], HOUR, now, PREFIX)
    finally:
        await reader.aclose()
    assert found.problems == (), found.problems
    assert found.source == BULLMQ and found.completed_total == 9


# ------------------------------------------------------------------------------------------------
# 2. MEMORY refused (an ACL without +memory, managed Redis): keyBytes() is nil, so wholeKeyFits() is
#    always false and throughput.lua never reads the sample stream: every sampled chart says "too large
#    to read" although the stream is tiny. (sample_counts.lua keeps recording: the samples are written
#    but never shown.)


@pytest.fixture
def no_memory_url(redis_url: str) -> Iterator[str]:
    yield from acl_user(redis_url, "nomemory", "~*", "+@all", "-memory")


async def test_sampled_chart_is_drawn_when_memory_usage_is_refused(
    redis_client: Redis, no_memory_url: str
) -> None:
    start = last_minute(now_ms()) - 20 * MINUTE_MS
    await make_queue(redis_client, SAMPLED_QUEUE)
    await redis_client.xadd(
        f"{SAMPLED_QUEUE.key_prefix}events", {"event": "completed", "jobId": "1"}, id=f"{start + 1000}-0"
    )
    reader = Redis.from_url(no_memory_url)
    try:
        await record_samples(reader, [SAMPLED_QUEUE], start + MINUTE_MS + 5_000, PREFIX)
        assert await redis_client.xlen(sample_key(PREFIX, SAMPLED_QUEUE)) == 10  # recorded fine
        (found,) = await fetch_throughput(reader, [SAMPLED_QUEUE], HOUR, start + MINUTE_MS + 5_000, PREFIX)
    finally:
        await reader.aclose()
    assert found.problems == (), found.problems
    assert found.source == SAMPLED and found.completed_total == 1


async def test_week_of_bullmq_metrics_is_whole_when_memory_usage_is_refused(
    redis_client: Redis, no_memory_url: str
) -> None:
    now = now_ms()
    last = last_minute(now)
    await make_queue(redis_client, METRICS)
    # A week of points as a worker with maxDataPoints 10080 keeps them: 1 job a minute.
    await record_metrics(redis_client, METRICS, "completed", last + MINUTE_MS + 5, 10, 10, [1] * 10080)
    reader = Redis.from_url(no_memory_url)
    try:
        (week,) = await fetch_throughput(reader, [METRICS], WINDOWS["week"], now, PREFIX)
    finally:
        await reader.aclose()
    # Read with MEMORY: 10,080; without: 1,000 (MAX_STEPS), the rest shown as "nobody counted".
    assert week.counted_minutes == 10080 and week.completed_total == 10080, (
        week.counted_minutes,
        week.completed_total,
    )


# ------------------------------------------------------------------------------------------------
# 3. One huge element in a metrics data list is copied whole into Lua by every read: listRange() goes
#    LINDEX by LINDEX when the list does not fit 1 MB, and LINDEX copies the element before its length
#    is known ("plus one element"). boundedListRange's average check is not used here, and unlike
#    job_events.lua the read is not refused. Every metrics page view, JSON read and (once a minute per
#    process) every overview row with such a queue blocks Redis for the copy.

HUGE = 128 * 1024 * 1024


async def test_a_huge_metrics_point_is_not_copied_by_a_page_view(redis_client: Redis) -> None:
    """Answered differently from the review's expectation (that element 0 is still read): a data list
    that takes more than READ_BUDGET in memory is not read at all and the page says it is too large
    (BullMQ's own list of a week of points takes 20-100 KB; an element of it cannot be measured
    before it is copied). What holds either way: Redis is not held for the copy."""
    now = now_ms()
    last = last_minute(now)
    await make_queue(redis_client, METRICS)
    # prevTS in the current minute: element 0 is the last whole minute, element 1 the one before.
    await record_metrics(redis_client, METRICS, "completed", last + MINUTE_MS + 5, 1, 1, ["3"])
    await redis_client.rpush(f"{METRICS.key_prefix}metrics:completed:data", b"7" * HUGE)
    async with SlowLog(redis_client) as log:
        (found,) = await fetch_throughput(redis_client, [METRICS], HOUR, now, PREFIX)
        blocked = await log.slowest_eval_ms()
    data = f"{METRICS.key_prefix}metrics:completed:data"
    assert found.completed_metrics is not None and found.completed_metrics.points == ()
    assert f"{data} is too large to read for a chart." in found.problems
    # A page view may block Redis for "a few milliseconds" (DESIGN.md).
    assert blocked < 20, f"one throughput read blocked Redis {blocked:.0f} ms"


async def test_a_huge_failed_event_is_not_copied_by_a_sampler_tick(redis_client: Redis) -> None:
    # The same with the events stream, read by the sampler once a minute (for up to CATCH_UP_MINUTES
    # ticks while it is in the minutes being counted, and by every process). job_events.lua refuses a
    # stream that does not fit instead ("one failed event with a 64 MB reason took 164 ms").
    start = last_minute(now_ms()) - 20 * MINUTE_MS
    await make_queue(redis_client, SAMPLED_QUEUE)
    await redis_client.xadd(
        f"{SAMPLED_QUEUE.key_prefix}events",
        {"event": "failed", "jobId": "1", "failedReason": b"x" * HUGE},
        id=f"{start + 1000}-0",
    )
    async with SlowLog(redis_client) as log:
        await record_samples(redis_client, [SAMPLED_QUEUE], start + MINUTE_MS + 5_000, PREFIX)
        blocked = await log.slowest_eval_ms()
    assert blocked < 20, f"one sampler read blocked Redis {blocked:.0f} ms"


# ------------------------------------------------------------------------------------------------
# 4. An entry of a sample stream with an id in the future (written by anyone who can write under the
#    dashboard's prefix, or left by a Redis whose clock was ahead and was set back) stops the sampler for
#    that queue until that time: sample_counts.lua starts after the newest entry and answers "done", the
#    XADD of an older id would be refused as "taken" anyway, nothing says so, and since nothing is
#    written the key never gets its PEXPIRE (the entry stays for good).


async def test_a_future_sample_entry_does_not_stop_sampling_silently(redis_client: Redis) -> None:
    now = now_ms()
    start = last_minute(now) - 20 * MINUTE_MS
    key = sample_key(PREFIX, SAMPLED_QUEUE)
    await make_queue(redis_client, SAMPLED_QUEUE)
    await redis_client.xadd(key, {"c": 0, "f": 0, "b": 0}, id="99999999999999-0")  # year 5138
    await redis_client.xadd(
        f"{SAMPLED_QUEUE.key_prefix}events", {"event": "completed", "jobId": "1"}, id=f"{start + 1000}-0"
    )
    tick = start + MINUTE_MS + 5_000
    await record_samples(redis_client, [SAMPLED_QUEUE], tick, PREFIX)
    (found,) = await fetch_throughput(redis_client, [SAMPLED_QUEUE], HOUR, tick, PREFIX)
    recorded = found.completed_total == 1
    told = any("future" in problem or "sampl" in problem.lower() for problem in found.problems)
    assert recorded or told, (found.source, found.counted_minutes, found.problems)
    assert await redis_client.pttl(key) > 0  # bounded like every sample key


# ------------------------------------------------------------------------------------------------
# 5. A THROUGHPUT or KEY_PREFIX the dashboard cannot read falls back to the defaults, SAMPLING True
#    included: an operator who turned sampling off (say, for an ACL that may not write, or a Redis
#    they do not want written) and made a typo elsewhere in the dict gets writes to Redis. E012 is
#    a system check, which daphne/uvicorn/gunicorn never run.


@pytest.mark.parametrize(
    "extra",
    [
        {"THROUGHPUT": {"SAMPLING": False, "RECENT_JOBS": 0}},
        {"THROUGHPUT": {"SAMPLING": False, "MAX_SAMPLED_QUEUES": "all"}},
        {"THROUGHPUT": {"SAMPLING": False}, "KEY_PREFIX": "ops dash"},
        # From an environment variable: bool("false") is True, and E012 does not object.
        {"THROUGHPUT": {"SAMPLING": "false"}},
    ],
    ids=["recent-jobs-0", "max-queues-word", "key-prefix-space", "sampling-string-false"],
)
async def test_sampling_off_stays_off_when_another_throughput_setting_is_invalid(
    redis_client: Redis, redis_url: str, extra: dict[str, Any]
) -> None:
    await add_jobs(redis_url, "sampled", [("job", {}, {})])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, **extra)):
        await sample_tick(now_ms())
    written = [key async for key in redis_client.scan_iter(match=f"{PREFIX}:*")]
    assert written == [], f"SAMPLING False, yet the dashboard wrote {written}"


# ------------------------------------------------------------------------------------------------
# 6. The sampler writes into a key that is not its own. With the default settings (no PREFIXES, so
#    every prefix is discovered), a BullMQ queue `bull` under the prefix `bullmq-dashboard:samples`
#    is a queue like any other: its job `q` lives at `bullmq-dashboard:samples:bull:q`, which is also
#    the sample key of the queue `bull:q`. The sampler XADDs a stream there; BullMQ then takes job id
#    `q` for a duplicate (addJob returns the existing id when the job key exists) and the job is lost.


async def test_the_sampler_never_writes_another_queues_job_key(redis_client: Redis, redis_url: str) -> None:
    from bullmq import Queue

    await add_jobs(redis_url, "q", [("job", {}, {})])  # the queue bull:q
    await add_jobs(redis_url, "bull", [("job", {}, {})], prefix=f"{PREFIX}:samples")
    settings = dashboard_settings(redis_url, THROUGHPUT={"SAMPLING": True})
    with override_settings(BULLMQ_DASHBOARD=settings):
        await sample_tick(now_ms())
    colliding = f"{PREFIX}:samples:bull:q"
    kind = (await redis_client.type(colliding)).decode()
    queue = Queue("bull", {"connection": redis_url, "prefix": f"{PREFIX}:samples"})
    try:
        # With the sampler's stream there, BullMQ's addStandardJob fails with WRONGTYPE.
        await queue.add("payment", {"amount": 5}, {"jobId": "q"})
    except redis.exceptions.ResponseError as exc:
        pytest.fail(f"{colliding} is a {kind} written by the sampler; adding job q fails: {exc}")
    finally:
        await queue.close()
    assert await redis_client.hget(colliding, "name") == b"payment"


# ------------------------------------------------------------------------------------------------
# 7. A queue beyond MAX_SAMPLED_QUEUES (the first 200 by connection, prefix and name, queues whose
#    workers record metrics included) is never sampled, but its page promises "The dashboard samples
#    this queue once a minute; the first minutes appear shortly." forever. A job author can push every
#    real queue out by creating 200 queues whose names sort first (`bull:!0` ...).


async def test_a_queue_past_the_sampling_cap_is_not_promised_samples(
    client: AsyncClient, redis_client: Redis, redis_url: str
) -> None:
    await add_jobs(redis_url, "aaa-first", [("job", {}, {})])
    await add_jobs(redis_url, "sampled", [("job", {}, {})])
    settings = dashboard_settings(redis_url, THROUGHPUT={"SAMPLING": True, "MAX_SAMPLED_QUEUES": 1})
    with override_settings(BULLMQ_DASHBOARD=settings):
        for minute in range(3):
            await sample_tick(now_ms() + minute * MINUTE_MS)
        assert await redis_client.exists(sample_key(PREFIX, SAMPLED_QUEUE)) == 0
        page = (await client.get(links.queue_metrics_url(SAMPLED_QUEUE))).content.decode()
        answer = (await client.get(links.queue_metrics_api_url(SAMPLED_QUEUE))).json()
    assert "the first minutes appear shortly" not in page
    assert answer["samplingUnavailable"], answer


# ------------------------------------------------------------------------------------------------
# 8. Cost of the overview's sparklines with 1,000 queues (held: one pipelined EVALSHA a row a minute).


async def test_overview_sparklines_cost_with_1000_queues(redis_client: Redis) -> None:
    queues = [QueueRef("default", "bull", f"q{n:04d}") for n in range(1000)]
    pipe = redis_client.pipeline(transaction=False)
    last = last_minute(now_ms())
    for n, queue in enumerate(queues):
        pipe.hset(f"{queue.key_prefix}meta", mapping={"opts.maxLenEvents": "10000"})
        if n % 2:
            pipe.hset(
                f"{queue.key_prefix}metrics:completed", mapping={"count": 5, "prevTS": last, "prevCount": 1}
            )
            pipe.rpush(f"{queue.key_prefix}metrics:completed:data", *range(60))
        else:
            pipe.xadd(sample_key(PREFIX, queue), {"c": 1, "f": 0, "b": 0}, id=f"{last}-0")
    await pipe.execute()
    # One minute for both views (a view a few ms later may fall into the next minute, which reads anew),
    # and the scripts loaded first (the first pipeline on a Redis without them runs twice).
    read_at = now_ms()
    await SPARKLINES.get([QueueRef("default", "bull", "warm-up")], now=read_at)
    await redis_client.config_resetstat()
    started = time.monotonic()
    async with SlowLog(redis_client) as log:
        found = await SPARKLINES.get(queues, now=read_at)
        slowest = await log.slowest_eval_ms()
    took = time.monotonic() - started
    evals = await evalsha_calls(redis_client)
    again = await SPARKLINES.get(queues, now=read_at)
    print(f"1000 sparklines: {took * 1000:.0f} ms, {evals} script calls, slowest {slowest:.2f} ms")
    assert len(found) == len(again) == 1000
    assert await evalsha_calls(redis_client) == evals  # cached for the minute
    assert evals <= 2 * len(queues) + 10  # two calls a row at most (times are printed, not asserted)


async def evalsha_calls(client: Redis) -> int:
    stats = await client.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_evalsha_ro"))


async def test_concurrent_overview_views_share_one_sparkline_read(redis_client: Redis) -> None:
    """A minute's first views arrive together (several operators, a wall screen, htmx refreshes): each
    one that found the minute's rows missing read them all again. Adapted: a row costs two calls since
    the samples are read by a call of their own (an ACL on the queues' keys alone must keep BullMQ's
    metrics), so five concurrent views must cost what one view costs, not one call a row."""
    import asyncio

    queues = [QueueRef("default", "bull", f"q{n:04d}") for n in range(300)]
    pipe = redis_client.pipeline(transaction=False)
    for queue in queues:
        pipe.hset(f"{queue.key_prefix}meta", mapping={"opts.maxLenEvents": "10000"})
    await pipe.execute()
    await SPARKLINES.get(queues[:1])  # scripts loaded
    SPARKLINES.clear()
    await redis_client.config_resetstat()
    await SPARKLINES.get(queues)
    one_view = await evalsha_calls(redis_client)
    assert one_view == 2 * len(queues)
    SPARKLINES.clear()
    await redis_client.config_resetstat()
    views = await asyncio.gather(*(SPARKLINES.get(queues) for _ in range(5)))
    evals = await evalsha_calls(redis_client)
    assert evals == one_view, f"5 concurrent overview views ran {evals} script calls, one view {one_view}"
    assert all(len(view) == len(queues) for view in views)
    # A view of other rows at the same time reads only those.
    SPARKLINES.clear()
    await redis_client.config_resetstat()
    await asyncio.gather(SPARKLINES.get(queues[:200]), SPARKLINES.get(queues[100:]))
    assert await evalsha_calls(redis_client) == one_view


def test_sparkline_cache_memory_is_bounded_sensibly() -> None:
    """5,000 kept hours (the cache's size) of queues with a full hour of points each. Adapted: the
    review put each Throughput into the cache's dict itself; the cache now keeps what its reads give
    through `keep`, which draws the Sparkline and drops the Throughput."""
    import tracemalloc

    from dashboard.throughput import SparklineCache
    from queues.throughput import parse_throughput, window_bounds

    now = now_ms()
    first, last = window_bounds(HOUR, now)
    points = [str(n).encode() for n in range(60)]
    cache = SparklineCache()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for n in range(5000):
        queue = QueueRef("default", "bull", f"queue-{n:05d}")
        metrics = [b"100", str(last + MINUTE_MS).encode(), b"90", 0, 60, points]
        reply = [metrics, metrics, 1, []]
        cache.keep(queue, PREFIX, last, parse_throughput(queue, HOUR, first, last, [reply]))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(f"SparklineCache with 5000 hours: {grown / 1e6:.1f} MB")
    # What a row draws is two strings of 60 values and two totals (dashboard.throughput.Sparkline).
    assert grown < 10e6


# ------------------------------------------------------------------------------------------------
# Held: per-queue view restrictions, anonymous clients, hostile names in the page.

SMS = QueueRef("default", "bull", "sms")
EMAIL = QueueRef("default", "bull", "email")


async def test_held_per_queue_restriction_on_metrics_page_json_and_sparklines(
    client: AsyncClient, anonymous_client: AsyncClient, redis_client: Redis, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "sms", [("send", {}, {})])
    last = last_minute(now_ms())
    await record_metrics(redis_client, SMS, "completed", last - MINUTE_MS, 777_777, 0, [424_242])
    settings = dashboard_settings(redis_url, PERMISSION="tests.integration.test_security.only_email")
    with override_settings(BULLMQ_DASHBOARD=settings):
        for window in ("hour", "day", "week", "year"):
            for url in (
                links.queue_metrics_url(SMS, window),
                links.queue_metrics_api_url(SMS) + f"?window={window}",
            ):
                response = await client.get(url)
                assert response.status_code == 404, url
                assert b"777" not in response.content and b"424" not in response.content
            htmx = await client.get(links.queue_metrics_url(SMS, window), headers={"HX-Request": "true"})
            assert htmx.status_code == 404
        overview = await client.get(links.overview_url())
        assert b"777" not in overview.content and b"424" not in overview.content
        assert (await client.get(links.queue_metrics_url(EMAIL))).status_code == 200
    anonymous = await anonymous_client.get(links.queue_metrics_api_url(EMAIL))
    assert anonymous.status_code == 401
    page = await anonymous_client.get(links.queue_metrics_url(EMAIL))
    assert page.status_code == 302


async def test_held_hostile_queue_names_and_fields_are_escaped(
    client: AsyncClient, redis_client: Redis, redis_url: str
) -> None:
    name = '"><img src=x onerror=alert(1)>'
    queue = QueueRef("default", "bull", name)
    await make_queue(redis_client, queue)
    last = last_minute(now_ms())
    await redis_client.hset(
        f"{queue.key_prefix}metrics:completed",
        mapping={"count": "<script>", "prevTS": str(last), "prevCount": "1e308"},
    )
    await redis_client.rpush(f"{queue.key_prefix}metrics:completed:data", "<b>", "-5", "NaN", "Infinity")
    await redis_client.hset(
        f"{queue.key_prefix}metrics:failed",
        mapping={"count": "1.7e308", "prevTS": str(last - MINUTE_MS), "prevCount": "-1.7e308"},
    )
    await redis_client.set(sample_key(PREFIX, queue), "<svg onload=alert(2)>")
    # Percentiles and the oldest waiting age from hostile times (each field within 32 bytes).
    for job_id, fields in {
        "huge": {
            "timestamp": "1.7e308",
            "processedOn": "-1.7e308",
            "finishedOn": "1.7e308",
            "delay": "-1e308",
        },
        "nan": {"timestamp": "nan", "processedOn": "inf", "finishedOn": "-inf", "delay": "0x10"},
        "neg": {"timestamp": "-99999999999999999999999999999", "processedOn": "5", "finishedOn": "1"},
    }.items():
        await redis_client.hset(f"{queue.key_prefix}{job_id}", mapping=fields)
        await redis_client.zadd(f"{queue.key_prefix}completed", {job_id: 1})
    await redis_client.rpush(f"{queue.key_prefix}wait", "neg")
    for window in ("hour", "day", "week"):
        response = await client.get(links.queue_metrics_url(queue, window))
        assert response.status_code == 200
        body = response.content.decode()
        assert (
            "<img src=x" not in body
            and "<svg onload" not in body
            and "<script>" not in body.split("</head>")[1]
        )
        answer = await client.get(links.queue_metrics_api_url(queue) + f"?window={window}")
        assert answer.status_code == 200


# ------------------------------------------------------------------------------------------------
# 9. What one metrics page view costs Redis at the documented maxima.


async def script_calls(client: Redis) -> int:
    stats = await client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "evalsha_ro"))


async def test_week_of_samples_read_cost(redis_client: Redis) -> None:
    now = now_ms()
    last = last_minute(now)
    pipe = redis_client.pipeline(transaction=False)
    key = sample_key(PREFIX, SAMPLED_QUEUE)
    await make_queue(redis_client, SAMPLED_QUEUE)
    for n in range(10080, 0, -1):
        pipe.xadd(key, {"c": 12345, "f": 678, "b": 3}, id=f"{last - (n - 1) * MINUTE_MS}-0")
    await pipe.execute()
    before = await script_calls(redis_client)
    async with SlowLog(redis_client) as log:
        started = time.monotonic()
        (week,) = await fetch_throughput(redis_client, [SAMPLED_QUEUE], WINDOWS["week"], now, PREFIX)
        took = time.monotonic() - started
        blocked = await log.slowest_eval_ms()
    calls = await script_calls(redis_client) - before
    print(f"week of samples: Redis {blocked:.1f} ms, request {took * 1000:.0f} ms, {calls} script calls")
    assert week.counted_minutes == 10080
    # Summed in Redis in parts of 360 minutes (no call walks the week): times are printed, not asserted.
    assert calls >= 10080 // 360


async def test_latency_read_cost_at_recent_jobs_10000(redis_client: Redis) -> None:
    from queues.latency import fetch_latency

    queue = QueueRef("default", "bull", "timed")
    await make_queue(redis_client, queue)
    pipe = redis_client.pipeline(transaction=False)
    for n in range(10_000):
        pipe.hset(
            f"{queue.key_prefix}{n}",
            mapping={"timestamp": n, "processedOn": n + 5, "finishedOn": n + 9, "delay": 0},
        )
        pipe.zadd(f"{queue.key_prefix}completed", {str(n): n + 9})
    await pipe.execute()
    before = await script_calls(redis_client)
    async with SlowLog(redis_client) as log:
        (found,) = await fetch_latency(redis_client, [queue], now_ms(), recent_jobs=10_000)
        blocked = await log.slowest_eval_ms()
    calls = await script_calls(redis_client) - before
    print(f"latency of 10,000 jobs: Redis {blocked:.1f} ms, {calls} script calls")
    assert found.processing is not None and found.processing.count == 10_000
    # Read in calls of 500 jobs (no call reads them all): times are printed, not asserted.
    assert calls >= 10_000 // 500


async def test_a_huge_id_next_in_line_is_not_copied_by_a_metrics_view(redis_client: Redis) -> None:
    # includes/oldest_waiting.lua reads the tail of `wait` when the list averages under 256 bytes an
    # element: a 100 MB id behind 500,000 short ones passes (500,000 x 256 B = 128 MB), and every
    # metrics page view copies it (latency.lua runs on each).
    from queues.latency import fetch_latency

    queue = QueueRef("default", "bull", "waiting")
    await make_queue(redis_client, queue)
    wait = f"{queue.key_prefix}wait"
    await redis_client.lpush(wait, b"i" * (100 * 1024 * 1024))  # the tail: next in line
    for start in range(0, 500_000, 50_000):
        await redis_client.lpush(wait, *(str(n) for n in range(start, start + 50_000)))
    async with SlowLog(redis_client) as log:
        await fetch_latency(redis_client, [queue], now_ms())
        blocked = await log.slowest_eval_ms()
    assert blocked < 20, f"one latency read blocked Redis {blocked:.0f} ms"


async def test_writes_refused_for_other_reasons_are_said_too(redis_client: Redis) -> None:
    # NOREPLICAS (min-replicas-to-write) and MISCONF (a failing RDB save) refuse every write like
    # READONLY does, but are not in REFUSALS: nothing is written, a warning is logged every minute, and
    # the chart keeps promising that "the first minutes appear shortly".
    await make_queue(redis_client, SAMPLED_QUEUE)
    await redis_client.config_set("min-replicas-to-write", 1)
    try:
        await record_samples(redis_client, [SAMPLED_QUEUE], now_ms(), PREFIX)
    finally:
        await redis_client.config_set("min-replicas-to-write", 0)
    assert await redis_client.exists(sample_key(PREFIX, SAMPLED_QUEUE)) == 0
    assert sampling.sampling_refusal("default") is not None


# ------------------------------------------------------------------------------------------------
# The documented ACLs (docs/redis-access.md), as written there.


def documented_acl(name: str) -> list[str]:
    """The rules of the ACL SETUSER line for user `name` in docs/redis-access.md."""
    text = (Path(__file__).parents[2] / "docs" / "redis-access.md").read_text()
    line = next(line for line in text.splitlines() if line.startswith(f"ACL SETUSER {name} "))
    return [rule for rule in line.split()[3:] if rule not in ("on", ">CHANGE-ME")]


@pytest.fixture
def viewer_url(redis_url: str) -> Iterator[str]:
    yield from acl_user(redis_url, "viewer", *documented_acl("bullmq-dashboard-viewer"))


@pytest.fixture
def dashboard_url(redis_url: str) -> Iterator[str]:
    yield from acl_user(redis_url, "dashboard", *documented_acl("bullmq-dashboard"))


async def test_the_documented_acls_view_and_record_samples(
    redis_client: Redis, viewer_url: str, dashboard_url: str
) -> None:
    start = last_minute(now_ms()) - 20 * MINUTE_MS
    tick = start + MINUTE_MS + 5_000
    await make_queue(redis_client, SAMPLED_QUEUE)
    await redis_client.xadd(
        f"{SAMPLED_QUEUE.key_prefix}events", {"event": "completed", "jobId": "1"}, id=f"{start + 1000}-0"
    )
    viewer, dashboard = Redis.from_url(viewer_url), Redis.from_url(dashboard_url)
    try:
        # The viewer may read the samples but not write them: its sampling is refused, and said.
        await record_samples(viewer, [SAMPLED_QUEUE], tick, PREFIX)
        assert await redis_client.exists(sample_key(PREFIX, SAMPLED_QUEUE)) == 0
        assert sampling.sampling_refusal("default") is not None
        await record_samples(dashboard, [SAMPLED_QUEUE], tick, PREFIX)
        assert await redis_client.xlen(sample_key(PREFIX, SAMPLED_QUEUE)) == 10
        assert sampling.sampling_refusal("default") is None
        for reader in (viewer, dashboard):
            (found,) = await fetch_throughput(reader, [SAMPLED_QUEUE], HOUR, tick, PREFIX)
            assert found.problems == () and found.source == SAMPLED and found.completed_total == 1
    finally:
        await viewer.aclose()
        await dashboard.aclose()


async def test_a_user_that_may_not_read_the_samples_is_told(redis_client: Redis, bull_only_url: str) -> None:
    start = last_minute(now_ms()) - 20 * MINUTE_MS
    tick = start + MINUTE_MS + 5_000
    await make_queue(redis_client, SAMPLED_QUEUE)
    await record_samples(redis_client, [SAMPLED_QUEUE], tick, PREFIX)
    reader = Redis.from_url(bull_only_url)
    try:
        (found,) = await fetch_throughput(reader, [SAMPLED_QUEUE], HOUR, tick, PREFIX)
        await record_samples(reader, [SAMPLED_QUEUE], tick + MINUTE_MS, PREFIX)
    finally:
        await reader.aclose()
    assert found.source == NO_HISTORY
    assert any(f"the Redis user may not read {PREFIX}:*" in problem for problem in found.problems)
    refusal = sampling.sampling_refusal("default")
    assert refusal is not None and "permissions" in refusal.reason


async def test_a_redis_without_evalsha_ro_reads_samples_with_evalsha(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis 6 answers EVALSHA_RO with "unknown command": the client is remembered, the read repeated
    # with EVALSHA (simulated by sending a command this Redis does not know).
    from redis.asyncio.client import Pipeline

    start = last_minute(now_ms()) - 20 * MINUTE_MS
    tick = start + MINUTE_MS + 5_000
    await make_queue(redis_client, SAMPLED_QUEUE)
    await record_samples(redis_client, [SAMPLED_QUEUE], tick, PREFIX)
    sent: list[str] = []

    def evalsha_ro(self: Pipeline, *args: Any) -> Any:
        sent.append("EVALSHA_RO")
        return self.execute_command("EVALSHA_RO_OF_REDIS_6", *args)

    monkeypatch.setattr(Pipeline, "evalsha_ro", evalsha_ro)
    client = Redis(connection_pool=redis_client.connection_pool)
    real = throughput.lacks_evalsha_ro

    def lacks(client: Redis, replies: Any) -> bool:
        renamed = [
            redis.exceptions.ResponseError(str(reply).replace("evalsha_ro_of_redis_6", "evalsha_ro"))
            if isinstance(reply, redis.exceptions.ResponseError)
            else reply
            for reply in replies
        ]
        return real(client, renamed)

    monkeypatch.setattr(throughput, "lacks_evalsha_ro", lacks)
    (found,) = await throughput.fetch_throughput(client, [SAMPLED_QUEUE], HOUR, tick, PREFIX)
    assert found.source == SAMPLED and found.problems == ()
    assert not throughput.uses_evalsha_ro(client) and sent == ["EVALSHA_RO"]
    (again,) = await throughput.fetch_throughput(client, [SAMPLED_QUEUE], HOUR, tick, PREFIX)
    assert again.source == SAMPLED and sent == ["EVALSHA_RO"]  # EVALSHA from then on


# ------------------------------------------------------------------------------------------------
# The sampling cap counts sampled queues only, and says so.


async def test_queues_with_bullmq_metrics_do_not_use_up_the_sampling_cap(
    client: AsyncClient, redis_client: Redis, redis_url: str
) -> None:
    await add_jobs(redis_url, "aaa-recorded", [("job", {}, {})])
    await add_jobs(redis_url, "sampled", [("job", {}, {})])
    await add_jobs(redis_url, "zzz-last", [("job", {}, {})])
    recorded = QueueRef("default", "bull", "aaa-recorded")
    await record_metrics(redis_client, recorded, "completed", last_minute(now_ms()), 2, 1, [1])
    settings = dashboard_settings(redis_url, THROUGHPUT={"SAMPLING": True, "MAX_SAMPLED_QUEUES": 1})
    with override_settings(BULLMQ_DASHBOARD=settings):
        await sample_tick(now_ms())
        assert await redis_client.exists(sample_key(PREFIX, SAMPLED_QUEUE)) == 1
        assert await redis_client.exists(sample_key(PREFIX, recorded)) == 0
        last = QueueRef("default", "bull", "zzz-last")
        assert await redis_client.exists(sample_key(PREFIX, last)) == 0
        answer = (await client.get(links.queue_metrics_api_url(last))).json()
        assert "over MAX_SAMPLED_QUEUES" in answer["samplingUnavailable"]
        page = (await client.get(links.queue_metrics_url(last))).content.decode()
        assert "over MAX_SAMPLED_QUEUES" in page and "data-sampling-unavailable" in page
        sampled = (await client.get(links.queue_metrics_api_url(SAMPLED_QUEUE))).json()
        assert sampled["samplingUnavailable"] is None


async def test_invalid_settings_say_why_nothing_is_sampled(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "sampled", [("job", {}, {})])
    settings = dashboard_settings(redis_url, THROUGHPUT={"SAMPLING": "false"})
    with override_settings(BULLMQ_DASHBOARD=settings):
        answer = (await client.get(links.queue_metrics_api_url(SAMPLED_QUEUE))).json()
    assert "E012" in answer["samplingUnavailable"] and answer["source"] == "none"


async def test_queues_under_the_key_prefix_are_neither_listed_nor_opened(
    client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "bull", [("job", {}, {})], prefix=f"{PREFIX}:samples")
    await add_jobs(redis_url, "email", [("job", {}, {})])
    hidden = QueueRef("default", f"{PREFIX}:samples", "bull")
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url)):
        overview = (await client.get(links.overview_url())).content.decode()
        assert hidden.key not in overview and "email" in overview
        assert (await client.get(links.queue_metrics_url(hidden))).status_code == 404


# ------------------------------------------------------------------------------------------------
# Bounds of the sample reads, and keys the sampler leaves alone.


async def test_a_sample_key_without_expiry_gets_one_even_when_nothing_is_due(redis_client: Redis) -> None:
    now = now_ms()
    key = sample_key(PREFIX, SAMPLED_QUEUE)
    await make_queue(redis_client, SAMPLED_QUEUE)
    newest = sampling.newest_recordable_minute(now)
    await redis_client.xadd(key, {"c": 0, "f": 0, "b": 0}, id=f"{newest}-0")
    assert await redis_client.pttl(key) == -1
    await record_samples(redis_client, [SAMPLED_QUEUE], now, PREFIX)
    assert await redis_client.xlen(key) == 1 and 0 < await redis_client.pttl(key) <= sampling.WEEK_MS


async def test_unread_sample_minutes_are_said_not_shown_as_gaps(
    redis_client: Redis, no_memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = now_ms()
    last = last_minute(now)
    key = sample_key(PREFIX, SAMPLED_QUEUE)
    await make_queue(redis_client, SAMPLED_QUEUE)
    for n in range(59, -1, -1):
        await redis_client.xadd(key, {"c": 1, "f": 0, "b": 0}, id=f"{last - n * MINUTE_MS}-0")
    # Without MEMORY, one entry at a time within the part's budget (made small here).
    monkeypatch.setattr(throughput, "MIN_PART_BUDGET", 200)
    monkeypatch.setattr(throughput, "READ_BUDGET", 200)
    reader = Redis.from_url(no_memory_url)
    try:
        (found,) = await fetch_throughput(reader, [SAMPLED_QUEUE], HOUR, now, PREFIX)
    finally:
        await reader.aclose()
    assert found.source == SAMPLED and 0 < found.counted_minutes < 60
    unread = 60 - found.counted_minutes
    assert f"{unread} minutes of {key} were not read" in " ".join(found.problems)
    # Entries that are no minutes crowd the part: the minutes after them are said to be unread.
    other = QueueRef("default", "bull", "crowded")
    await make_queue(redis_client, other)
    crowded = sample_key(PREFIX, other)
    for seq in range(1, 61):
        await redis_client.xadd(crowded, {"c": 1, "f": 0, "b": 0}, id=f"{last - 59 * MINUTE_MS}-{seq}")
    await redis_client.xadd(crowded, {"c": 5, "f": 0, "b": 0}, id=f"{last}-0")
    monkeypatch.undo()
    (found,) = await fetch_throughput(redis_client, [other], HOUR, now, PREFIX)
    assert found.completed_total == 0 and "59 minutes of" in " ".join(found.problems)


async def test_hostile_sample_entries_are_left_out(redis_client: Redis) -> None:
    now = now_ms()
    last = last_minute(now)
    key = sample_key(PREFIX, SAMPLED_QUEUE)
    await make_queue(redis_client, SAMPLED_QUEUE)
    await redis_client.xadd(key, {"c": "9" * 16, "f": 0, "b": 0}, id=f"{last - 3 * MINUTE_MS}-0")
    await redis_client.xadd(key, {"c": "-1", "f": 0, "b": 0}, id=f"{last - 2 * MINUTE_MS}-0")
    await redis_client.xadd(key, {"c": 2, "f": 1}, id=f"{last - MINUTE_MS}-0")  # no flags
    await redis_client.xadd(key, {"c": 3, "f": 1, "b": 2}, id=f"{last}-0")
    (found,) = await fetch_throughput(redis_client, [SAMPLED_QUEUE], HOUR, now, PREFIX)
    assert (found.completed_total, found.failed_total, found.counted_minutes) == (3, 1, 1)
    assert found.lower_bound and found.sampled_since == last - 3 * MINUTE_MS


async def test_a_sample_key_inside_a_queues_keys_is_never_written(redis_client: Redis) -> None:
    # A queue `samples` under the prefix KEY_PREFIX itself holds every sample key among its job keys; a
    # queue `bull` under `<KEY_PREFIX>:samples` those of the queues under `bull`. Discovery lists no
    # such queue, and the sampler asks Redis before each write.
    owner = QueueRef("default", f"{PREFIX}:samples", "bull")
    elsewhere = QueueRef("default", "other", "q")
    for queue in (owner, SAMPLED_QUEUE, elsewhere):
        await make_queue(redis_client, queue)
    tallies = await record_samples(redis_client, [SAMPLED_QUEUE, elsewhere], now_ms(), PREFIX)
    assert await redis_client.exists(sample_key(PREFIX, SAMPLED_QUEUE)) == 0
    assert (tallies[0].kind, tallies[0].owner) == ("taken", owner.key)
    assert tallies[1].kind == "count" and await redis_client.exists(sample_key(PREFIX, elsewhere)) == 1
    await make_queue(redis_client, QueueRef("default", PREFIX, "samples"))
    (everything,) = await record_samples(redis_client, [elsewhere], now_ms() + MINUTE_MS, PREFIX)
    assert (everything.kind, everything.owner) == ("taken", f"{PREFIX}:samples")
