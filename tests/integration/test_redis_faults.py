"""Redis faults with the pages, the API and a live socket open (docs/reliability.md): each fault against
Redis servers of the test's own, what the user sees during it, and that pages, API and socket recover
without a reload.

How long each step took is printed (`pytest -s`), never asserted: waits are bounded by hang guards only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from dashboard.registry import reset_directories
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis
from tests.support.builders import add_jobs, process
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of, count_cell
from tests.support.snapshot import Snapshot
from tests.support.snapshot import snapshot as every_key
from tests.support.urls import dashboard_url, socket_path

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("other", "bull", "sms")
# Small timeouts, so that a fault shows within a second or two rather than the defaults' 2 s and 5 s.
TIMEOUTS = {"CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 1.0}
# Redis 7 refuses DEBUG unless the server was started allowing it.
DEBUG = ("--enable-debug-command", "local")
HANG_GUARD = 30.0
# Keeps Redis busy for ARGV[1] ms. Past busy-reply-threshold Redis answers BUSY to every other command.
BUSY_LOOP = """
local function now() local t = redis.call('TIME') return t[1] * 1000 + t[2] / 1000 end
local start = now()
while now() - start < tonumber(ARGV[1]) do end
return 1
"""

FIGURES: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    """Print every measured step once more at the end, as one table for docs/reliability.md."""
    yield
    if FIGURES:
        print("\n" + "\n".join(["fault | step | seconds", *FIGURES]))


class Clock:
    """Seconds since a fault began, printed per step."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.started = time.monotonic()

    def mark(self, step: str) -> None:
        elapsed = time.monotonic() - self.started
        FIGURES.append(f"{self.fault} | {step} | {elapsed:.2f}")
        print(f"[redis fault] {self.fault}: {step} after {elapsed:.2f} s")


async def until(check: Callable[[], Awaitable[bool]], within: float = HANG_GUARD) -> None:
    """Wait until `check` holds; fail after `within` seconds (a hang guard, not a timing)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{check.__name__} did not hold within {within} s")
        await asyncio.sleep(0.05)


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


async def snapshot(url: str) -> Snapshot:
    """Every BullMQ key and its content: compared before and after a refused write."""
    client = Redis.from_url(url)
    try:
        return await every_key(client, "bull:*")
    finally:
        await client.aclose()


async def audit_results() -> list[tuple[str, str]]:
    return [(entry.action, entry.result) async for entry in AuditEntry.objects.order_by("id")]


async def fail_all(url: str, count: int) -> None:
    async def fail(job: Any, token: str) -> None:
        raise RuntimeError(f"boom {job.id}")

    await process(url, "email", fail, until=count)


def error_of(response: Any) -> str:
    """The error box of an error page (without the page frame around it)."""
    text: str = response.content.decode()
    start = text.find('<div class="error-page"')
    assert start >= 0, text[:500]
    return text[start : text.find("Back to all queues", start)]


def pointed_at(live: bool = True, **urls: str) -> Any:
    """The dashboard on these connections (alias=URL), with fast live updates and small timeouts."""
    connections = {alias: {"URL": url} for alias, url in urls.items()}
    settings = dashboard_settings(
        urls["default"], LIVE=FAST if live else {"ENABLED": False}, CONNECTIONS=connections, **TIMEOUTS
    )
    return override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings)


class Scene:
    """A test's own Redis servers and the sockets it opened, all closed after it."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.servers: list[ThrowawayRedis] = []
        self.sockets: list[LiveSocket] = []

    def server(self, *extra: str) -> ThrowawayRedis:
        """A started Redis of this test alone."""
        server = ThrowawayRedis(extra_args=extra).start()
        self.servers.append(server)
        return server

    async def overview_socket(self, *cells: Callable[[str], bool]) -> LiveSocket:
        """The overview's websocket, once it has pushed these cells."""
        socket = LiveSocket(socket_path(), cookie_of(self.client))
        self.sockets.append(socket)
        assert (await socket.connect())[0]
        for cell in cells:
            await socket.wait_for(cell)
        return socket

    async def close(self) -> None:
        for socket in self.sockets:
            # A socket whose wait_for failed was cancelled by the communicator already.
            with contextlib.suppress(asyncio.CancelledError):
                await socket.close()
        await wait_all()
        await close_dashboard()
        for server in self.servers:
            server.stop()
        reset_directories()


