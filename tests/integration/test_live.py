"""Live updates over websockets: access, what each page receives, one watcher per process, resilience."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
from channels.layers import get_channel_layer
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.live import fragments, groups
from dashboard.live.hub import get_hub
from dashboard.registry import reset_directories, stop_background_work
from queues.connections import ConnectionSettings, close_clients
from queues.events import EventWatcher, Interest, JobRef
from queues.live.streams import StreamTailer
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis, free_port
from tests.support.builders import add_jobs, pause, process
from tests.support.dashboard import dashboard_settings
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of, count_cell
from tests.support.urls import dashboard_url, socket_path, ws_path

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")


@pytest.fixture
def live(redis_url: str) -> Iterator[str]:
    """Fast live settings and a fresh in-memory channel layer on the test Redis."""
    with override_settings(
        CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=dashboard_settings(redis_url, LIVE=FAST)
    ):
        yield redis_url


@pytest.fixture
async def sockets(live: str, client: AsyncClient) -> AsyncIterator[Callable[[str], LiveSocket]]:
    """Opens sockets as the logged-in staff user; closes whatever is still open afterwards."""
    opened: list[LiveSocket] = []

    def make(path: str) -> LiveSocket:
        socket = LiveSocket(path, cookie_of(client))
        opened.append(socket)
        return socket

    yield make
    for socket in opened:
        await socket.close()
    assert get_hub().watcher is None


# ---------------------------------------------------------------------------------------- access


async def test_anonymous_sockets_are_refused(live: str, anonymous_client: AsyncClient) -> None:
    socket = LiveSocket(socket_path())
    assert await socket.connect() == (False, 4401)
    await socket.close()


async def test_users_without_the_view_permission_are_refused(
    live: str, anonymous_client: AsyncClient, django_user_model: Any
) -> None:
    user = await django_user_model.objects.acreate_user("visitor", password="pw")
    await anonymous_client.aforce_login(user)
    socket = LiveSocket(socket_path(), cookie_of(anonymous_client))
    assert await socket.connect() == (False, 4403)
    await socket.close()


async def test_foreign_origins_and_unknown_queues_are_refused(
    live: str, client: AsyncClient, sockets: Callable[[str], LiveSocket]
) -> None:
    await add_jobs(live, "email", [("send", {}, {})])
    foreign = LiveSocket(socket_path(), cookie_of(client), origin="https://evil.example")
    connected, _code = await foreign.connect()
    assert connected is False
    await foreign.close()
    assert await sockets(socket_path("default/bull:nope/")).connect() == (False, 4404)
    assert await sockets(socket_path("nowhere/bull:email/")).connect() == (False, 4404)


async def test_sockets_see_only_the_queues_their_user_may_view(redis_url: str, client: AsyncClient) -> None:
    sms = QueueRef("default", "bull", "sms")
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "e1"})])
    await add_jobs(redis_url, "sms", [("send", {}, {"jobId": "s1"})])
    restricted = dashboard_settings(
        redis_url, LIVE=FAST, PERMISSION="tests.integration.test_security.only_email"
    )
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=restricted):
        reset_directories()
        for path in (ws_path(links.queue_url(sms)), ws_path(links.job_url(sms, "s1"))):
            refused = LiveSocket(path, cookie_of(client))
            assert await refused.connect() == (False, 4404)
            await refused.close()
        overview = LiveSocket(socket_path(), cookie_of(client))
        assert (await overview.connect())[0]
        await add_jobs(redis_url, "sms", [("send", {}, {})])
        await add_jobs(redis_url, "email", [("send", {}, {})])
        await overview.wait_for(count_cell(EMAIL, "waiting", 2))
        await overview.drain(0.5)
        assert not any(fragments.queue_dom_id(sms) in text for text in overview.received)
        assert not any("New queues appeared" in text for text in overview.received)
        await overview.close()
        await close_dashboard_state()


async def close_dashboard_state() -> None:
    await get_hub().shutdown()
    await stop_background_work()
    await close_clients()


async def test_logout_closes_the_sessions_sockets_at_once(live: str, client: AsyncClient) -> None:
    await add_jobs(live, "email", [("send", {}, {})])
    socket = LiveSocket(socket_path(), cookie_of(client))
    other = LiveSocket(ws_path(links.queue_url(EMAIL)), cookie_of(client))
    assert (await socket.connect())[0] and (await other.connect())[0]
    await client.alogout()
    for opened in (socket, other):
        closed = await opened.communicator.receive_output(timeout=5)
        while closed["type"] != "websocket.close":
            closed = await opened.communicator.receive_output(timeout=5)
        assert closed["code"] == 4401
        await opened.close()


async def test_a_withdrawn_permission_closes_open_sockets(
    redis_url: str, client: AsyncClient, staff_user: Any
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    recheck = dashboard_settings(redis_url, LIVE={**FAST, "RECHECK_INTERVAL": 0.2})
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=recheck):
        socket = LiveSocket(ws_path(links.queue_url(EMAIL)), cookie_of(client))
        assert (await socket.connect())[0]
        staff_user.is_staff = False
        await staff_user.asave()
        closed = await socket.communicator.receive_output(timeout=5)
        while closed["type"] != "websocket.close":
            closed = await socket.communicator.receive_output(timeout=5)
        assert closed["code"] == 4403
        await socket.close()
        await close_dashboard_state()


async def test_one_user_cannot_open_unbounded_sockets(redis_url: str, client: AsyncClient) -> None:
    capped = dashboard_settings(redis_url, LIVE={**FAST, "MAX_SOCKETS_PER_USER": 2})
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=capped):
        opened = [LiveSocket(socket_path(), cookie_of(client)) for _ in range(3)]
        assert (await opened[0].connect())[0] and (await opened[1].connect())[0]
        assert await opened[2].connect() == (False, 4429)
        await opened[0].close()
        again = LiveSocket(socket_path(), cookie_of(client))
        assert (await again.connect())[0]
        for socket in [*opened[1:], again]:
            await socket.close()
        await close_dashboard_state()


async def test_disabled_live_updates_refuse_sockets_and_render_no_socket(
    redis_url: str, client: AsyncClient
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    settings = dashboard_settings(redis_url, LIVE={"ENABLED": False})
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        assert b"ws-connect" not in (await client.get(dashboard_url())).content
        socket = LiveSocket(socket_path(), cookie_of(client))
        assert await socket.connect() == (False, 4410)
        await socket.close()


async def test_pages_carry_their_socket_and_live_ids(client: AsyncClient, live: str) -> None:
    await add_jobs(live, "email", [("send", {}, {"jobId": "j1"})])
    overview = (await client.get(dashboard_url())).content.decode()
    # Each socket says the language its page is in (what it is sent is rendered in that language), the
    # overview's also the rows it shows (their element ids).
    rows = fragments.queue_dom_id(EMAIL)
    assert f'ws-connect="{socket_path()}?rows={rows}&amp;lang=en-us"' in overview
    assert f'id="{fragments.count_dom_id(EMAIL, "waiting")}"' in overview
    queue = (await client.get(links.queue_url(EMAIL) + "?state=failed&per_page=10")).content.decode()
    assert (
        f'ws-connect="{socket_path("default/bull:email/")}?state=failed&amp;page=1&amp;per_page=10&amp;lang=en-us"'
        in queue
    )
    job = (await client.get(links.job_url(EMAIL, "j1"))).content.decode()
    assert f'ws-connect="{socket_path("default/bull:email/job/")}?id=j1&amp;lang=en-us"' in job
    assert 'id="job-state"' in job and 'id="job-progress"' in job and 'id="job-failure"' in job


# ------------------------------------------------------------------------------- what moves live


async def test_overview_counts_and_paused_flag_move(sockets: Callable[[str], LiveSocket], live: str) -> None:
    await add_jobs(live, "email", [("send", {}, {})])
    overview = sockets(socket_path())
    assert await overview.connect() == (True, None)
    await overview.wait_for(count_cell(EMAIL, "waiting", 1))  # the snapshot on joining

    await add_jobs(live, "email", [("send", {"i": i}, {}) for i in range(2)])
    await overview.wait_for(count_cell(EMAIL, "waiting", 3))

    async def work(job: Any, token: str) -> str:
        return "ok"

    await process(live, "email", work, until=3)
    await overview.wait_for(count_cell(EMAIL, "completed", 3))
    await pause(live, "email")
    flag = await overview.wait_for('data-state="paused-flag"')
    assert f'id="{fragments.name_dom_id(EMAIL)}"' in flag


async def test_overview_notes_queues_it_does_not_list(
    sockets: Callable[[str], LiveSocket], live: str
) -> None:
    await add_jobs(live, "email", [("send", {}, {})])
    overview = sockets(socket_path())
    await overview.connect()
    await overview.wait_for(count_cell(EMAIL, "waiting", 1))
    await add_jobs(live, "fresh", [("send", {}, {})])
    reset_directories()  # a later SCAN finds the new queue
    note = await overview.wait_for('id="live-new-queues"', within=20)
    assert "New queues appeared" in note
    fresh_id = fragments.queue_dom_id(QueueRef("default", "bull", "fresh"))
    assert not any(fresh_id in text for text in overview.received)


async def test_queue_page_tab_counts_and_new_jobs_marker(
    sockets: Callable[[str], LiveSocket], live: str
) -> None:
    await add_jobs(live, "email", [("send", {}, {})])
    first = sockets(ws_path(links.queue_url(EMAIL), "state=waiting&page=1&per_page=10"))
    second = sockets(ws_path(links.queue_url(EMAIL), "state=waiting&page=2&per_page=10"))
    assert await first.connect() == (True, None)
    assert await second.connect() == (True, None)
    await first.wait_for(count_cell(EMAIL, "waiting", 1))

    await add_jobs(live, "email", [("send", {}, {}), ("send", {}, {})])
    await first.wait_for(count_cell(EMAIL, "waiting", 3))
    marker = await first.wait_for(lambda text: 'data-new-jobs="2"' in text)
    assert "2 new jobs — show" in marker
    assert f'hx-get="{links.queue_url(EMAIL)}?state=waiting&per_page=10"' in marker
    await second.wait_for(count_cell(EMAIL, "waiting", 3))
    assert not any("live-new-jobs" in text for text in second.received)  # only the first page

    await pause(live, "email")  # the heading's paused flag follows too
    flag = await first.wait_for('data-state="paused-flag"')
    assert 'class="badge paused"' in flag


async def test_pushes_are_rendered_in_the_language_of_each_page(
    sockets: Callable[[str], LiveSocket], live: str
) -> None:
    await add_jobs(live, "email", [("send", {}, {"jobId": "j1"})])
    german = sockets(ws_path(links.job_url(EMAIL, "j1"), "lang=de"))
    english = sockets(ws_path(links.job_url(EMAIL, "j1"), "lang=en-us"))
    unknown = sockets(ws_path(links.job_url(EMAIL, "j1"), "lang=xx-evil"))
    for socket in (german, english, unknown):
        assert (await socket.connect())[0]
    # The joining snapshot shows the job's state in each page's own language ("" = LANGUAGE_CODE).
    assert ">wartend<" in await german.wait_for('class="badge state-waiting"')
    assert ">waiting<" in await english.wait_for('class="badge state-waiting"')
    assert ">waiting<" in await unknown.wait_for('class="badge state-waiting"')


async def test_job_page_state_progress_logs_and_stack_trace(
    sockets: Callable[[str], LiveSocket], live: str
) -> None:
    # One worker takes them in order: "bad" fails first, then "slow" waits halfway for the test.
    await add_jobs(live, "email", [("send", {}, {"jobId": "bad"}), ("send", {}, {"jobId": "slow"})])
    slow = sockets(ws_path(links.job_url(EMAIL, "slow")))
    bad = sockets(ws_path(links.job_url(EMAIL, "bad")))
    await slow.connect()
    await bad.connect()
    await slow.wait_for('class="badge state-waiting"')
    halfway = asyncio.Event()
    release = asyncio.Event()

    async def work(job: Any, token: str) -> str:
        if job.id == "bad":
            raise ValueError("card declined")
        await job.updateProgress(40)
        await job.log("halfway there")
        halfway.set()
        await asyncio.wait_for(release.wait(), 20)
        return "done"

    worker = asyncio.ensure_future(process(live, "email", work, until=2))
    try:
        await asyncio.wait_for(halfway.wait(), 20)
        await slow.wait_for('class="badge state-active"')
        await slow.wait_for('<progress max="100" value="40">')
        await slow.wait_for(lambda text: "<li>halfway there</li>" in text and 'id="log-pager"' in text)
        await slow.wait_for("(1 line)")
        failure = await bad.wait_for('id="stacktraces"')
        assert "card declined" in failure and 'id="job-failure"' in failure
        await bad.wait_for('class="badge state-failed"')
    finally:
        release.set()
        await worker
    await slow.wait_for('class="badge state-completed"')


async def test_removed_job_shows_as_removed(
    sockets: Callable[[str], LiveSocket], live: str, redis_client: Redis
) -> None:
    await add_jobs(live, "email", [("send", {}, {"jobId": "gone"})])
    socket = sockets(ws_path(links.job_url(EMAIL, "gone")))
    await socket.connect()
    await socket.wait_for("state-waiting")
    from bullmq import Queue

    queue = Queue("email", {"connection": live})
    try:
        await queue.remove("gone")
    finally:
        await queue.close()
    await socket.wait_for('class="badge state-removed"')


# ------------------------------------------------------------------- one watcher, many viewers


async def test_one_watcher_per_process_started_and_stopped_by_viewers(
    sockets: Callable[[str], LiveSocket], live: str, redis_client: Redis
) -> None:
    await add_jobs(live, "email", [("send", {}, {})])
    assert get_hub().watcher is None
    viewers = [sockets(socket_path()) for _ in range(3)] + [sockets(ws_path(links.queue_url(EMAIL)))]
    for viewer in viewers:
        await viewer.connect()
    for viewer in viewers:
        await viewer.wait_for(count_cell(EMAIL, "waiting", 1))
    hub = get_hub()
    watcher = hub.watcher
    assert watcher is not None and hub.viewers == 4
    clients = await redis_client.client_list()
    assert sum(1 for entry in clients if entry["name"] == "bullmq-dashboard-events") == 1

    await add_jobs(live, "email", [("send", {}, {})])
    for viewer in viewers:
        await viewer.wait_for(count_cell(EMAIL, "waiting", 2))
    for viewer in viewers[:3]:
        await viewer.close()
    assert hub.watcher is watcher and hub.viewers == 1
    await viewers[3].close()
    assert hub.watcher is None and not watcher.running
    await asyncio.sleep(0.1)
    clients = await redis_client.client_list()
    assert not any(entry["name"] == "bullmq-dashboard-events" for entry in clients)


async def test_idle_viewers_cost_about_one_blocking_read_per_second(
    sockets: Callable[[str], LiveSocket], live: str, redis_client: Redis
) -> None:
    await add_jobs(live, "email", [("send", {}, {})])
    viewers = [sockets(socket_path()) for _ in range(5)]
    for viewer in viewers:
        await viewer.connect()
        await viewer.wait_for(count_cell(EMAIL, "waiting", 1))
    await redis_client.config_resetstat()
    await asyncio.sleep(2.5)
    stats = await redis_client.info("commandstats")
    xreads = stats.get("cmdstat_xread", {}).get("calls", 0)
    evalshas = stats.get("cmdstat_evalsha", {}).get("calls", 0)
    assert 1 <= xreads <= 5  # BLOCK 1000 ms, whatever the number of viewers
    assert evalshas <= 4  # the periodic resync (every second here), once for all viewers


def test_group_names_and_element_ids_are_safe_for_any_queue_or_job() -> None:
    valid = re.compile(r"^[a-zA-Z\d\-_.]+$")
    odd = QueueRef("tenants", "{tenant-a}:app v2", "émail/ünïcode " + "x" * 200)
    names = [
        groups.everyone_group(),
        groups.overview_group(),
        groups.queue_group(odd),
        groups.job_group(JobRef(odd, "repeat:nightly:1 / #?")),
    ]
    for name in names:
        assert valid.match(name) and len(name) < 100
        assert groups.PROCESS_TOKEN in name
    assert re.match(r"^count-[0-9a-f]{12}-waiting-children$", fragments.count_dom_id(odd, "waiting-children"))
    assert fragments.count_dom_id(odd, "failed") != fragments.count_dom_id(EMAIL, "failed")


# ------------------------------------------------------------------------------------ resilience


async def test_the_watcher_stops_even_when_a_read_swallows_its_cancellation(
    live: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_jobs(live, "email", [("send", {}, {})])
    reading = asyncio.Event()

    async def stubborn_xread(self: Redis, *args: Any, **kwargs: Any) -> list[Any]:
        reading.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return []  # as when a read's own timeout races the cancellation
        return []

    monkeypatch.setattr(Redis, "xread", stubborn_xread)
    published: list[Any] = []

    async def publish(update: Any) -> None:
        published.append(update)

    watcher = EventWatcher({"default": ConnectionSettings("default", live)}, publish)
    await watcher.start()
    try:
        await watcher.watch(Interest(queues=(EMAIL,)), token="viewer")
        await asyncio.wait_for(reading.wait(), 10)
    finally:
        await asyncio.wait_for(watcher.stop(), 10)
        await close_clients()
    assert not watcher.running


async def test_missed_events_are_healed_by_the_periodic_recount(
    sockets: Callable[[str], LiveSocket], live: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_jobs(live, "email", [("send", {}, {})])
    overview = sockets(socket_path())
    await overview.connect()
    await overview.wait_for(count_cell(EMAIL, "waiting", 1))
    monkeypatch.setattr(StreamTailer, "_note", lambda self, reply: None)  # as if the stream was trimmed
    await add_jobs(live, "email", [("send", {}, {}), ("send", {}, {})])
    await overview.wait_for(count_cell(EMAIL, "waiting", 3), within=10)


@pytest.fixture
def own_redis(client: AsyncClient) -> Iterator[ThrowawayRedis]:
    """A Redis of this test alone, which it may stop and start again on the same port."""
    server = ThrowawayRedis(free_port()).start()
    settings = dashboard_settings(server.url, LIVE=FAST, CONNECT_TIMEOUT=0.5, SOCKET_TIMEOUT=1.0)
    try:
        with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
            reset_directories()
            yield server
    finally:
        server.stop()
        reset_directories()


async def test_redis_going_away_shows_a_banner_and_live_updates_recover(
    own_redis: ThrowawayRedis, client: AsyncClient
) -> None:
    url = own_redis.url
    await add_jobs(url, "email", [("send", {}, {})])
    overview = LiveSocket(socket_path(), cookie_of(client))
    try:
        await overview.connect()
        await overview.wait_for(count_cell(EMAIL, "waiting", 1))
        own_redis.stop()
        down = await overview.wait_for(lambda text: 'id="live-redis"' in text and "unreachable" in text)
        assert "hidden" not in down
        own_redis.start()  # same port, empty: BullMQ starts again from scratch
        await add_jobs(url, "email", [("send", {}, {}), ("send", {}, {})])
        await overview.wait_for(lambda text: 'id="live-redis"' in text and "hidden" in text, within=30)
        await overview.wait_for(count_cell(EMAIL, "waiting", 2), within=30)
    finally:
        await overview.close()
        await stop_background_work()
        await close_clients()
    assert get_hub().watcher is None


async def test_works_with_the_redis_channel_layer(client: AsyncClient, redis_url: str) -> None:
    layer_url = redis_url.rsplit("/", 1)[0] + "/1"
    backend = "channels_redis.core.RedisChannelLayer"
    layers = {"default": {"BACKEND": backend, "CONFIG": {"hosts": [layer_url]}}}
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with override_settings(CHANNEL_LAYERS=layers, BULLMQ_DASHBOARD=dashboard_settings(redis_url, LIVE=FAST)):
        overview = LiveSocket(socket_path(), cookie_of(client))
        try:
            await overview.connect()
            await overview.wait_for(count_cell(EMAIL, "waiting", 1))
            await add_jobs(redis_url, "email", [("send", {}, {})])
            await overview.wait_for(count_cell(EMAIL, "waiting", 2))
        finally:
            await overview.close()
            layer = get_channel_layer()
            await layer.flush()
            await layer.close_pools()
    flush = redis.Redis.from_url(layer_url)
    try:
        flush.flushdb()
    finally:
        flush.close()
