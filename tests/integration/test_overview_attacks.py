"""Attacks on the paged overview (census, page picking, the page's socket, API paging), kept as tests: a
connection down, crafted parameters, a one-queue viewer, markup in names, the census's budget and lease."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard.census import get_census
from dashboard.live import fragments
from dashboard.live.hub import get_hub
from dashboard.registry import reset_directories
from queues.models import QueueRef
from queues.throwaway_redis import free_port
from tests.support.builders import add_jobs, pause
from tests.support.dashboard import dashboard_settings
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of
from tests.support.urls import dashboard_url, socket_path

ONLY_EMAIL = "tests.integration.test_security.only_email"


def row_names(html: str) -> list[str]:
    return re.findall(r'<tr class="queue-row[^"]*" data-name="[^"]*" data-queue="bull:([^"]+)"', html)


def socket_of(html: str) -> str:
    return html.split('ws-connect="', 1)[1].split('"', 1)[0].replace("&amp;", "&")


def down_connection(**extra: Any) -> dict[str, Any]:
    """A connection whose port refuses (nothing listens), with configured queues."""
    return {"URL": f"redis://127.0.0.1:{free_port()}/0", **extra}


# ----------------------------------------------------------------------- a connection down


async def test_one_connection_down_does_not_turn_the_second_view_into_a_redis_down_page(
    client: AsyncClient, redis_url: str
) -> None:
    """Connection `c` is down, `default` answers: every view shows default's rows and c's with their
    reason, never the Redis-down page (a census read of c's rows alone fails every connection it asked,
    not every connection there is)."""
    await add_jobs(redis_url, "alpha", [("x", {}, {})])
    connections = {"default": {"URL": redis_url}, "c": down_connection(QUEUES=["bull:xdown"])}
    settings = dashboard_settings(
        redis_url, CONNECTIONS=connections, CONNECT_TIMEOUT=0.5, SOCKET_TIMEOUT=0.5, LIVE={"ENABLED": False}
    )
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        first = await client.get(dashboard_url())
        second = await client.get(dashboard_url())
    assert first.status_code == 200, first.content[:300]
    assert second.status_code == 200, (second.status_code, second.content[:400])
    assert "alpha" in row_names(second.content.decode())


async def test_a_page_holding_only_rows_of_a_down_connection_is_not_a_redis_down_page(
    client: AsyncClient, redis_url: str
) -> None:
    """A page holding only queues of the down connection shows them with the reason, not the Redis-down
    page: the other connection answers."""
    await add_jobs(redis_url, "alpha", [("x", {}, {})])
    connections = {"default": {"URL": redis_url}, "c": down_connection(QUEUES=["bull:xdown"])}
    settings = dashboard_settings(
        redis_url,
        CONNECTIONS=connections,
        CONNECT_TIMEOUT=0.5,
        SOCKET_TIMEOUT=0.5,
        OVERVIEW_PAGE_SIZE=1,
        OVERVIEW_CENSUS_READS=0,
        LIVE={"ENABLED": False},
    )
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        pages = [await client.get(dashboard_url(f"?page={n}")) for n in (1, 2)]
        api = [await client.get(dashboard_url(f"api/queues/?page={n}&per_page=1")) for n in (1, 2)]
    assert [answer.status_code for answer in pages] == [200, 200]  # page 1 is c's (`c` < `default`)
    assert [answer.status_code for answer in api] == [200, 200]  # page 2 is c's (listing order)


async def test_the_census_keeps_refreshing_reachable_queues_while_a_connection_is_down(
    client: AsyncClient, redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of a down connection are remembered with their reason, so they are not "never read" and
    every step does not pick them first: the census goes on re-reading the reachable queues."""
    import dashboard.census as census_module

    monkeypatch.setattr(census_module, "REREAD_SECONDS", 0.0)
    await add_jobs(redis_url, "alpha", [("x", {}, {})])
    connections = {"default": {"URL": redis_url}, "c": down_connection(QUEUES=["bull:d1", "bull:d2"])}
    settings = dashboard_settings(
        redis_url,
        CONNECTIONS=connections,
        CONNECT_TIMEOUT=0.5,
        SOCKET_TIMEOUT=0.5,
        OVERVIEW_CENSUS_RATE=0,
        LIVE={"ENABLED": False},
    )
    alpha = QueueRef("default", "bull", "alpha")
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        census = get_census()
        with contextlib.suppress(Exception):
            await census.step(3)  # reads alpha, d1, d2 (d1, d2 fail)
        assert census.rows([alpha])[alpha].counts["waiting"] == 1
        await add_jobs(redis_url, "alpha", [("x", {}, {})])
        for _ in range(4):  # a full round at rate 2 is 2 steps; give it 4
            with contextlib.suppress(Exception):
                await census.step(2)
        assert census.rows([alpha])[alpha].counts["waiting"] == 2, "alpha never re-read"