@pytest.fixture
async def scene(admin_client: AsyncClient) -> AsyncIterator[Scene]:
    built = Scene(admin_client)
    try:
        yield built
    finally:
        await built.close()


def banner_down(text: str) -> bool:
    return 'id="live-redis"' in text and "unreachable" in text and " hidden" not in text


def banner_hidden(text: str) -> bool:
    return 'id="live-redis"' in text and " hidden" in text


# ------------------------------------------------------------------------- 1. stopped and started


async def test_redis_stopped_and_started_again(scene: Scene, admin_client: AsyncClient) -> None:
    server = scene.server()
    await add_jobs(server.url, "email", [("send", {}, {"jobId": "j1"})])
    with pointed_at(default=server.url):
        reset_directories()
        assert (await admin_client.get(links.queue_url(EMAIL))).status_code == 200
        socket = await scene.overview_socket(count_cell(EMAIL, "waiting", 1))

        server.stop()
        clock = Clock("Redis stopped")
        for url in (dashboard_url(), links.queue_url(EMAIL), links.job_url(EMAIL, "j1")):
            page = await admin_client.get(url)
            assert page.status_code == 503, url
            shown = error_of(page)
            assert 'role="alert">Redis is unreachable.' in shown and "Traceback" not in shown
        clock.mark("pages 503 with banner")
        for url in (dashboard_url("api/queues/"), links.queue_api_url(EMAIL)):
            api = await admin_client.get(url)
            assert api.status_code == 503 and api.json()["status"] == 503
            assert "Redis is unreachable" in api.json()["error"]
        clock.mark("API JSON 503")
        action = await post(admin_client, links.queue_action_url(EMAIL, "pause"))
        assert action.status_code == 503
        assert action.json()["message"] == "Redis is unreachable. Nothing was changed."
        clock.mark("action 503")
        await socket.wait_for(banner_down)
        clock.mark("socket banner")

        server.start()  # the same port, empty: the producers start again from scratch
        clock = Clock("Redis started again")
        await add_jobs(server.url, "email", [("send", {}, {}), ("send", {}, {})])

        async def page_back() -> bool:
            return (await admin_client.get(links.queue_url(EMAIL))).status_code == 200

        await until(page_back)
        clock.mark("page 200")
        assert (await admin_client.get(links.queue_api_url(EMAIL))).json()["counts"]["waiting"] == 2
        await socket.wait_for(banner_hidden)
        await socket.wait_for(count_cell(EMAIL, "waiting", 2))
        clock.mark("socket banner gone, counts pushed")
        assert (await post(admin_client, links.queue_action_url(EMAIL, "pause"))).status_code == 200
    assert await audit_results() == [("pause", "failed"), ("pause", "done")]


# ------------------------------------------------------------------------------- 2. a slow Redis


