"""Attacks on the write-access probe's cache and on the MULTI batches of retry all / promote all.

A throwaway Redis of this module's own, a read-only ACL user (docs/redis-access.md's line), real
bullmq jobs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import AsyncClient, override_settings
from redis.asyncio.client import Pipeline

from dashboard import links, redis_access
from dashboard.operations import wait_all
from dashboard.registry import reset_directories
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis
from tests.support.builders import add_jobs
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.live import IN_MEMORY
from tests.support.urls import dashboard_url

EMAIL = QueueRef("default", "bull", "email")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "redis-access.md"
VIEWER = "bullmq-dashboard-viewer"
PASSWORD = "pw-h16"


def acl_line(user: str) -> list[str]:
    for line in DOCS.read_text().splitlines():
        words = line.split()
        if words[:3] == ["ACL", "SETUSER", user]:
            return [f">{PASSWORD}" if word == ">CHANGE-ME" else word for word in words]
    raise AssertionError(user)


@pytest.fixture(scope="module")
def server() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as own:
        yield own


@pytest.fixture
def admin(server: ThrowawayRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    yield client
    client.flushall()
    client.acl_deluser(VIEWER)
    client.close()


@contextmanager
def dashboard_on(url: str) -> Iterator[None]:
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=dashboard_settings(url)):
        reset_directories()
        redis_access.forget()
        try:
            yield
        finally:
            reset_directories()
            redis_access.forget()


def evalsha_calls(admin: redis.Redis) -> int:
    stats = admin.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_made_up_queue_keys_neither_probe_nor_evict_real_verdicts(
    server: ThrowawayRedis, admin: redis.Redis, superuser_client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who may take actions opens pages of queues that do not exist: before the fix each one ran
    the probe script and took a place among the kept verdicts, and MAX_KEPT of them cleared every
    verdict, the read-only one of a real queue included (its page then offered actions again until its
    next probe, and every other queue was probed again)."""
    admin.execute_command(*acl_line(VIEWER))
    await add_jobs(server.url, "email", [("send", {}, {"jobId": "w1"})])
    monkeypatch.setattr(redis_access, "MAX_KEPT", 5)
    viewer_url = server.url.replace("redis://", f"redis://{VIEWER}:{PASSWORD}@")
    with dashboard_on(viewer_url):
        page = await superuser_client.get(links.queue_url(EMAIL))
        assert page.status_code == 200 and "read-only Redis user" in page.content.decode()
        assert redis_access.redis_read_only(EMAIL)
        admin.config_resetstat()
        for number in range(12):
            made_up = await superuser_client.get(dashboard_url(f"default/bull:made-up-{number}/"))
            assert made_up.status_code == 404
        probes = evalsha_calls(admin)
        print("EVALSHA calls for 12 made-up queue pages:", probes)
        kept = sorted(key for key in redis_access._verdicts)
        assert kept == [("default", "bull:email:")], kept
        assert redis_access.redis_read_only(EMAIL)


