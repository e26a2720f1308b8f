"""What one read copies inside Redis is bounded by what the page shows, not by how a job author shaped
the keys: short values first and long ones after (MEMORY USAGE with a few samples only sees the first
nodes), very long ids, garbage in numeric fields, a huge last log line. Each test is an attack from an
adversarial review of the bounds; none times anything: they count what the scripts read and what Redis
sent."""

from __future__ import annotations

import pytest
from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import links
from queues.jobs import LOG_MARK, ReadLimits, fetch_job, fetch_job_page, fetch_logs
from queues.live.streams import EVENTS
from queues.models import QueueRef
from tests.support.builders import add_jobs

pytestmark = pytest.mark.host_compatible
MB = 1024 * 1024
UPLOADS = QueueRef("default", "bull", "uploads")
EMAIL = QueueRef("default", "bull", "email")
LIMITS = ReadLimits()


async def sent_by_redis(redis_client: Redis) -> int:
    return int((await redis_client.info("stats"))["total_net_output_bytes"])


async def test_a_stream_of_small_then_large_events_is_read_within_its_bound(redis_client: Redis) -> None:
    key = "bull:reports:events"
    pipe = redis_client.pipeline(transaction=False)
    for i in range(3000):  # the queue's ordinary history: small events
        pipe.xadd(key, {"event": "waiting", "jobId": str(i)})
    await pipe.execute()
    offset = (await redis_client.xrevrange(key, count=1))[0][0].decode()
    for i in range(40):  # then jobs that return 2 MB each (BullMQ copies returnvalue into the event)
        await redis_client.xadd(key, {"event": "completed", "jobId": f"r{i}", "returnvalue": "x" * (2 * MB)})
    await redis_client.xadd(key, {"event": "drained", "jobId": ""})

    [flat] = await EVENTS.call(redis_client, [key], [500, offset])
    # The 1 MB budget is spent by the first 2 MB entry: one, not 40, and "more" says the read stopped
    # at the budget (the watcher reads on).
    assert len(flat) == 4 and flat[1] == b"completed" and flat[3] == b"more"
    [rest] = await EVENTS.call(redis_client, [key], [500, flat[0].decode()])
    assert rest[1] == b"completed" and rest[2] == b"r1"  # the next call goes on where this one stopped


async def test_a_small_stream_is_read_in_one_step(redis_client: Redis) -> None:
    key = "bull:mail:events"
    for i in range(30):
        await redis_client.xadd(key, {"event": "waiting", "jobId": f"j{i}", "prev": "x" * 100})
    [flat] = await EVENTS.call(redis_client, [key], [500, "0-0"])
    assert flat[2::3] == [f"j{i}".encode() for i in range(30)]
    assert len(flat) == 90  # the whole stream: no "more"


async def skewed_logs(redis_url: str, redis_client: Redis, long_lines: int) -> str:
    """500 short lines (the nodes MEMORY USAGE samples) and then `long_lines` lines of 2 MB."""
    await add_jobs(redis_url, "uploads", [("upload", {}, {"jobId": "u1"})])
    key = "bull:uploads:u1:logs"
    pipe = redis_client.pipeline(transaction=False)
    for i in range(500):
        pipe.rpush(key, f"step {i}: " + "." * 90)
    await pipe.execute()
    for _ in range(long_lines):
        await redis_client.rpush(key, "y" * (2 * MB))
    await redis_client.rpush(key, "done")
    return key


async def test_a_log_page_of_long_lines_after_short_ones_copies_at_most_one(
    redis_url: str, redis_client: Redis
) -> None:
    await skewed_logs(redis_url, redis_client, 100)
    page = await fetch_logs(redis_client, UPLOADS, "u1", 6, LIMITS)  # lines 500-599: all 2 MB
    assert page.count == 601
    assert len(page.items) <= 1 and page.not_read >= 99
    assert all(len(line) <= LIMITS.display_bytes for line in page.items)
    detail = await fetch_job(redis_client, UPLOADS, "u1", LIMITS, log_page=6)
    assert detail is not None
    assert len(detail.logs.items) <= 1 and detail.logs.not_read >= 99
    first = await fetch_logs(redis_client, UPLOADS, "u1", 1, LIMITS)  # the short lines are still read
    assert len(first.items) == 100 and first.not_read == 0


async def test_a_page_of_short_logs_is_read_whole(redis_url: str, redis_client: Redis) -> None:
    await skewed_logs(redis_url, redis_client, 0)
    page = await fetch_logs(redis_client, UPLOADS, "u1", 6, LIMITS)
    assert page.items == ["done"] and page.not_read == 0


async def test_the_log_mark_never_copies_a_huge_last_line(redis_url: str, redis_client: Redis) -> None:
    key = await skewed_logs(redis_url, redis_client, 0)
    count, digest = await LOG_MARK.call(redis_client, [key], [LIMITS.copy_bytes])
    assert count == 501 and len(digest) == 40  # small logs: the last line's sha1
    await redis_client.rpush(key, "z" * (64 * MB))
    before = await sent_by_redis(redis_client)
    count, digest = await LOG_MARK.call(redis_client, [key], [LIMITS.copy_bytes])
    assert count == 502 and digest.startswith(b"big:")
    await redis_client.rpush(key, "z")
    assert (await LOG_MARK.call(redis_client, [key], [LIMITS.copy_bytes]))[1] != digest  # still moves
    assert await sent_by_redis(redis_client) - before < 10_000