async def test_debug_sleep_times_out_per_request_and_stalls_nothing_else(
    scene: Scene, admin_client: AsyncClient
) -> None:
    slow = scene.server(*DEBUG)
    other = scene.server()
    await add_jobs(slow.url, "email", [("send", {}, {"jobId": "j1"})])
    await add_jobs(other.url, "sms", [("send", {}, {"jobId": "s1"})])
    with pointed_at(default=slow.url, other=other.url):
        reset_directories()
        assert (await admin_client.get(links.queue_url(EMAIL))).status_code == 200
        socket = await scene.overview_socket(count_cell(EMAIL, "waiting", 1), count_cell(SMS, "waiting", 1))
        raw = Redis.from_url(slow.url)
        try:
            sleeper = asyncio.ensure_future(raw.execute_command("DEBUG", "SLEEP", "3"))
            await asyncio.sleep(0.1)  # DEBUG SLEEP sent: Redis answers nobody now
            clock = Clock("DEBUG SLEEP 3")
            # The other connection answers at once, while the slow one still sleeps.
            for url in (links.queue_url(SMS), links.queue_api_url(SMS)):
                assert (await admin_client.get(url)).status_code == 200
            assert not sleeper.done()
            clock.mark("other connection 200")
            page, api, action = await asyncio.gather(
                admin_client.get(links.queue_url(EMAIL)),
                admin_client.get(links.queue_api_url(EMAIL)),
                post(admin_client, links.queue_action_url(EMAIL, "pause")),
            )
            clock.mark("slow connection: page, API, action answered")
            assert not sleeper.done()
            assert page.status_code == 504
            assert "Redis is slow" in error_of(page) and "did not answer in time" in error_of(page)
            assert api.status_code == 504 and "did not answer in time" in api.json()["error"]
            # A write whose answer did not come may still run once Redis wakes (Redis queued it).
            assert action.status_code == 503
            assert "may or may not have run" in action.json()["message"]
            assert await sleeper
            clock.mark("sleep over")
        finally:
            await raw.aclose()
        paused = (await admin_client.get(links.queue_api_url(EMAIL))).json()["paused"]
        print(f"[redis fault] the timed-out pause ran after the sleep: {paused}")
        clock.mark("API 200 again")
        await add_jobs(slow.url, "email", [("send", {}, {})])
        await socket.wait_for(count_cell(EMAIL, "waiting", 2))
        clock.mark("socket counts pushed")
        assert (await admin_client.get(links.queue_url(EMAIL))).status_code == 200
    assert await audit_results() == [("pause", "failed")]


async def test_a_slow_connection_fails_only_its_own_overview_rows(
    scene: Scene, admin_client: AsyncClient
) -> None:
    slow = scene.server(*DEBUG)
    other = scene.server()
    await add_jobs(slow.url, "email", [("send", {}, {})])
    await add_jobs(other.url, "sms", [("send", {}, {}), ("send", {}, {})])
    # No live updates: every overview reads its counts (with a socket open they come from the watcher).
    with pointed_at(live=False, default=slow.url, other=other.url):
        reset_directories()
        assert (await admin_client.get(dashboard_url())).status_code == 200
        raw = Redis.from_url(slow.url)
        try:
            sleeper = asyncio.ensure_future(raw.execute_command("DEBUG", "SLEEP", "3"))
            await asyncio.sleep(0.1)
            clock = Clock("DEBUG SLEEP 3, overview without live updates")
            overview, listed = await asyncio.gather(
                admin_client.get(dashboard_url()), admin_client.get(dashboard_url("api/queues/"))
            )
            clock.mark("overview and queue list answered")
            await sleeper
        finally:
            await raw.aclose()
    assert overview.status_code == 200
    assert "Redis did not answer in time: it is slow or busy." in overview.content.decode()
    assert listed.status_code == 200
    rows = {row["key"]: row for row in listed.json()["queues"]}
    assert rows["bull:sms"]["counts"]["waiting"] == 2 and not rows["bull:sms"]["problem"]
    assert rows["bull:email"]["problem"] == "Redis did not answer in time: it is slow or busy."