# ----------------------------------------------------------------------- the socket's page


async def test_the_socket_follows_the_rows_the_page_showed_even_when_the_census_changed_since(
    client: AsyncClient, redis_url: str
) -> None:
    """The socket follows the rows the page was rendered with (named in its URL), not a page picked
    again when it connects: the census may have changed the order in between."""
    for name in ("alpha", "beta"):
        await add_jobs(redis_url, name, [("x", {}, {"delay": 60_000})])  # healthy
    settings = dashboard_settings(redis_url, LIVE=FAST, OVERVIEW_PAGE_SIZE=1, OVERVIEW_CENSUS_RATE=0)
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        reset_directories()
        html = (await client.get(dashboard_url())).content.decode()
        assert row_names(html) == ["alpha"]
        url = socket_of(html)
        await pause(redis_url, "beta")  # beta now needs attention
        await get_census().step(2)  # what the background census does within a second
        socket = LiveSocket(url, cookie_of(client))
        try:
            assert (await socket.connect())[0]
            followed = [view.queues for view in get_hub()._views.values()]
            assert followed == [(QueueRef("default", "bull", "alpha"),)], followed
        finally:
            await socket.close()


async def test_a_needs_attention_page_does_not_note_queues_that_are_on_its_other_pages(
    client: AsyncClient, redis_url: str
) -> None:
    """Two stuck queues, one a page: beta is on page 2 of the "needs attention" list when page 1 is
    loaded. Its counts change (still stuck): page 1's socket must not say another queue came to need
    attention (it is listed, on page 2)."""
    for name in ("alpha", "beta"):
        await add_jobs(redis_url, name, [("x", {}, {})])
        await pause(redis_url, name)
    settings = dashboard_settings(
        redis_url, LIVE=FAST, OVERVIEW_PAGE_SIZE=1, OVERVIEW_CENSUS_RATE=0, HEALTH={"CACHE_SECONDS": 0}
    )
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        reset_directories()
        html = (await client.get(dashboard_url("?attention=1"))).content.decode()
        assert row_names(html) == ["alpha"] and "page 1 of 2" in html
        socket = LiveSocket(socket_of(html), cookie_of(client))
        try:
            assert (await socket.connect())[0]
            await socket.drain(0.5)
            await add_jobs(redis_url, "beta", [("x", {}, {})])  # beta: still stuck, 2 waiting
            await get_census().step(2)
            await socket.drain(1.0)
            notes = [text for text in socket.received if "Another queue came to need attention" in text]
            assert not notes, notes
        finally:
            await socket.close()


@pytest.mark.parametrize(
    "query",
    [
        "page=abc&sort=zzz&attention=5&failing=x",
        "page=-3",
        "page=0",
        "page=" + "9" * 30,
        "page=1e3",
        "page=%00",
        "q=%ff%fe&page=2",
        "sort=-&page=2",
        "sort=--failed",
        "attention=1&failing=1&sort=-last_failed&page=7",
        "page=%D9%A1%D9%A2",  # Arabic-Indic digits: int() takes them
    ],
)
async def test_socket_query_strings_never_break_the_consumer(
    client: AsyncClient, redis_url: str, query: str
) -> None:
    await add_jobs(redis_url, "alpha", [("x", {}, {})])
    settings = dashboard_settings(redis_url, LIVE=FAST, OVERVIEW_PAGE_SIZE=1)
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        reset_directories()
        socket = LiveSocket(f"{socket_path()}?{query}", cookie_of(client))
        try:
            connected, code = await socket.connect()
            assert connected, code
        finally:
            await socket.close()