async def test_long_ids_end_the_page_once_a_megabyte_of_them_is_copied(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"{i}-" + "i" * (3 * MB)}) for i in range(25)])
    page = await fetch_job_page(redis_client, EMAIL, "waiting", 1, 25, LIMITS)
    assert page.total == 25
    assert len(page.jobs) == 2  # one id copied (3 MB > the 1 MB budget), then the page ends
    cut, rest = page.jobs
    assert "longer than 1 KB" in cut.problem and len(cut.id) == 1024
    assert rest.id == "" and "too long to copy" in rest.problem
    response = await client.get(links.queue_url(EMAIL) + "?state=waiting")
    assert response.status_code == 200 and b"too long to copy" in response.content


async def test_garbage_in_numeric_fields_is_not_sent(redis_url: str, redis_client: Redis) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"j{i}"}) for i in range(20)])
    for i in range(20):  # another program's garbage in a job hash
        await redis_client.hset(f"bull:email:j{i}", "processedOn", "9" * (5 * MB))
    before = await sent_by_redis(redis_client)
    page = await fetch_job_page(redis_client, EMAIL, "waiting", 1, 25, LIMITS)
    assert await sent_by_redis(redis_client) - before < MB  # was 100 MB: every field sent whole
    assert len(page.jobs) == 20 and all(job.processed_on is None and job.name == "send" for job in page.jobs)


async def test_children_with_large_return_values_are_listed_within_the_budget(
    redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "uploads", [("parent", {}, {"jobId": "p"})])
    processed = "bull:uploads:p:processed"
    for i in range(40):  # 40 children that each returned 1 MB (BullMQ stores it in the parent's hash)
        await redis_client.hset(processed, f"bull:thumbs:c{i}", '"' + "v" * MB + '"')
    detail = await fetch_job(redis_client, UPLOADS, "p", LIMITS)
    assert detail is not None
    listed = [child for child in detail.children if child.processed]
    assert detail.children_counts["processed"] == 40
    assert 0 < len(listed) <= 9 and detail.children_not_listed == 40 - len(listed)


async def test_a_page_of_jobs_with_large_summary_fields_copies_within_the_page_budget(
    redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"j{i}"}) for i in range(200)])
    value = "v" * 60_000  # under the 64 KB a single field may be, 4 of them per job: 48 MB in all
    pipe = redis_client.pipeline(transaction=False)
    for i in range(200):
        pipe.hset(
            f"bull:email:j{i}", mapping={f: value for f in ("name", "failedReason", "progress", "delay")}
        )
    await pipe.execute()
    page = await fetch_job_page(redis_client, EMAIL, "waiting", 1, 200, LIMITS)
    assert len(page.jobs) == 200 and all(not job.problem for job in page.jobs)
    read = [job for job in page.jobs if job.name.startswith("v")]
    # 240 KB of values per job: the 8 MB page budget reads about 35 of them; the rest show sizes.
    assert 0 < len(read) <= LIMITS.budget_bytes // 240_000 + 1
    assert all(job.name == "[not read: 60000 bytes]" for job in page.jobs if job not in read)
    assert all(job.timestamp for job in page.jobs[: len(read)])


async def test_without_the_memory_command_fields_are_listed_and_log_marks_still_move(
    redis_url: str, redis_client: Redis
) -> None:
    """A Redis user whose ACL denies MEMORY (a strict allowlist, a managed Redis): nothing is read whole,
    a small job still shows its own fields, and a log list too large to read still has a mark."""
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "m1"})])
    await redis_client.hset("bull:email:m1", mapping={"deid": "dedup-1", "customField": "shown"})
    await redis_client.rpush("bull:email:m1:logs", *(["x" * 1000] * 2000))  # 2 MB: not read whole
    await redis_client.execute_command("ACL", "SETUSER", "no-memory", "on", ">pw", "~*", "+@all", "-memory")
    limited = Redis.from_url(redis_url.replace("redis://", "redis://no-memory:pw@"))
    try:
        detail = await fetch_job(limited, EMAIL, "m1", LIMITS)
        mark = await LOG_MARK.call(limited, ["bull:email:m1:logs"], [MB])
    finally:
        await limited.aclose()
        await redis_client.execute_command("ACL", "DELUSER", "no-memory")
    assert detail is not None
    assert detail.extra_fields["customField"].value == "shown" and "deid" in detail.extra_fields
    assert detail.hidden_fields == 0
    assert mark == [2000, b"unsized"]


async def test_log_lines_just_under_the_copy_bound_are_shown(redis_url: str, redis_client: Redis) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "l1"})])
    await redis_client.rpush("bull:email:l1:logs", *(["y" * 1_000_000] * 20))  # each under the 1 MB bound
    logs = await fetch_logs(redis_client, EMAIL, "l1", 1, LIMITS)
    assert logs.count == 20
    # 8 MB budget: the first lines are read (cut to the display limit), the others counted as not read
    assert 1 <= len(logs.items) <= LIMITS.budget_bytes // 1_000_000 + 1
    assert all(item == "y" * LIMITS.display_bytes for item in logs.items)