async def test_a_long_script_answers_busy_and_nothing_is_changed(
    scene: Scene, admin_client: AsyncClient
) -> None:
    slow = scene.server()
    other = scene.server()
    await add_jobs(slow.url, "email", [("send", {}, {"jobId": "j1"})])
    await add_jobs(other.url, "sms", [("send", {}, {"jobId": "s1"})])
    with pointed_at(default=slow.url, other=other.url):
        reset_directories()
        assert (await admin_client.get(links.queue_url(EMAIL))).status_code == 200
        socket = await scene.overview_socket(count_cell(EMAIL, "waiting", 1), count_cell(SMS, "waiting", 1))
        raw = Redis.from_url(slow.url)
        probe = Redis.from_url(slow.url)
        try:
            await raw.config_set("busy-reply-threshold", "200")  # lua-time-limit before Redis 7
            before = await snapshot(slow.url)
            runner = asyncio.ensure_future(raw.eval(BUSY_LOOP, 0, 3000))
            clock = Clock("3 s Lua script (BUSY)")

            async def busy() -> bool:
                try:
                    await probe.ping()
                except Exception as exc:
                    return str(exc).startswith("BUSY")
                return False

            await until(busy)
            clock.mark("Redis answers BUSY")
            page, api, action, elsewhere = await asyncio.gather(
                admin_client.get(links.queue_url(EMAIL)),
                admin_client.get(links.queue_api_url(EMAIL)),
                post(admin_client, links.queue_action_url(EMAIL, "pause")),
                admin_client.get(links.queue_url(SMS)),
            )
            clock.mark("page, API, action answered")
            assert not runner.done()
            assert page.status_code == 503 and "busy running a long script (BUSY)" in error_of(page)
            assert api.status_code == 503 and "(BUSY)" in api.json()["error"]
            assert action.status_code == 503
            assert action.json()["message"] == (
                "Redis is busy running a long script (BUSY); try again in a moment. Nothing was changed."
            )
            assert elsewhere.status_code == 200
            await runner
            clock.mark("script over")
        finally:
            await raw.aclose()
            await probe.aclose()
        assert await snapshot(slow.url) == before
        assert (await admin_client.get(links.queue_url(EMAIL))).status_code == 200
        await add_jobs(slow.url, "email", [("send", {}, {})])
        await socket.wait_for(count_cell(EMAIL, "waiting", 2))
        clock.mark("socket counts pushed")
        print("[redis fault] banners the socket showed:", [t for t in socket.received if "live-redis" in t])
    assert await audit_results() == [("pause", "failed")]


# ------------------------------------------------------------------------ 3. a read-only replica


async def replicate(primary: ThrowawayRedis, replica: ThrowawayRedis) -> None:
    """Make `replica` a replica of `primary` (REPLICAOF at runtime) and wait until it has synced."""
    source = Redis.from_url(primary.url)
    target = Redis.from_url(replica.url)
    try:
        await source.config_set("repl-diskless-sync-delay", "0")
        await target.execute_command("REPLICAOF", "127.0.0.1", str(primary.port))

        async def synced() -> bool:
            return (await target.info("replication")).get("master_link_status") == "up"

        await until(synced)
    finally:
        await source.aclose()
        await target.aclose()


async def test_a_read_only_replica_reads_and_refuses_writes_whole(
    scene: Scene, admin_client: AsyncClient
) -> None:
    primary = scene.server()
    replica = scene.server()
    await add_jobs(primary.url, "email", [("send", {}, {"jobId": "f1"})])
    await fail_all(primary.url, 1)
    await add_jobs(primary.url, "email", [("send", {}, {"jobId": "j1"})])
    await replicate(primary, replica)
    with pointed_at(default=replica.url):
        reset_directories()
        socket = await scene.overview_socket(count_cell(EMAIL, "waiting", 1), count_cell(EMAIL, "failed", 1))
        reads = (
            dashboard_url(),
            links.queue_url(EMAIL),
            links.job_url(EMAIL, "f1"),
            links.queue_api_url(EMAIL),
        )
        for url in reads:
            assert (await admin_client.get(url)).status_code == 200, url
        on_replica, on_primary = await snapshot(replica.url), await snapshot(primary.url)
        clock = Clock("read-only replica")
        for url in (
            links.job_action_url(EMAIL, "retry", "f1"),
            links.queue_action_url(EMAIL, "pause"),
            links.job_action_url(EMAIL, "remove", "j1"),
            links.queue_action_url(EMAIL, "add"),
        ):
            response = await post(admin_client, url, name="x")
            assert response.status_code == 503, (url, response.content)
            assert (
                response.json()["message"] == "Redis is a read-only replica (READONLY). Nothing was changed."
            )
        clock.mark("actions 503 READONLY")
        assert await snapshot(replica.url) == on_replica and await snapshot(primary.url) == on_primary
        for url in reads:
            assert (await admin_client.get(url)).status_code == 200, url
        # Writes on the primary reach the socket through the replica's events stream.
        await add_jobs(primary.url, "email", [("send", {}, {})])
        await socket.wait_for(count_cell(EMAIL, "waiting", 2))
        clock.mark("replicated counts pushed")

        promote = Redis.from_url(replica.url)
        try:
            await promote.execute_command("REPLICAOF", "NO", "ONE")  # the failover completes
        finally:
            await promote.aclose()
        clock = Clock("replica promoted")
        retried = await post(admin_client, links.job_action_url(EMAIL, "retry", "f1"))
        assert retried.status_code == 200, retried.content
        clock.mark("retry 200")
        await socket.wait_for(count_cell(EMAIL, "waiting", 3))
        clock.mark("socket counts pushed")
    failed = [("retry", "failed"), ("pause", "failed"), ("remove", "failed"), ("add", "failed")]
    assert await audit_results() == [*failed, ("retry", "done")]


