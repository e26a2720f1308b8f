"""Attacks on the health verdict (issue 15) by a job author who makes one page view cost unbounded work:
huge `meta` flags, a huge child key hidden in a parent's dependencies set, child keys of a thousand
colons. Costs are counted (bytes Redis sent, commands it ran, lookups made), never timed."""

from __future__ import annotations

from typing import Any

from django.test import AsyncClient
from django.urls import reverse
from redis.asyncio import Redis

from dashboard import links
from dashboard.views.metrics import VIEWER_SCRAPES_PER_MINUTE
from queues.health import HealthMemory, ReasonCode, child_queue, waited_on
from queues.models import QueueRef
from queues.signals import fetch_signals
from tests.support.builders import add_jobs
from tests.support.urls import dashboard_url

EMAIL = QueueRef("default", "bull", "email")
MB = 1024 * 1024


def health_url(queue: QueueRef) -> str:
    return reverse("bullmq_dashboard:api-queue-health", args=[queue.connection, queue.key])


async def net_out(client: Redis) -> int:
    stats: dict[str, Any] = await client.info("stats")
    return int(stats["total_net_output_bytes"])


async def command_calls(client: Redis, command: str) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_a_huge_meta_version_is_not_copied_by_health_or_counts(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """`meta` `version` was copied whole (HMGET) into every counts and signals reply: 10 MB to Python per
    health read, per overview row."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    assert (await client.get(health_url(EMAIL))).status_code == 200  # scripts loaded
    await redis_client.hset("bull:email:meta", "version", "bullmq:6." + "1" * (10 * MB))
    before = await net_out(redis_client)
    answer = await client.get(health_url(EMAIL))
    overview = await client.get(links.overview_url())
    sent = await net_out(redis_client) - before
    print("bytes Redis sent for one health read and one overview:", sent)
    assert answer.status_code == 200 and overview.status_code == 200
    assert sent < MB


async def test_a_huge_paused_flag_is_not_copied_and_still_pauses(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    assert (await client.get(health_url(EMAIL))).status_code == 200
    await redis_client.hset("bull:email:meta", "paused", "1" * (10 * MB))
    before = await net_out(redis_client)
    answer = await client.get(health_url(EMAIL))
    sent = await net_out(redis_client) - before
    print("bytes Redis sent for one health read:", sent)
    assert sent < MB
    assert answer.json()["verdict"] == "stuck"
    assert "paused" in {each["code"] for each in answer.json()["reasons"]}


async def test_a_huge_child_key_hidden_among_small_ones_is_never_copied(
    redis_url: str, redis_client: Redis
) -> None:
    """MEMORY USAGE SAMPLES n of a set measures the first members of its hash table, SRANDMEMBER picks
    others: a 10 MB member the sample missed was copied into the script on about half the reads (up to
    512 MB a member, 15 members a queue)."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await fetch_signals(redis_client, [EMAIL])  # loads the script
    key = "bull:email:p1:dependencies"
    huge = "bull:sms:" + "y" * (10 * MB)
    for attempt in range(50):  # the hash table's order follows Redis's random hash seed
        await redis_client.delete(key)
        await redis_client.sadd(key, *[f"bull:sms:{attempt}-{n}" for n in range(5)], huge)
        estimate = await redis_client.memory_usage(key, samples=3)
        if estimate is not None and estimate < MB:
            break
    else:
        raise AssertionError("the sample always saw the huge member")
    print("MEMORY USAGE SAMPLES 3:", estimate, "SAMPLES 0:", await redis_client.memory_usage(key, samples=0))
    await redis_client.zadd("bull:email:waiting-children", {"p1": 1})
    before = await command_calls(redis_client, "srandmember")
    for _ in range(8):
        (row,) = await fetch_signals(redis_client, [EMAIL])
        assert row.waiting_on == ()
    assert await command_calls(redis_client, "srandmember") - before == 0
    await redis_client.srem(key, huge)
    (row,) = await fetch_signals(redis_client, [EMAIL])
    assert len(row.waiting_on) == 3  # a set of small keys is still sampled


async def test_a_dependencies_set_too_large_to_measure_is_left_out(
    redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.sadd("bull:email:p1:dependencies", *[f"bull:sms:{n}" for n in range(5000)])
    await redis_client.zadd("bull:email:waiting-children", {"p1": 1})
    (row,) = await fetch_signals(redis_client, [EMAIL])
    assert row.waiting_on == ()


class CountingLookups(dict[str, QueueRef]):
    """The known queues by key prefix, counting the lookups made."""

    lookups = 0

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.lookups += 1
        return super().get(key, default)


def test_a_child_key_of_a_thousand_colons_costs_a_bounded_number_of_lookups() -> None:
    """Each colon of a child key was a candidate end of its queue's part: a 1 KB key of colons cost a
    thousand slices of up to 1 KB, about 10 ms of the event loop per sampled queue."""
    known = CountingLookups({f"bull:q{n}:": QueueRef("default", "bull", f"q{n}") for n in range(1000)})
    assert child_queue("bull:" + ":" * 1018 + "x", known) is None
    print("lookups for one key:", known.lookups)
    assert known.lookups <= 32
    tagged = QueueRef("default", "{t}:a:b", "c")
    known[tagged.key_prefix] = tagged
    assert child_queue("{t}:a:b:c:job:with:colons", known) == tagged
    assert child_queue("bull:q7:1", known) == QueueRef("default", "bull", "q7")


async def test_waited_on_maps_sampled_keys_once(redis_url: str, redis_client: Redis) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.sadd("bull:email:p1:dependencies", "bull:sms:1", "bull:" + ":" * 1000)
    await redis_client.zadd("bull:email:waiting-children", {"p1": 1})
    (row,) = await fetch_signals(redis_client, [EMAIL])
    sms = QueueRef("default", "bull", "sms")
    assert waited_on(row, {"bull:sms:": sms, "bull:email:": EMAIL}) == [sms]


async def test_the_first_tally_of_an_ordinary_events_stream_is_cheap(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """A queue as BullMQ keeps it (10,000 events, trimmed by maxLenEvents; failed events of ~300 bytes)
    is over the 1 MB byte budget, so the first tally of the window read it one entry at a time: 2,000
    XRANGE calls in one script, about 40 ms of Redis for one API read. Now in steps of up to 32."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.eval(
        "for i = 1, 10000 do redis.call('XADD', KEYS[1], '*', 'event', 'failed', 'jobId', tostring(i),"
        " 'failedReason', string.rep('x', 300), 'prev', 'active') end",
        1,
        "bull:email:events",
    )
    await fetch_signals(redis_client, [EMAIL])  # loads the script, tallies nothing
    before = await command_calls(redis_client, "xrange")
    usec0 = (await redis_client.info("commandstats"))["cmdstat_evalsha"]["usec"]
    answer = await client.get(health_url(EMAIL))
    print(
        "evalsha usec of the read:",
        (await redis_client.info("commandstats"))["cmdstat_evalsha"]["usec"] - usec0,
    )
    calls = await command_calls(redis_client, "xrange") - before
    stats: dict[str, Any] = await redis_client.info("commandstats")
    print("XRANGE calls in one health read:", calls, "evalsha usec so far:", stats["cmdstat_evalsha"]["usec"])
    assert answer.status_code == 200
    assert calls <= 80  # steps doubling up to 32 entries: 67 calls for 2,000 entries


async def test_a_viewer_repeating_the_scrape_is_refused_past_the_minutes_allowance(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """`<mount>/metrics` reads every queue a signed-in viewer may view afresh on each GET: a loop of
    GETs cost Redis a full scrape each time. A viewer gets VIEWER_SCRAPES_PER_MINUTE a minute, then a
    429 that reads nothing (the token's scraper is not limited)."""
    for n in range(20):
        await add_jobs(redis_url, f"q{n}", [("send", {}, {})])
    metrics = dashboard_url("metrics")
    for _ in range(VIEWER_SCRAPES_PER_MINUTE):
        assert (await client.get(metrics)).status_code == 200
    before = await command_calls(redis_client, "evalsha")
    lists = await command_calls(redis_client, "client|list")
    refused = await client.get(metrics)
    assert refused.status_code == 429 and refused["Retry-After"] == "5"
    assert "metrics token" in refused.content.decode()
    assert await command_calls(redis_client, "evalsha") == before
    assert await command_calls(redis_client, "client|list") == lists


def test_many_judged_queues_do_not_reset_how_long_a_queue_has_been_stuck() -> None:
    """The memory dropped the longest held conditions first: once more conditions held than it keeps
    (queues without workers count even when empty), the queue without a worker for longest lost its
    `since`, turned from stuck back to degraded, and its STUCK alert resolved."""
    memory = HealthMemory(size=3)
    stuck = QueueRef("default", "bull", "stuck")
    memory.since(stuck, ReasonCode.NO_WORKERS, True, 0)
    for tick, name in enumerate(["a", "b", "c", "d", "e"], start=1):
        memory.since(stuck, ReasonCode.NO_WORKERS, True, tick * 1000)  # judged again each tick
        memory.since(QueueRef("default", "bull", name), ReasonCode.NO_WORKERS, True, tick * 1000)
    assert memory.known(stuck, ReasonCode.NO_WORKERS) == 0