# ----------------------------------------------------------------------- crafted URLs


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("page=abc", 400),
        ("page=0", 400),
        ("page=-1", 400),
        ("page=1.5", 400),
        ("page=" + "9" * 30, 400),
        ("page=5000", 200),
        ("page=2&sort=nope", 400),
        ("page=%00", 400),
    ],
)
async def test_crafted_page_numbers_on_the_html_view(
    client: AsyncClient, redis_url: str, query: str, status: int
) -> None:
    await add_jobs(redis_url, "alpha", [("x", {}, {})])
    answer = await client.get(dashboard_url(f"?{query}"))
    assert answer.status_code == status, answer.content[:300]
    partial = await client.get(dashboard_url(f"?{query}"), headers={"HX-Request": "true"})
    assert partial.status_code == status


@pytest.mark.parametrize(
    ("query", "status"),
    [("page=abc", 400), ("per_page=0", 400), ("per_page=100000", 400), ("page=99999", 200), ("q=%00", 200)],
)
async def test_crafted_api_paging(client: AsyncClient, redis_url: str, query: str, status: int) -> None:
    await add_jobs(redis_url, "alpha", [("x", {}, {})])
    answer = await client.get(dashboard_url(f"api/queues/?{query}"))
    assert answer.status_code == status, answer.content[:300]


async def test_markup_in_queue_names_and_filter_text_is_escaped(client: AsyncClient, redis_url: str) -> None:
    evil = '<img src=x onerror=alert(1)>"'
    await add_jobs(redis_url, evil, [("x", {}, {})])
    for n in range(3):
        await add_jobs(redis_url, f"q{n}", [("x", {}, {"delay": 60_000})])
    settings = dashboard_settings(redis_url, OVERVIEW_PAGE_SIZE=1)
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        for url in (
            dashboard_url(),
            dashboard_url("?page=2&q=%22%3E%3Cscript%3Ex%3C/script%3E"),
            dashboard_url("?q=%3Cimg&sort=-failed"),
        ):
            html = (await client.get(url)).content.decode()
            assert "<img src=x" not in html and "<script>x" not in html, url


# ----------------------------------------------------------------------- one-queue viewers


async def test_a_one_queue_viewer_learns_nothing_of_other_queues(client: AsyncClient, redis_url: str) -> None:
    """The census is shared by every user of the process: after someone who sees everything viewed the
    overview, a viewer of bull:email only must see totals, pager, unread note, API totals and pushes of
    email alone."""
    await add_jobs(redis_url, "email", [("x", {}, {})])
    await add_jobs(redis_url, "sms", [("x", {}, {})] * 7)
    await add_jobs(redis_url, "secret", [("x", {}, {"delay": 60_000})] * 5)
    with override_settings(
        CHANNEL_LAYERS=IN_MEMORY,
        BULLMQ_DASHBOARD=dashboard_settings(redis_url, LIVE=FAST, OVERVIEW_PAGE_SIZE=1),
    ):
        reset_directories()
        everything = (await client.get(dashboard_url())).content.decode()
        assert "3 queues" in everything
    restricted = dashboard_settings(
        redis_url, LIVE=FAST, OVERVIEW_PAGE_SIZE=1, PERMISSION=ONLY_EMAIL, OVERVIEW_CENSUS_RATE=0
    )
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=restricted):
        reset_directories()
        for url in (
            dashboard_url(),
            dashboard_url("?sort=-failed"),
            dashboard_url("?attention=1"),
            dashboard_url("?failing=1"),
            dashboard_url("?q=s"),
        ):
            html = (await client.get(url)).content.decode()
            assert "sms" not in html and "secret" not in html, url
            assert "7 waiting" not in html and "8 waiting" not in html and "5 delayed" not in html, url
            assert "page 1 of" not in html, url
            assert "not read yet" not in html, url
        api = (await client.get(dashboard_url("api/queues/?page=1&per_page=1"))).json()
        assert api["total"] == 1 and api["pages"] == 1
        html = (await client.get(dashboard_url())).content.decode()
        socket = LiveSocket(socket_of(html), cookie_of(client))
        try:
            assert (await socket.connect())[0]
            await add_jobs(redis_url, "sms", [("x", {}, {})])
            await add_jobs(redis_url, "newcomer", [("x", {}, {})])
            reset_directories()
            await get_census().step(10)
            await socket.drain(1.0)
            sms = fragments.queue_dom_id(QueueRef("default", "bull", "sms"))
            leaked = [t for t in socket.received if sms in t or "New queues appeared" in t]
            assert not leaked, leaked
        finally:
            await socket.close()


