"""The overview at size: a page reads and follows its own rows; the census behind its order reads a few
queues at a time; queues needing attention come first."""

from __future__ import annotations

import asyncio
import re
import time
from html import unescape
from typing import Any

import pytest
from bullmq import Worker
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import registry
from dashboard.census import get_census
from dashboard.live import fragments
from dashboard.live.hub import get_hub
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.builders import add_jobs, pause, process
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of, count_cell
from tests.support.urls import dashboard_url, socket_path

pytestmark = pytest.mark.host_compatible

A = QueueRef("default", "bull", "a")
C = QueueRef("default", "bull", "c")


def row_names(html: str) -> list[str]:
    return re.findall(r'<tr class="queue-row[^"]*" data-name="[^"]*" data-queue="bull:([^"]+)"', html)


async def commands(redis_client: Redis) -> int:
    stats: dict[str, Any] = await redis_client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


async def warm_view_cost(client: AsyncClient, redis_client: Redis, url: str) -> int:
    """Redis commands of one view after a first one (the INFO call itself excluded)."""
    assert (await client.get(url)).status_code == 200
    before = await commands(redis_client)
    assert (await client.get(url)).status_code == 200
    return await commands(redis_client) - before - 1


async def test_a_view_costs_what_its_page_shows_not_what_redis_holds(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """With live updates off (no watcher to serve counts) and no census reading, a view of the first 4
    of 40 queues costs the same Redis commands as a view of 4 queues."""
    small = dashboard_settings_for(
        redis_url, OVERVIEW_PAGE_SIZE=4, OVERVIEW_CENSUS_RATE=0, LIVE={"ENABLED": False}
    )
    for name in ("q00", "q01", "q02", "q03"):
        await add_jobs(redis_url, name, [("x", {}, {"delay": 60_000})])
    with override_settings(BULLMQ_DASHBOARD=small):
        reset_directories()
        four = await warm_view_cost(client, redis_client, dashboard_url())
    for n in range(4, 40):
        await add_jobs(redis_url, f"q{n:02}", [("x", {}, {"delay": 60_000})])
    with override_settings(BULLMQ_DASHBOARD=small):
        reset_directories()
        html = (await client.get(dashboard_url())).content.decode()
        assert row_names(html) == ["q00", "q01", "q02", "q03"] and "page 1 of 10" in html
        forty = await warm_view_cost(client, redis_client, dashboard_url())
    assert 0 < forty <= four + 2, (four, forty)


async def test_queues_needing_attention_come_first_and_the_page_follows_only_its_rows(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "alpha", [("x", {}, {"delay": 60_000})])  # nothing to do: healthy
    await add_jobs(redis_url, "beta", [("x", {}, {"delay": 60_000})])
    await pause(redis_url, "beta")  # paused
    await add_jobs(redis_url, "delta", [("x", {}, {})])  # a backlog nobody takes
    await add_jobs(redis_url, "gamma", [("x", {}, {"delay": 60_000})])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings_for(redis_url, OVERVIEW_PAGE_SIZE=3)):
        reset_directories()
        first = (await client.get(dashboard_url())).content.decode()
        assert row_names(first) == ["beta", "delta", "alpha"]
        assert row_names((await client.get(dashboard_url("?page=2"))).content.decode()) == ["gamma"]
        # The watcher follows the rows of the pages viewed, not every queue.
        watcher = get_hub().watcher
        assert watcher is not None
        followed = {queue.name for queue in watcher.counted_queues()}
        assert followed == {"alpha", "beta", "delta", "gamma"}
        by_name = (await client.get(dashboard_url("?sort=name"))).content.decode()
        assert row_names(by_name) == ["alpha", "beta", "delta"]
        # The group's totals span every queue the census read, not only the page's rows.
        assert '4 queues · <span data-total="waiting">1 waiting</span>' in first
        assert '<span data-total="delayed">3 delayed</span>' in first


