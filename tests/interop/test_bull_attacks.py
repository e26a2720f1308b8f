"""Attacks on the Bull 3/4 support: queues whose keys two libraries wrote, listed queues Bull fills late,
stray `<x>:<y>:id` strings, and Bull actions over large sets or failing partway. Real Bull 4 and real
BullMQ 6 write the state; Bull's own getters judge what is left."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from django.test import AsyncClient, override_settings

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.registry import reset_directories
from queues import kinds
from queues.actions import BATCH_SIZE
from queues.connections import ConnectionSettings, close_clients
from queues.discovery import Directory
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis
from tests.support.bull import BULL4, build_bull, bull_view
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.node import INTEROP
from tests.support.urls import dashboard_url

pytestmark = [pytest.mark.interop]

HOUR = 3_600_000
MAIN = QueueRef("default", "bull", "legacy-main")


def _node(cwd: Any, prelude: str, url: str, code: str) -> Any:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the Bull tests need Node 20 (see README)")
    script = (
        f"{prelude} const url = process.argv[1];"
        "setTimeout(() => { console.error('timed out'); process.exit(3); }, 30000).unref();"
        f"(async () => {{ {code} }})()"
        ".then(r => process.stdout.write(JSON.stringify(r ?? null) + '\\n', () => process.exit(0)))"
        ".catch(err => { console.error(err); process.exit(1); });"
    )
    result = subprocess.run(
        [node, "-e", script, url], cwd=cwd, capture_output=True, text=True, timeout=90, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"node exited {result.returncode}:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def with_bull(url: str, code: str) -> Any:
    """Run `code` (an async function's body; `Queue` is npm bull 4's) and return what it returns."""
    return _node(BULL4, "const Queue = require('bull');", url, code)


def with_bullmq(url: str, code: str) -> Any:
    """Run `code` (an async function's body; `Queue` is Node BullMQ 6's, `connection` the Redis)."""
    return _node(
        INTEROP,
        "const { Queue } = require('bullmq'); const connection = { url: process.argv[1] };",
        url,
        code,
    )


def bull_counts(url: str, name: str) -> dict[str, Any]:
    """Bull's own getJobCounts() and waiting / delayed ids of `bull:<name>`."""
    return dict(
        with_bull(
            url,
            f"const q = new Queue({json.dumps(name)}, url); const counts = await q.getJobCounts();"
            " const waiting = (await q.getWaiting()).map(j => j.id);"
            " const delayed = (await q.getDelayed()).map(j => j.id);"
            " await q.close(); return {counts, waiting, delayed};",
        )
    )


@pytest.fixture
def server() -> Iterator[str]:
    with ThrowawayRedis() as redis_server:
        yield redis_server.url


@pytest.fixture
def raw(server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def admin(server: str, superuser_client: AsyncClient) -> AsyncIterator[AsyncClient]:
    """A superuser on a dashboard pointed at the test's own Redis."""
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(server)):
        reset_directories()
        yield superuser_client
        await close_dashboard()
    reset_directories()


def snapshot(raw: redis.Redis, queue: QueueRef) -> dict[str, Any]:
    """The queue's keys with their types and sizes (`stalled-check` expires on its own)."""
    found = {}
    for key in raw.scan_iter(match=f"{queue.key_prefix}*", count=1000):
        if key.endswith(":stalled-check"):
            continue
        kind = raw.type(key)
        size = {"list": raw.llen, "zset": raw.zcard, "hash": raw.hgetall}.get(kind)
        found[key] = (kind, size(key) if size else raw.get(key) if kind == "string" else None)
    return found


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


async def last_audit() -> AuditEntry:
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None
    return entry