async def test_kept_verdicts_past_the_bound_drop_the_oldest_not_all(
    server: ThrowawayRedis, admin: redis.Redis, superuser_client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin.execute_command(*acl_line(VIEWER))
    names = [f"q{number}" for number in range(4)]
    for name in names:
        await add_jobs(server.url, name, [("send", {}, {"jobId": "w1"})])
    monkeypatch.setattr(redis_access, "MAX_KEPT", 3)
    viewer_url = server.url.replace("redis://", f"redis://{VIEWER}:{PASSWORD}@")
    with dashboard_on(viewer_url):
        for name in names:
            assert (
                await superuser_client.get(links.queue_url(QueueRef("default", "bull", name)))
            ).status_code == 200
        kept = [prefix for _, prefix in redis_access._verdicts]
        assert kept == ["bull:q1:", "bull:q2:", "bull:q3:"], kept


async def test_promote_all_survives_a_script_flush_between_load_and_exec(
    server: ThrowawayRedis, admin: redis.Redis, superuser_client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py loads a pipeline's scripts (SCRIPT EXISTS/LOAD) just before MULTI; a SCRIPT FLUSH in between
    makes the EVALSHA inside EXEC answer NOSCRIPT. The script did not run, so the batch may be run again;
    before the fix "promote all" answered 502 "Redis lost BullMQ's script" although a reload would do."""
    await add_jobs(
        server.url, "email", [("send", {}, {"jobId": f"d{n}", "delay": 600_000}) for n in range(5)]
    )
    original = Pipeline.load_scripts
    flushes = {"left": 1}

    async def load_then_flush(self: Pipeline) -> None:
        await original(self)
        if flushes["left"]:
            flushes["left"] -= 1
            admin.script_flush()

    monkeypatch.setattr(Pipeline, "load_scripts", load_then_flush)
    with dashboard_on(server.url):
        answer = await superuser_client.post(
            links.queue_action_url(EMAIL, "promote_all"), data=json.dumps({}), content_type="application/json"
        )
        body = answer.json()
        print(answer.status_code, body)
        assert flushes["left"] == 0
        assert answer.status_code == 200, body
        assert admin.zcard("bull:email:delayed") == 0
        assert admin.llen("bull:email:wait") == 5
        assert body.get("done") == 5, body


# ------------------------------------------------------------------ overview: one connection half broken

PARTIAL = "h16-partial"
PARTIAL_PASSWORD = "Zq9-partial-S3cret"


async def test_a_connection_refused_for_some_queues_or_hanging_fails_only_those_rows(
    server: ThrowawayRedis,
    admin: redis.Redis,
    superuser_client: AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connection `b` logs in as a user that may touch only `bull:email:*` but is configured with two
    queues; connection `c` is a socket that accepts and never answers. `a` must read as usual, no page,
    API answer or log record may show b's password, and nothing may be a 500."""
    import logging
    import socket

    caplog.set_level(logging.DEBUG)
    admin.execute_command("ACL", "SETUSER", PARTIAL, "on", f">{PARTIAL_PASSWORD}", "~bull:email:*", "+@all")
    await add_jobs(server.url, "email", [("send", {}, {"jobId": "w1"})])
    await add_jobs(server.url, "other", [("send", {}, {"jobId": "w1"})])
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    b_url = server.url.replace("redis://", f"redis://{PARTIAL}:{PARTIAL_PASSWORD}@")
    connections = {
        "default": {"URL": server.url},
        "b": {"URL": b_url, "QUEUES": ["bull:email", "bull:other"]},
        "c": {
            "URL": f"redis://:{PARTIAL_PASSWORD}@127.0.0.1:{silent.getsockname()[1]}/0",
            "QUEUES": ["bull:x"],
        },
    }
    settings = dashboard_settings(
        server.url, CONNECTIONS=connections, SOCKET_TIMEOUT=0.5, CONNECT_TIMEOUT=0.5
    )
    try:
        with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
            reset_directories()
            shown: list[tuple[str, int, str]] = []
            for url in (
                links.overview_url(),
                dashboard_url("api/queues/"),
                links.queue_url(QueueRef("b", "bull", "other")),
                links.queue_url(QueueRef("b", "bull", "email")),
                dashboard_url("api/queues/b/bull:other/"),
                links.queue_url(QueueRef("c", "bull", "x")),
                dashboard_url("metrics"),
            ):
                answer = await superuser_client.get(url)
                shown.append((url, answer.status_code, answer.content.decode(errors="replace")))
            reset_directories()
    finally:
        silent.close()
        admin.acl_deluser(PARTIAL)
    for url, status, body in shown:
        print(url, status, body[:600].replace("\n", " ") if status >= 400 or "api" in url else "")
        assert status < 500 or status in (502, 503, 504), (url, status)
        assert "Traceback" not in body
        assert PARTIAL_PASSWORD not in body, url
    overview = shown[0][2]
    assert "bull:email" in overview or "email" in overview
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert PARTIAL_PASSWORD not in logged


async def test_no_probe_for_a_user_who_may_take_no_action(
    server: ThrowawayRedis, admin: redis.Redis, transactional_db: None, django_user_model: Any
) -> None:
    admin.execute_command(*acl_line(VIEWER))
    await add_jobs(server.url, "email", [("send", {}, {"jobId": "w1"})])
    staff = await django_user_model.objects.acreate_user("staff", password="pw", is_staff=True)
    client = AsyncClient()
    await client.aforce_login(staff)
    viewer_url = server.url.replace("redis://", f"redis://{VIEWER}:{PASSWORD}@")
    try:
        with dashboard_on(viewer_url):
            assert (await client.get(links.queue_url(EMAIL))).status_code == 200
            assert (await client.get(dashboard_url("api/queues/default/bull:email/"))).status_code == 200
            refused = await client.post(
                links.queue_action_url(EMAIL, "pause"), data="{}", content_type="application/json"
            )
            assert refused.status_code == 403
            assert redis_access._verdicts == {}
    finally:
        await wait_all()
        await close_dashboard()


async def test_promote_all_over_a_wrong_typed_wait_list_never_says_nothing_changed(
    server: ThrowawayRedis, admin: redis.Redis, superuser_client: AsyncClient
) -> None:
    """A job author's program turned `wait` into a string: BullMQ's script stops at its first write there.
    The answer must not claim that nothing was changed unless Redis is really unchanged."""
    await add_jobs(
        server.url, "email", [("send", {}, {"jobId": f"d{n}", "delay": 600_000}) for n in range(3)]
    )
    admin.delete("bull:email:wait")
    admin.set("bull:email:wait", "not a list")
    before = admin.zrange("bull:email:delayed", 0, -1)
    with dashboard_on(server.url):
        answer = await superuser_client.post(
            links.queue_action_url(EMAIL, "promote_all"), data="{}", content_type="application/json"
        )
    body = answer.json()
    after = admin.zrange("bull:email:delayed", 0, -1)
    print(answer.status_code, body, "delayed before", before, "after", after)
    # Before the fix: 409 "BullMQ's script stopped", done 0, and every delayed job gone from `delayed`
    # without reaching `wait` (in no state at all).
    assert after == before
    assert answer.status_code == 409 and body["done"] == 0
    assert "nothing was moved" in body["message"]


async def test_an_obliterate_refused_for_active_jobs_says_it_left_the_queue_paused(
    server: ThrowawayRedis, admin: redis.Redis, superuser_client: AsyncClient
) -> None:
    """BullMQ's Queue.obliterate pauses the queue first and only then finds an active job and refuses.
    Before the fix the answer was BullMQ's "Cannot obliterate queue with active jobs" (a 409 conflict,
    whose type says nothing was changed) while the queue had been paused."""
    import asyncio

    from bullmq import Worker

    await add_jobs(server.url, "email", [("send", {}, {"jobId": "a1"})])
    release = asyncio.Event()
    started = asyncio.Event()

    async def hold(job: Any, token: str) -> None:
        started.set()
        await release.wait()

    worker = Worker("email", hold, {"connection": server.url, "prefix": "bull", "autorun": False})
    runner = asyncio.ensure_future(worker.run())
    try:
        await asyncio.wait_for(started.wait(), 20)
        assert admin.hget("bull:email:meta", "paused") is None
        with dashboard_on(server.url):
            answer = await superuser_client.post(
                links.queue_action_url(EMAIL, "obliterate"),
                data=json.dumps({"confirm": "email"}),
                content_type="application/json",
            )
        body = answer.json()
        print(answer.status_code, body, admin.hgetall("bull:email:meta"))
        assert answer.status_code == 409
        assert admin.hget("bull:email:meta", "paused") is None
        assert "Nothing was changed" in body["message"], body
    finally:
        release.set()
        await worker.close()
        await runner


async def test_an_obliterate_refused_after_its_pause_never_says_nothing_was_changed(
    server: ThrowawayRedis, admin: redis.Redis, superuser_client: AsyncClient
) -> None:
    """A partial ACL (`~bull:email:?*`: every key of the queue but its bare prefix key) lets BullMQ's pause
    script run and refuses its obliterate script (NOPERM, before that script ran). Before the fix the
    answer was 403 "... Nothing was changed." and the audit said refused, while the queue had been paused."""
    from dashboard.models import AuditEntry

    await add_jobs(server.url, "email", [("send", {}, {"jobId": "w1"})])
    user, secret = "h16-partial-keys", "pw-partial-keys"
    admin.execute_command("ACL", "SETUSER", user, "on", f">{secret}", "~bull:email:?*", "+@all")
    try:
        with dashboard_on(server.url.replace("redis://", f"redis://{user}:{secret}@")):
            answer = await superuser_client.post(
                links.queue_action_url(EMAIL, "obliterate"),
                data=json.dumps({"confirm": "email"}),
                content_type="application/json",
            )
            body = answer.json()
    finally:
        admin.acl_deluser(user)
    paused = admin.hget("bull:email:meta", "paused")
    entry = await AuditEntry.objects.alatest("id")
    print(answer.status_code, body, "paused:", paused, "audit:", entry.result)
    assert paused is not None  # the attack worked: something was written
    assert "Nothing was changed" not in body["message"], body
    assert entry.result == AuditEntry.Result.FAILED


WRITES = (
    "set",
    "del",
    "unlink",
    "lpush",
    "rpush",
    "lrem",
    "zadd",
    "zrem",
    "hset",
    "hdel",
    "xadd",
    "incr",
    "pexpire",
)


async def test_the_probe_writes_nothing(
    server: ThrowawayRedis, admin: redis.Redis, superuser_client: AsyncClient
) -> None:
    """Commandstats count the commands a script calls too: a probe that ran a write would show here."""
    await add_jobs(server.url, "email", [("send", {}, {"jobId": "w1"})])
    with dashboard_on(server.url):
        admin.config_resetstat()
        assert (await superuser_client.get(links.queue_url(EMAIL))).status_code == 200
        assert redis_access._verdicts[("default", "bull:email:")][1].writable is True
        stats = admin.info("commandstats")
    written = {name: stats[f"cmdstat_{name}"]["calls"] for name in WRITES if f"cmdstat_{name}" in stats}
    print("commands:", sorted(stats))
    assert written == {}


async def test_viewer_scrapes_are_limited_per_user_and_a_wrong_token_reads_nothing(
    server: ThrowawayRedis, admin: redis.Redis, transactional_db: None, django_user_model: Any
) -> None:
    from dashboard.views import metrics as metrics_view

    await add_jobs(server.url, "email", [("send", {}, {"jobId": "w1"})])
    metrics_view._viewer_scrapes.reset()
    first = await django_user_model.objects.acreate_user("s1", password="pw", is_staff=True)
    second = await django_user_model.objects.acreate_user("s2", password="pw", is_staff=True)
    one, two = AsyncClient(), AsyncClient()
    await one.aforce_login(first)
    await two.aforce_login(second)
    try:
        with dashboard_on(server.url):
            statuses = [(await one.get(dashboard_url("metrics"))).status_code for _ in range(13)]
            assert statuses == [200] * 12 + [429], statuses
            limited = await one.get(dashboard_url("metrics"))
            assert limited.status_code == 429
            assert "email" not in limited.content.decode() and "bull" not in limited.content.decode()
            assert (await two.get(dashboard_url("metrics"))).status_code == 200
            admin.config_resetstat()
            wrong = await one.get(dashboard_url("metrics"), headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            empty = await one.get(dashboard_url("metrics"), headers={"Authorization": "Bearer "})
            assert empty.status_code == 401
            stats = admin.info("commandstats")
            assert "cmdstat_evalsha" not in stats and "cmdstat_scan" not in stats, sorted(stats)
    finally:
        metrics_view._viewer_scrapes.reset()
        await wait_all()
        await close_dashboard()


GLOB_NAMES = ["email", "em*", "e{x}", "a[1]", "emai?", "email\\"]


async def test_the_probe_agrees_with_redis_for_queue_names_with_glob_characters(
    server: ThrowawayRedis, admin: redis.Redis, superuser_client: AsyncClient
) -> None:
    """A Redis user that reads every queue and may write only `bull:email:*` (an ACL selector). Names that
    a glob would match (`em*`, `emai?`) must not borrow email's verdict, and each verdict must be what
    Redis then enforces."""
    viewer = acl_line(VIEWER)
    admin.execute_command(*viewer, "(~bull:email:* +@write +@read +evalsha +script|load)")
    for name in GLOB_NAMES:
        await add_jobs(server.url, name, [("send", {}, {"jobId": "w1"})])
    as_viewer = redis.Redis.from_url(server.url.replace("redis://", f"redis://{VIEWER}:{PASSWORD}@"))
    verdicts: dict[str, tuple[bool, int, bool]] = {}
    with dashboard_on(server.url.replace("redis://", f"redis://{VIEWER}:{PASSWORD}@")):
        for name in GLOB_NAMES:
            queue = QueueRef("default", "bull", name)
            page = await superuser_client.get(links.queue_url(queue))
            assert page.status_code == 200, name
            read_only = redis_access.redis_read_only(queue)
            paused = await superuser_client.post(
                links.queue_action_url(queue, "pause"), data="{}", content_type="application/json"
            )
            try:
                as_viewer.hset(f"bull:{name}:meta", "h16", "1")
                writable = True
            except redis.exceptions.NoPermissionError:
                writable = False
            verdicts[name] = (read_only, paused.status_code, writable)
    as_viewer.close()
    print(verdicts)
    assert verdicts["email"] == (False, 200, True)
    for name in GLOB_NAMES[1:]:
        assert verdicts[name] == (True, 403, False), (name, verdicts[name])