async def test_the_census_reads_round_the_queues_and_sees_new_ones_first(
    client: AsyncClient, redis_url: str
) -> None:
    for name in ("a", "b", "c"):
        await add_jobs(redis_url, name, [("x", {}, {})])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings_for(redis_url, OVERVIEW_CENSUS_RATE=0)):
        reset_directories()
        census = get_census()
        assert await census.step(2) == 2
        queues = [QueueRef("default", "bull", name) for name in ("a", "b", "c")]
        assert census.unread(queues) == [queues[2]]
        assert await census.step(1) == 1 and census.unread(queues) == []
        await add_jobs(redis_url, "d", [("x", {}, {})])
        reset_directories()
        assert await census.step(1) == 1
        assert QueueRef("default", "bull", "d") in census.rows([QueueRef("default", "bull", "d")])
        assert census.rows(queues)[queues[0]].counts["waiting"] == 1


def dashboard_settings_for(url: str, **extra: Any) -> dict[str, Any]:
    from tests.support.dashboard import dashboard_settings

    return dashboard_settings(url, **extra)


async def test_a_page_socket_gets_only_its_rows_and_hears_of_new_queues_from_the_census(
    client: AsyncClient, redis_url: str
) -> None:
    """Page 1 of 2's socket follows and receives page 1's rows only; a queue created later is read by the
    census first and the socket says new queues appeared."""
    for name in ("a", "b", "c", "d"):
        await add_jobs(redis_url, name, [("x", {}, {"delay": 60_000})])
    settings = dashboard_settings_for(redis_url, LIVE=FAST, OVERVIEW_PAGE_SIZE=2, OVERVIEW_CENSUS_RATE=0)
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        reset_directories()
        page = (await client.get(dashboard_url())).content.decode()
        assert row_names(page) == ["a", "b"]
        socket_url = unescape(page.split('ws-connect="', 1)[1].split('"', 1)[0])
        socket = LiveSocket(socket_path() + "?" + socket_url.split("?", 1)[1], cookie_of(client))
        try:
            assert (await socket.connect())[0]
            await add_jobs(redis_url, "a", [("x", {}, {})])
            await socket.wait_for(count_cell(A, "waiting", 1))
            await add_jobs(redis_url, "c", [("x", {}, {})])  # page 2: not followed, not sent
            await add_jobs(redis_url, "e", [("x", {}, {})])  # a new queue
            reset_directories()
            assert await get_census().step(5) == 1  # the new queue (the others were read just now)
            await socket.wait_for("New queues appeared since this page was loaded")
            assert not any(fragments.queue_dom_id(C) in text for text in socket.received)
            watcher = get_hub().watcher
            assert watcher is not None and set(watcher.counted_queues()) == {
                A,
                QueueRef("default", "bull", "b"),
            }
        finally:
            await socket.close()