# ----------------------------------------------------------------------- background census lifetime


async def test_the_census_stops_after_its_lease(
    client: AsyncClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dashboard.census as census_module

    monkeypatch.setattr(census_module, "LEASE_SECONDS", 0.3)
    await add_jobs(redis_url, "alpha", [("x", {}, {})])
    settings = dashboard_settings(redis_url, OVERVIEW_CENSUS_RATE=1, LIVE={"ENABLED": False})
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        assert (await client.get(dashboard_url())).status_code == 200
        census = get_census()
        task = census._task
        assert task is not None and not task.done()
        for _ in range(50):
            if task.done():
                break
            await asyncio.sleep(0.1)
        assert task.done()


async def test_a_view_reads_no_more_than_its_budget_and_page(
    client: AsyncClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows read by a cold view: at most OVERVIEW_CENSUS_READS unread rows plus the page's rows, each
    queue at most once."""
    import dashboard.overview as overview_module

    for n in range(30):
        await add_jobs(redis_url, f"q{n:02}", [("x", {}, {"delay": 60_000})])
    read: list[QueueRef] = []
    real = overview_module.fetch_rows

    async def counting(queues: list[QueueRef]) -> Any:
        read.extend(queues)
        return await real(queues)

    monkeypatch.setattr(overview_module, "fetch_rows", counting)
    settings = dashboard_settings(
        redis_url,
        OVERVIEW_PAGE_SIZE=4,
        OVERVIEW_CENSUS_READS=5,
        OVERVIEW_CENSUS_RATE=0,
        LIVE={"ENABLED": False},
    )
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        for url in (dashboard_url(), dashboard_url("?sort=-failed&page=3"), dashboard_url("?attention=1")):
            read.clear()
            assert (await client.get(url)).status_code == 200
            assert len(read) <= 5 + 4, (url, len(read))
            assert len(read) == len(set(read)), (url, "rows read twice", len(read) - len(set(read)))


# ----------------------------------------------------------------------- an overview left open


@pytest.mark.parametrize("lease", [60.0, 0.3])
async def test_an_open_overview_still_hears_of_new_queues_after_the_census_lease(
    client: AsyncClient, redis_url: str, monkeypatch: pytest.MonkeyPatch, lease: float
) -> None:
    """New queues (and off-page queues coming to need attention) are heard of through the census's
    pushes: an open overview socket keeps the census reading past its lease."""
    import dashboard.census as census_module

    monkeypatch.setattr(census_module, "LEASE_SECONDS", lease)
    await add_jobs(redis_url, "alpha", [("x", {}, {})])
    settings = dashboard_settings(redis_url, LIVE=FAST, OVERVIEW_CENSUS_RATE=50, DISCOVERY_INTERVAL=0.2)
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        reset_directories()
        html = (await client.get(dashboard_url())).content.decode()
        socket = LiveSocket(socket_of(html), cookie_of(client))
        try:
            assert (await socket.connect())[0]
            await socket.drain(1.0)  # past the short lease
            await add_jobs(redis_url, "newcomer", [("x", {}, {})])
            await socket.wait_for("New queues appeared", within=5.0)
        finally:
            await socket.close()


async def test_needs_attention_spans_every_queue_or_says_it_does_not(
    client: AsyncClient, redis_url: str
) -> None:
    """?attention=1 judges only the first OVERVIEW_MAX_QUEUES rows the census read: the page says how
    many more were not judged."""
    for name in ("a1", "a2", "a3"):
        await add_jobs(redis_url, name, [("x", {}, {})])
        await pause(redis_url, name)
    settings = dashboard_settings(redis_url, OVERVIEW_MAX_QUEUES=2, OVERVIEW_PAGE_SIZE=10)
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        html = (await client.get(dashboard_url("?attention=1"))).content.decode()
        listed = row_names(html)
        assert listed == ["a1", "a2", "a3"] or "The health of 1 more queue was not judged" in html, listed