# ---------------------------------------------------------------------- 4. SCRIPT FLUSH under load


async def test_script_flush_under_load_is_invisible(scene: Scene, admin_client: AsyncClient) -> None:
    server = scene.server()
    count = 12
    await add_jobs(server.url, "email", [("send", {}, {"jobId": f"f{i}"}) for i in range(count)])
    await fail_all(server.url, count)
    with pointed_at(default=server.url):
        reset_directories()
        socket = await scene.overview_socket(count_cell(EMAIL, "failed", count))
        raw = Redis.from_url(server.url)
        await raw.config_resetstat()
        stop = asyncio.Event()
        flushes = 0

        async def flush() -> None:
            nonlocal flushes
            while not stop.is_set():
                await raw.script_flush()
                flushes += 1
                await asyncio.sleep(0.05)

        async def reads_and_retry(i: int) -> list[int]:
            statuses = []
            for url in (
                dashboard_url(),
                links.queue_url(EMAIL) + "?state=failed",
                links.job_url(EMAIL, f"f{i}"),
                links.jobs_api_url(EMAIL) + "?state=failed",
            ):
                statuses.append((await admin_client.get(url)).status_code)
            retry = await post(admin_client, links.job_action_url(EMAIL, "retry", f"f{i}"))
            return [*statuses, retry.status_code]

        flusher = asyncio.ensure_future(flush())
        clock = Clock("SCRIPT FLUSH every 50 ms")
        try:
            results = await asyncio.gather(*(reads_and_retry(i) for i in range(count)))
        finally:
            stop.set()
            await flusher
        clock.mark(f"{count * 5} requests during {flushes} flushes")
        try:
            errors = await raw.info("errorstats")
        finally:
            await raw.aclose()
        print(f"[redis fault] NOSCRIPT replies reloaded: {errors.get('errorstat_NOSCRIPT')}")
        assert errors.get("errorstat_NOSCRIPT", {}).get("count", 0) >= 1  # the flushes were felt
        assert results == [[200] * 5] * count
        await socket.wait_for(count_cell(EMAIL, "waiting", count))
        clock.mark("socket counts pushed")
    assert await audit_results() == [("retry", "done")] * count


# ------------------------------------------------------------------ 5. the watcher's connection killed


async def test_client_kill_of_the_watcher_and_of_every_client(
    scene: Scene, admin_client: AsyncClient
) -> None:
    server = scene.server()
    await add_jobs(server.url, "email", [("send", {}, {"jobId": "j1"})])
    with pointed_at(default=server.url):
        reset_directories()
        socket = await scene.overview_socket(count_cell(EMAIL, "waiting", 1))
        raw = Redis.from_url(server.url)
        try:

            async def watcher_ids() -> list[str]:
                return [c["id"] for c in await raw.client_list() if c["name"] == "bullmq-dashboard-events"]

            (killed,) = await watcher_ids()
            assert await raw.client_kill_filter(_id=killed) == 1
            clock = Clock("CLIENT KILL of the events watcher")

            async def reconnected() -> bool:
                return len(ids := await watcher_ids()) == 1 and ids != [killed]

            await until(reconnected)
            clock.mark("watcher reconnected")
            await add_jobs(server.url, "email", [("send", {}, {})])
            await socket.wait_for(count_cell(EMAIL, "waiting", 2))
            clock.mark("socket counts pushed")

            everyone = await raw.client_kill_filter(_type="normal", skipme=True)
            assert everyone >= 2  # the watcher and the dashboard's pooled connections
            clock = Clock(f"CLIENT KILL TYPE normal ({everyone} clients)")
            for url in (dashboard_url(), links.queue_url(EMAIL), links.queue_api_url(EMAIL)):
                assert (await admin_client.get(url)).status_code == 200, url
            paused = await post(admin_client, links.queue_action_url(EMAIL, "pause"))
            assert paused.status_code == 200, paused.content
            clock.mark("pages, API, action 200")
            await add_jobs(server.url, "email", [("send", {}, {})])
            await socket.wait_for(count_cell(EMAIL, "waiting", 3))
            clock.mark("socket counts pushed")
        finally:
            await raw.aclose()
    assert await audit_results() == [("pause", "done")]