async def test_the_first_view_does_not_wait_for_a_whole_scan(
    client: AsyncClient, redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first pass that outlasts FIRST_SCAN_WAIT: the view answers with what it found so far and says
    it is still looking; the pass goes on in the background and the next view lists every queue."""
    import queues.discovery as discovery

    for name in ("a", "b"):
        await add_jobs(redis_url, name, [("x", {}, {})])
    await redis_client.eval("for i = 1, 20000 do redis.call('SET', 'junk:' .. i, 'x') end", 0)
    monkeypatch.setattr(discovery, "FIRST_SCAN_WAIT", 0.0)
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings_for(redis_url)):
        reset_directories()
        first = await client.get(dashboard_url())
        assert first.status_code == 200
        assert "Still looking for queues in Redis (default)" in first.content.decode()
        directory = registry.directory("default")
        for _ in range(100):
            if not directory.scanning:
                break
            await asyncio.sleep(0.05)
        html = (await client.get(dashboard_url())).content.decode()
        assert row_names(html) == ["a", "b"] and "Still looking" not in html


async def test_a_list_of_every_queue_from_the_api_is_not_followed_for_a_minute(
    client: AsyncClient, redis_url: str
) -> None:
    """The API's list of more queues than a page holds is read once: the watcher does not start
    following them all (a page of them is followed, as a polling client's page is)."""
    for name in ("a", "b", "c"):
        await add_jobs(redis_url, name, [("x", {}, {})])
    settings = dashboard_settings_for(
        redis_url, MAX_PAGE_SIZE=2, PAGE_SIZES=[1, 2], DEFAULT_PAGE_SIZE=2, LIVE=FAST
    )
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        reset_directories()
        every = (await client.get(dashboard_url("api/queues/"))).json()
        assert every["total"] == 3 and len(every["queues"]) == 3
        watcher = get_hub().watcher
        assert watcher is None or watcher.counted_queues() == []
        paged = (await client.get(dashboard_url("api/queues/"), {"per_page": 2})).json()
        assert [queue["name"] for queue in paged["queues"]] == ["a", "b"]
        watcher = get_hub().watcher
        assert watcher is not None and {queue.name for queue in watcher.counted_queues()} == {"a", "b"}


async def take_one(url: str, name: str) -> None:
    """A worker takes the next job of a queue and holds it (it stays active)."""

    async def never(job: Any, token: str) -> None:
        raise AssertionError("not processed here")

    worker = Worker(name, never, {"connection": url, "autorun": False})
    try:
        assert await worker.moveToActive("holder") is not None
    finally:
        await worker.close()
        for connection in (worker.redisConnection, worker.blockingRedisConnection):
            if connection is not None:
                await connection.conn.connection_pool.disconnect()


async def test_work_with_no_completion_within_the_health_window_comes_first(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """Jobs waiting and active, the newest kept completion older than HEALTH["WINDOW"]: a worker holds
    jobs but finishes none, and the queue is ordered with those needing attention. A queue that keeps
    no completed jobs (removeOnComplete) cannot be judged so and is not."""

    async def done(job: Any, token: str) -> None:
        return None

    for name in ("alpha", "omega", "zeta"):
        await add_jobs(redis_url, name, [("x", {}, {"jobId": "first"})])
        await process(redis_url, name, done, until=1)
        await add_jobs(redis_url, name, [("x", {}, {}), ("x", {}, {})])
        await take_one(redis_url, name)
    await add_jobs(redis_url, "kappa", [("x", {}, {"removeOnComplete": True})])
    await process(redis_url, "kappa", done, until=1)
    await add_jobs(redis_url, "kappa", [("x", {}, {}), ("x", {}, {})])
    await take_one(redis_url, "kappa")
    # omega's last completion was 20 minutes ago (the health window is 10 minutes).
    await redis_client.zadd("bull:omega:completed", {"first": int(time.time() * 1000) - 20 * 60_000}, xx=True)
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings_for(redis_url, OVERVIEW_PAGE_SIZE=10)):
        reset_directories()
        html = (await client.get(dashboard_url())).content.decode()
        assert row_names(html) == ["omega", "alpha", "kappa", "zeta"]


@pytest.mark.parametrize("score", ["+inf", "-inf", "1e300", "-5"])
async def test_a_completed_set_a_job_author_scored_oddly_neither_fails_nor_hides_the_overview(
    client: AsyncClient, redis_url: str, redis_client: Redis, score: str
) -> None:
    """The newest completion's score is read for the attention order: an author who writes any score
    into `completed` (infinities, far future or past) gets a page that renders every queue, the odd one
    judged by what can be told (a past score is no completion lately; the others tell nothing)."""
    await add_jobs(redis_url, "zodd", [("x", {}, {}), ("x", {}, {})])
    await take_one(redis_url, "zodd")
    await redis_client.execute_command("ZADD", "bull:zodd:completed", score, "odd-member")
    await add_jobs(redis_url, "plain", [("x", {}, {"delay": 60_000})])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings_for(redis_url, OVERVIEW_PAGE_SIZE=10)):
        reset_directories()
        response = await client.get(dashboard_url())
        assert response.status_code == 200
        names = row_names(response.content.decode())
        assert sorted(names) == ["plain", "zodd"]
        troubled_first = score == "-5"  # completed long ago: work, no completion lately
        assert (names[0] == "zodd") is troubled_first