def calls(raw: redis.Redis, command: str) -> int:
    return int(raw.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


# ---- one queue, two libraries ----


async def test_a_bull_queue_a_bullmq_queue_object_was_opened_on_is_read_but_never_written(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """A BullMQ Queue opened on a Bull queue's name writes BullMQ's fingerprint into `meta`. The
    dashboard took it for BullMQ's and ran BullMQ's promote, which put Bull's delayed job 1 in
    `prioritized`, where Bull never looks: Bull's getters no longer found it anywhere."""
    queue = QueueRef("default", "bull", "shared")
    with_bull(
        server,
        "const q = new Queue('shared', url); await q.add('x', {}, {delay: 3600000, priority: 3});"
        " await q.add('y', {}); await q.close();",
    )
    with_bullmq(
        server, "const q = new Queue('shared', {connection}); await q.waitUntilReady(); await q.close();"
    )
    assert (raw.hget("bull:shared:meta", "version") or "").startswith("bullmq:")
    before = snapshot(raw, queue)

    detail = (await admin.get(links.queue_api_url(queue))).json()
    promoted = await post(admin, links.job_action_url(queue, "promote", "1"))
    paused = await post(admin, links.queue_action_url(queue, "pause"))

    assert detail["actions"] == {}
    assert detail["counts"]["delayed"] == 1  # still read
    assert kinds.is_mixed(queue)
    for response in (promoted, paused):
        assert response.status_code == 409, response.content
        assert "both libraries wrote to it" in response.json()["message"]
    assert (await last_audit()).result == "conflict"
    assert snapshot(raw, queue) == before
    assert bull_counts(server, "shared")["delayed"] == ["1"]


async def test_a_bullmq_queue_whose_meta_is_gone_is_not_taken_for_bulls(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """Without its meta hash a BullMQ queue has Bull's shape (an `id` counter, a `wait` list): Bull's drain
    ran on it, left the prioritized job it cannot see, and said it drained the queue."""
    queue = QueueRef("default", "bull", "orphan")
    with_bullmq(
        server,
        "const q = new Queue('orphan', {connection}); await q.add('x', {});"
        " await q.add('p', {}, {priority: 4}); await q.add('d', {}, {delay: 3600000}); await q.close();",
    )
    raw.delete("bull:orphan:meta")
    before = snapshot(raw, queue)

    detail = (await admin.get(links.queue_api_url(queue))).json()
    drained = await post(admin, links.queue_action_url(queue, "drain"))

    assert detail["actions"] == {}
    assert detail["counts"]["prioritized"] == 1
    assert drained.status_code == 409, drained.content
    assert snapshot(raw, queue) == before


async def test_a_bullmq_job_named_after_bulls_keys_does_not_make_its_queue_mixed(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """A job author's custom ids `meta-paused` and `priority` are hashes beside a BullMQ queue's keys: if
    their mere existence said "Bull's keys are here", any job author could stop every action on it."""
    queue = QueueRef("default", "bull", "modern")
    with_bullmq(
        server,
        "const q = new Queue('modern', {connection}); await q.add('a', {}, {jobId: 'meta-paused'});"
        " await q.add('b', {}, {jobId: 'priority'}); await q.add('c', {}); await q.close();",
    )
    assert raw.type("bull:modern:meta-paused") == raw.type("bull:modern:priority") == "hash"

    detail = (await admin.get(links.queue_api_url(queue))).json()

    assert (detail["kind"], kinds.is_mixed(queue)) == ("bullmq", False)
    assert {"pause", "add", "drain"} <= set(detail["actions"])


async def test_a_bull_client_pausing_a_bullmq_queue_makes_it_mixed(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """Bull's pause renames BullMQ's `wait` and sets `meta-paused`: BullMQ 6's resume would leave the
    renamed list where its workers never look, Bull's would leave BullMQ's markers."""
    queue = QueueRef("default", "bull", "taken")
    with_bullmq(server, "const q = new Queue('taken', {connection}); await q.add('x', {}); await q.close();")
    with_bull(server, "const q = new Queue('taken', url); await q.pause(); await q.close();")
    assert raw.type("bull:taken:meta-paused") == "string"
    before = snapshot(raw, queue)

    resumed = await post(admin, links.queue_action_url(queue, "resume"))

    assert resumed.status_code == 409, resumed.content
    assert snapshot(raw, queue) == before


async def test_a_queue_that_turns_mixed_after_discovery_is_refused_at_action_time(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """The kind is asked again when an action starts: a BullMQ queue the overview listed, paused by a
    Bull client afterwards, is not written by BullMQ's scripts on discovery's old word; its page and the
    API say what it is."""
    queue = QueueRef("default", "bull", "turned")
    with_bullmq(server, "const q = new Queue('turned', {connection}); await q.add('x', {}); await q.close();")
    listed = (await admin.get(dashboard_url("api/queues/"))).json()["queues"]
    assert [row["kind"] for row in listed if row["key"] == queue.key] == ["bullmq"]
    with_bull(server, "const q = new Queue('turned', url); await q.pause(); await q.close();")
    before = snapshot(raw, queue)

    resumed = await post(admin, links.queue_action_url(queue, "resume"))

    assert resumed.status_code == 409, resumed.content
    assert snapshot(raw, queue) == before
    page = (await admin.get(links.queue_url(queue))).content.decode()
    assert "data-mixed-queue" in page
    listed = (await admin.get(dashboard_url("api/queues/"))).json()["queues"]
    assert [row["kind"] for row in listed if row["key"] == queue.key] == ["mixed"]


# ---- listed queues, stray counters ----


async def test_a_listed_queue_bull_fills_after_the_first_read_gets_bulls_scripts(
    server: str, raw: redis.Redis, superuser_client: AsyncClient
) -> None:
    """With a QUEUES setting the kinds were read once per process: a listed queue that was empty then
    stayed BullMQ's, and BullMQ's pause only flagged `meta` while Bull's workers went on taking jobs."""
    queue = QueueRef("default", "bull", "late")
    listed = {"default": {"URL": server, "QUEUES": ["bull:late"]}}
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(server, CONNECTIONS=listed)):
        reset_directories()
        try:
            first = (await superuser_client.get(links.queue_api_url(queue))).json()
            with_bull(server, "const q = new Queue('late', url); await q.add('x', {}); await q.close();")

            paused = await post(superuser_client, links.queue_action_url(queue, "pause"))

            assert first["kind"] == "bullmq"
            assert paused.status_code == 200, paused.content
            assert kinds.is_bull(queue)
            # Bull's own pause: the `wait` list renamed, no BullMQ events stream.
            assert (raw.llen("bull:late:paused"), raw.exists("bull:late:wait", "bull:late:events")) == (1, 0)
            assert bull_counts(server, "late")["counts"]["paused"] == 1
        finally:
            await close_dashboard()
    reset_directories()


async def test_stray_id_strings_cost_two_commands_each_a_pass(server: str, raw: redis.Redis) -> None:
    """Other programs' `<x>:<y>:id` strings (a user's id, a session's) are candidates on every pass;
    each is turned away with one HMGET and one EXISTS, and only a queue-shaped one is probed further."""
    for index in range(200):
        raw.set(f"user:{index}:id", str(index))
    raw.set("user:x:id", "1" * 40)  # a whole number far beyond 64 bits
    raw.hset("user:h:id", "a", "1")  # a hash named like a counter: SCAN does not even list it
    with_bull(server, "const q = new Queue('real', url); await q.add('x', {}); await q.close();")
    directory = Directory(ConnectionSettings("default", server), interval=30)
    raw.config_resetstat()
    try:
        await directory.refresh()
    finally:
        await close_clients()

    assert directory.queues == [QueueRef("default", "bull", "real")]
    assert calls(raw, "hmget") == calls(raw, "exists") == 202
    assert calls(raw, "get") == 1
    assert calls(raw, "type") == 5


# ---- bounded and honest Bull actions ----


async def test_drain_and_clean_of_many_delayed_jobs_run_in_bounded_calls(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """Bull's clean of delayed jobs ran as one script call with no limit: 20,000 delayed jobs blocked
    Redis for 150 ms, a million for seconds (drain, clean, bulk "remove all delayed")."""
    queue = QueueRef("default", "bull", "many")
    jobs = 2 * BATCH_SIZE + 500
    with_bull(
        server,
        f"const q = new Queue('many', url); const jobs = []; for (let i = 0; i < {jobs}; i++)"
        " jobs.push({name: 'x', data: {i}, opts: {delay: 3600000 + i}}); await q.addBulk(jobs);"
        " await q.add('w', {}); await q.close();",
    )
    raw.config_set("slowlog-max-len", "200000")
    raw.config_set("slowlog-log-slower-than", "0")
    raw.slowlog_reset()

    drained = await post(admin, links.queue_action_url(queue, "drain"))

    assert drained.status_code == 200, drained.content
    assert drained.json()["done"] == jobs + 1
    clean_calls = [
        entry
        for entry in raw.slowlog_get(100_000)
        if entry["command"].startswith(b"EVALSHA") and b" bull:many:delayed " in entry["command"]
    ]
    assert len(clean_calls) >= jobs // BATCH_SIZE + 1
    assert bull_counts(server, "many")["counts"]["delayed"] == 0


async def test_clean_of_many_delayed_jobs_keeps_grace_and_limit(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """Over BATCH_SIZE delayed jobs the clean goes in calls that each look at the first jobs due: the
    newer ones due first stay, and every older one goes."""
    queue = QueueRef("default", "bull", "aged")
    old, new = BATCH_SIZE + 200, 300
    with_bull(
        server,
        "const q = new Queue('aged', url); const jobs = [];"
        f" for (let i = 0; i < {new}; i++) jobs.push({{name: 'new', data: {{i}}, opts: {{delay: 1800000}}}});"
        f" for (let i = 0; i < {old}; i++) jobs.push({{name: 'old', data: {{i}},"
        "   opts: {delay: 3 * 3600000, timestamp: Date.now() - 2 * 3600000}});"
        " await q.addBulk(jobs); await q.close();",
    )
    clean = links.queue_action_url(queue, "clean")

    capped = await post(admin, clean, state="delayed", grace=HOUR, limit=old)
    cleaned = await post(admin, clean, state="delayed", grace=HOUR, limit=0)

    assert capped.status_code == 400 and "limit 0" in capped.json()["message"]
    assert cleaned.status_code == 200, cleaned.content
    assert cleaned.json()["done"] == old
    left = bull_counts(server, "aged")
    assert left["counts"]["delayed"] == new
    assert {raw.hget(f"bull:aged:{job}", "name") for job in left["delayed"]} == {"new"}


async def test_clean_of_waiting_jobs_with_a_grace_reads_only_the_tail_of_the_list(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """Given a limit, Bull's clean of a list walks it from the tail until it removed that many: with
    few jobs old enough one call read 20,000 waiting jobs (50 ms of Redis; a million: seconds)."""
    queue = QueueRef("default", "bull", "backlog")
    old, new = BATCH_SIZE + 500, 2 * BATCH_SIZE
    with_bull(
        server,
        "const q = new Queue('backlog', url); const jobs = [];"
        f" for (let i = 0; i < {old}; i++) jobs.push({{name: 'old', data: {{i}},"
        "   opts: {timestamp: Date.now() - 2 * 3600000}});"
        f" for (let i = 0; i < {new}; i++) jobs.push({{name: 'new', data: {{i}}}});"
        " await q.addBulk(jobs); await q.close();",
    )
    clean = links.queue_action_url(queue, "clean")

    cleaned = await post(admin, clean, state="waiting", grace=HOUR, limit=0)
    raw.config_resetstat()
    nothing = await post(admin, clean, state="waiting", grace=HOUR, limit=0)

    assert cleaned.status_code == 200, cleaned.content
    assert cleaned.json()["done"] == old
    left = bull_counts(server, "backlog")
    assert left["counts"]["waiting"] == new
    assert raw.hget(f"bull:backlog:{left['waiting'][-1]}", "name") == "new"
    assert nothing.json()["done"] == 0
    # The last BATCH_SIZE jobs' times, read once, and no script call walking the 2,000 newer ones (and
    # the one HMGET of `meta` that asks the queue's kind when the action starts).
    assert calls(raw, "hmget") == BATCH_SIZE + 1


async def test_a_drain_stopped_partway_says_what_it_removed(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """Bull's clean stops at a delayed member that names one of the queue's own keys (the `id` counter,
    a string: WRONGTYPE) after the calls on `wait` removed their jobs; the answer said none were."""
    build_bull(server)
    raw.zadd("bull:legacy-main:delayed", {"id": 1})  # written by another program

    drained = await post(admin, links.queue_action_url(MAIN, "drain"))

    assert drained.status_code == 409, drained.content
    message = drained.json()["message"]
    assert "It stopped partway: at least 12 jobs of legacy-main were drained." in message
    assert "Nothing was changed" not in message
    assert not raw.exists("bull:legacy-main:wait")


async def test_a_drain_refuses_a_paused_key_of_another_type_before_it_writes(
    server: str, raw: redis.Redis, admin: AsyncClient
) -> None:
    """A Bull job whose custom id is `paused` (Bull takes any id) has its hash where a paused queue's
    list goes: Bull's script on `paused` would stop after `wait` was drained."""
    queue = QueueRef("default", "bull", "named")
    with_bull(
        server,
        "const q = new Queue('named', url); await q.add('x', {});"
        " await q.add('y', {}, {jobId: 'paused', delay: 3600000}); await q.close();",
    )
    assert raw.type("bull:named:paused") == "hash"
    before = snapshot(raw, queue)

    drained = await post(admin, links.queue_action_url(queue, "drain"))

    assert drained.status_code == 409, drained.content
    assert snapshot(raw, queue) == before


async def test_a_user_with_one_permission_takes_no_other_bull_action(
    server: str, raw: redis.Redis, transactional_db: None, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    build_bull(server)
    user = await django_user_model.objects.acreate_user("operator", password="pw", is_staff=True)
    await user.user_permissions.aadd(await Permission.objects.aget(codename="retry_job"))
    client = AsyncClient()
    await client.aforce_login(user)
    refused = [
        (links.queue_action_url(MAIN, "pause"), {}),
        (links.queue_action_url(MAIN, "obliterate"), {"confirm": "legacy-main", "force": True}),
        (links.queue_action_url(MAIN, "drain"), {}),
        (links.bulk_url(MAIN), {"action": "remove", "all": True, "state": "completed"}),
        (links.bulk_url(MAIN), {"action": "retry", "all": True, "state": "failed"}),
        (links.job_action_url(MAIN, "remove", "6"), {}),
    ]
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(server)):
        reset_directories()
        try:
            before = snapshot(raw, MAIN)
            answers = [await post(client, url, **params) for url, params in refused]
            assert [answer.status_code for answer in answers] == [403] * len(refused)
            assert snapshot(raw, MAIN) == before
            retried = await post(client, links.job_action_url(MAIN, "retry", "6"))
            assert retried.status_code == 200, retried.content
        finally:
            await close_dashboard()
    reset_directories()
    assert bull_view(server, [{"prefix": "bull", "name": "legacy-main"}])[MAIN.key]["counts"]["failed"] == 3