# ------------------------------------------------------------------------------- 6. at maxmemory


async def test_maxmemory_refuses_growing_writes_whole_and_reads_go_on(
    scene: Scene, admin_client: AsyncClient
) -> None:
    server = scene.server()
    await add_jobs(server.url, "email", [("send", {}, {"jobId": "f1"})])
    await fail_all(server.url, 1)
    await add_jobs(server.url, "email", [("send", {}, {"jobId": "j1"})])
    with pointed_at(default=server.url):
        reset_directories()
        socket = await scene.overview_socket(count_cell(EMAIL, "waiting", 1), count_cell(EMAIL, "failed", 1))
        raw = Redis.from_url(server.url)
        try:
            used = int((await raw.info("memory"))["used_memory"])
            await raw.config_set("maxmemory-policy", "noeviction")
            await raw.config_set("maxmemory", str(used + 256 * 1024))
            for filled in range(1000):  # fill it up with keys of this test's own
                try:
                    await raw.set(f"filler:{filled}", b"x" * 16384)
                except OutOfMemoryError:
                    break
            else:
                raise AssertionError("maxmemory was never reached")
            # Just past the limit, Redis's use dips under it again as client buffers are freed, and a
            # small write then gets through: the limit is lowered well under what it holds.
            full = int((await raw.info("memory"))["used_memory"])
            await raw.config_set("maxmemory", str(full // 2))
            clock = Clock("maxmemory reached")
            before = await snapshot(server.url)
            for url in (links.queue_action_url(EMAIL, "add"), links.queue_action_url(EMAIL, "pause")):
                response = await post(admin_client, url, name="x")
                assert response.status_code == 503, response.content
                message = response.json()["message"]
                assert (
                    message.startswith("Redis is out of memory (OOM).") and "Nothing was changed." in message
                )
            clock.mark("add and pause 503 OOM")
            assert await snapshot(server.url) == before
            # Redis lets a script whose first write frees memory go on: a retry (ZREM first) and a
            # remove (DEL first) are taken whole.
            retried = await post(admin_client, links.job_action_url(EMAIL, "retry", "f1"))
            removed = await post(admin_client, links.job_action_url(EMAIL, "remove", "j1"))
            assert (retried.status_code, removed.status_code) == (200, 200)
            assert await raw.lrange("bull:email:wait", 0, -1) == [b"f1"]
            assert await raw.zcard("bull:email:failed") == 0 and not await raw.exists("bull:email:j1")
            for url in (
                dashboard_url(),
                links.queue_url(EMAIL),
                links.job_url(EMAIL, "f1"),
                links.queue_api_url(EMAIL),
            ):
                assert (await admin_client.get(url)).status_code == 200, url
            clock.mark("reads 200")
            await socket.wait_for(count_cell(EMAIL, "failed", 0))

            await raw.config_set("maxmemory", "0")
            clock = Clock("maxmemory lifted")
            added = await post(admin_client, links.queue_action_url(EMAIL, "add"), name="x")
            assert added.status_code == 200, added.content
            clock.mark("add 200")
            await socket.wait_for(count_cell(EMAIL, "waiting", 2))
            clock.mark("socket counts pushed")
        finally:
            await raw.aclose()
    failed = [("add", "failed"), ("pause", "failed")]
    assert await audit_results() == [*failed, ("retry", "done"), ("remove", "done"), ("add", "done")]
