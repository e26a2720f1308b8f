"""Issue 13 ("the 3 a.m. operator"): failure recency on the overview (when the last failure was, how many
in the last hour, sortable and filterable), visible failed-at / finished-at times in job lists, a queue
page that opens where the trouble is, and a job page breadcrumb that follows the job's state."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from bullmq import Queue
from django.test import AsyncClient
from django.utils.html import escape
from redis.asyncio import Redis

from dashboard import links
from dashboard.live import fragments
from queues.counts import fetch_counts
from queues.jobs import ReadLimits, fetch_queue_opening
from queues.models import QueueRef
from tests.integration.test_live import live, sockets  # noqa: F401 (fixtures)
from tests.support.builders import add_jobs, process
from tests.support.live import LiveSocket
from tests.support.urls import dashboard_url, socket_path, ws_path

pytestmark = pytest.mark.host_compatible

ALPHA = QueueRef("default", "bull", "alpha")
BETA = QueueRef("default", "bull", "beta")
GAMMA = QueueRef("default", "bull", "gamma")


async def fail(job: Any, token: str) -> None:
    raise RuntimeError(f"boom {job.id}")


async def succeed(job: Any, token: str) -> str:
    return "ok"


async def build_failures(url: str) -> None:
    """alpha: 3 failed; beta: 1 failed, after alpha's; gamma: 2 completed and nothing failed."""
    await add_jobs(url, "alpha", [("send", {}, {"jobId": f"a{i}"}) for i in range(3)])
    await process(url, "alpha", fail, until=3)
    await asyncio.sleep(0.01)  # beta's failure is strictly newer than alpha's
    await add_jobs(url, "beta", [("send", {}, {"jobId": "b0"})])
    await process(url, "beta", fail, until=1)
    await add_jobs(url, "gamma", [("send", {}, {"jobId": f"g{i}"}) for i in range(2)])
    await process(url, "gamma", succeed, until=2)


async def newest_failed(redis_client: Redis, queue: QueueRef) -> int:
    ((_member, score),) = await redis_client.zrevrange(f"{queue.key_prefix}failed", 0, 0, withscores=True)
    return int(score)


def row_order(html: str) -> list[str]:
    return re.findall(r'<tr class="queue-row[^"]*" data-name="[^"]*" data-queue="([^"]+)"', html)


def cell(html: str, queue: QueueRef, part: str) -> str:
    match = re.search(rf'<td id="{re.escape(fragments.failure_dom_id(queue, part))}".*?</td>', html, re.S)
    assert match, (queue, part)
    return match.group(0)


def clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


# ----------------------------------------------------------------------------------- the overview


async def test_overview_shows_last_failure_visibly_and_failures_of_the_last_hour(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await build_failures(redis_url)
    html = (await client.get(dashboard_url())).content.decode()

    assert ">Failed, last hour<" in html and ">Last failure (UTC)<" in html
    alpha_hour = cell(html, ALPHA, "failed-hour")
    assert re.search(r">3</a>", alpha_hour) and "zero" not in alpha_hour
    assert re.search(r">0</a>", cell(html, GAMMA, "failed-hour"))
    # Relative and exact time, both as text (no hover): "<relative> · hh:mm:ss", the full time in titles.
    last = cell(html, ALPHA, "last-failed")
    at = await newest_failed(redis_client, ALPHA)
    exact = datetime.fromtimestamp(at / 1000, tz=UTC)
    assert re.search(
        rf'<time class="rel" datetime="{exact:%Y-%m-%dT%H:%M:%S}\.\d{{3}}Z"[^>]*>[^<]+</time>'
        rf'<span class="stamp-sep"> · </span><time class="clock"[^>]*>{clock(at)}</time>',
        last,
    ), last
    assert "—" in cell(html, GAMMA, "last-failed")  # never failed
    assert "removeOnFail" in html  # the note that jobs removed on failure are not counted


async def test_overview_sorts_by_column_and_filters_failing_queues_keeping_the_query(
    client: AsyncClient, redis_url: str
) -> None:
    await build_failures(redis_url)

    async def order(query: str) -> list[str]:
        response = await client.get(dashboard_url() + query)
        assert response.status_code == 200, response.content[:300]
        return row_order(response.content.decode())

    assert await order("") == ["bull:alpha", "bull:beta", "bull:gamma"]
    assert await order("?sort=-name") == ["bull:gamma", "bull:beta", "bull:alpha"]
    assert await order("?sort=-failed") == ["bull:alpha", "bull:beta", "bull:gamma"]
    assert await order("?sort=failed") == ["bull:gamma", "bull:beta", "bull:alpha"]
    assert await order("?sort=-failed_hour") == ["bull:alpha", "bull:beta", "bull:gamma"]
    # Newest failure first; a queue that never failed comes last whichever the direction.
    assert await order("?sort=-last_failed") == ["bull:beta", "bull:alpha", "bull:gamma"]
    assert await order("?sort=last_failed") == ["bull:alpha", "bull:beta", "bull:gamma"]
    assert await order("?failing=1") == ["bull:alpha", "bull:beta"]
    assert await order("?failing=1&sort=-last_failed&q=a") == ["bull:beta", "bull:alpha"]

    html = (await client.get(dashboard_url() + "?q=a&sort=-failed")).content.decode()
    # The column heads link to their sort with the filter kept; the current one links the other way.
    assert f'aria-sort="descending"><a href="{escape(links.overview_url("a", "failed"))}"' in html
    assert f'href="{escape(links.overview_url("a", "-last_failed"))}" data-sort="last_failed"' in html
    assert f'href="{escape(links.overview_url("a", "-failed", failing=True))}"' in html  # "Failing only"
    assert 'name="sort" value="-failed"' in html  # the filter form keeps the sort

    nothing = (await client.get(dashboard_url() + "?failing=1&q=gamma")).content.decode()
    assert "No queue failed a job in the last hour." in nothing


@pytest.mark.parametrize("query", ["?sort=bogus", "?sort=--name", "?failing=yes"])
async def test_bad_sort_or_filter_is_a_clear_400(client: AsyncClient, redis_url: str, query: str) -> None:
    await add_jobs(redis_url, "alpha", [("send", {}, {})])
    response = await client.get(dashboard_url() + query)
    assert response.status_code == 400
    assert b"Traceback" not in response.content


async def test_failures_of_the_last_hour_are_counted_by_finish_time(
    redis_url: str, redis_client: Redis
) -> None:
    await build_failures(redis_url)
    at = await newest_failed(redis_client, ALPHA)
    oldest = int((await redis_client.zrange("bull:alpha:failed", 0, 0, withscores=True))[0][1])
    hour = 3_600_000

    async def read(now: int) -> tuple[int | None, int | None]:
        (row,) = await fetch_counts(redis_client, [ALPHA], now=now)
        return row.last_failed_at, row.failed_last_hour

    assert await read(at) == (at, 3)
    assert await read(oldest + hour) == (at, 3)  # the window includes its start
    assert await read(at + hour + 1) == (at, 0)
    (gamma,) = await fetch_counts(redis_client, [GAMMA])
    assert (gamma.last_failed_at, gamma.failed_last_hour) == (None, 0)


async def test_a_broken_failed_key_breaks_only_its_own_recency(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await build_failures(redis_url)
    await redis_client.delete("bull:beta:failed")
    await redis_client.set("bull:beta:failed", "not a zset")
    (beta, alpha) = await fetch_counts(redis_client, [BETA, ALPHA])
    assert (beta.last_failed_at, beta.failed_last_hour) == (None, None) and "failed" in beta.problem
    assert alpha.failed_last_hour == 3
    response = await client.get(dashboard_url() + "?sort=-failed_hour")
    assert response.status_code == 200
    assert row_order(response.content.decode())[-1] == "bull:beta"


async def test_queue_json_has_last_failed_at_and_failed_last_hour(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await build_failures(redis_url)
    listed = json.loads((await client.get(dashboard_url("api/queues/"))).content)
    by_name = {queue["name"]: queue for queue in listed["queues"]}
    assert by_name["alpha"]["lastFailedAt"] == await newest_failed(redis_client, ALPHA)
    assert by_name["alpha"]["failedLastHour"] == 3
    assert by_name["gamma"]["lastFailedAt"] is None and by_name["gamma"]["failedLastHour"] == 0
    detail = json.loads((await client.get(by_name["beta"]["api_url"])).content)
    assert detail["lastFailedAt"] == await newest_failed(redis_client, BETA)
    assert detail["failedLastHour"] == 1


# ------------------------------------------------------------------------------------- job lists


async def test_failed_and_completed_lists_show_when_they_finished(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await build_failures(redis_url)
    failed = (await client.get(links.queue_url(ALPHA) + "?state=failed")).content.decode()
    assert ">Failed at (UTC)</th><th>Reason</th>" in failed
    finished = int(await redis_client.hget("bull:alpha:a0", "finishedOn"))
    row = re.search(r'<tr class="job-row" data-job-id="a0">.*?</tr>', failed, re.S)
    assert row
    assert re.search(
        rf'<td class="finished-at nowrap" data-label="Failed at"><span class="stamp">.*?'
        rf'<time class="clock"[^>]*>{clock(finished)}</time>',
        row.group(0),
    )
    completed = (await client.get(links.queue_url(GAMMA) + "?state=completed")).content.decode()
    assert ">Finished at (UTC)</th>" in completed
    done = int(await redis_client.hget("bull:gamma:g0", "finishedOn"))
    assert re.search(
        rf'data-job-id="g0">.*?<td class="last finished-at nowrap" data-label="Finished at">'
        rf'<span class="stamp">.*?{clock(done)}</time>',
        completed,
        re.S,
    )


# ------------------------------------------------------------------------ where a queue page opens


def current_tab(html: str) -> str:
    match = re.search(r'<a class="tab active"[^>]*href="[^"]*\?state=([\w-]+)', html)
    assert match, "no current tab"
    return match.group(1)


async def test_a_queue_page_without_a_state_opens_on_its_failures(
    client: AsyncClient, redis_url: str
) -> None:
    await build_failures(redis_url)
    await add_jobs(redis_url, "alpha", [("send", {}, {"jobId": "w1"})])  # waiting, listed first before
    html = (await client.get(links.queue_url(ALPHA))).content.decode()
    assert current_tab(html) == "failed"
    assert 'data-list-state="failed"' in html
    assert set(re.findall(r'data-job-id="([^"]+)"', html)) == {"a0", "a1", "a2"}
    # The live socket and the refresh after an action follow the tab shown.
    assert "?state=failed&amp;page=1" in html
    assert f'id="queue-refresh" hx-get="{escape(links.queue_list_url(ALPHA, "failed", 1, 25))}"' in html
    # An explicit state is kept; the overview's queue name links without one.
    assert current_tab((await client.get(links.queue_url(ALPHA) + "?state=waiting")).content.decode()) == (
        "waiting"
    )
    overview = (await client.get(dashboard_url())).content.decode()
    assert f'<a href="{links.queue_url(ALPHA)}">alpha</a>' in overview


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([], "waiting"),
        ([("send", {}, {"delay": 60_000})], "delayed"),
        ([("send", {}, {"delay": 60_000}), ("send", {}, {"priority": 3})], "prioritized"),
        ([("send", {}, {"priority": 3}), ("send", {}, {})], "waiting"),
    ],
)
async def test_without_failures_it_opens_on_the_first_state_holding_jobs(
    client: AsyncClient, redis_url: str, redis_client: Redis, jobs: list[Any], expected: str
) -> None:
    await add_jobs(redis_url, "quiet", [*jobs, ("send", {}, {"jobId": "gone"})])
    queue = Queue("quiet", {"connection": redis_url})
    try:
        await queue.remove("gone")  # an empty queue still exists (its meta and id keys stay)
    finally:
        await queue.close()
    html = (await client.get(links.queue_url(QueueRef("default", "bull", "quiet")))).content.decode()
    assert current_tab(html) == expected


async def test_completed_only_opens_on_completed(client: AsyncClient, redis_url: str) -> None:
    await build_failures(redis_url)
    html = (await client.get(links.queue_url(GAMMA))).content.decode()
    assert current_tab(html) == "completed"
    assert set(re.findall(r'data-job-id="([^"]+)"', html)) == {"g0", "g1"}


async def test_opening_a_queue_reads_counts_and_page_in_one_command(
    redis_url: str, redis_client: Redis
) -> None:
    await build_failures(redis_url)
    await redis_client.config_resetstat()
    before = await redis_client.info("commandstats")
    counts, page = await fetch_queue_opening(redis_client, ALPHA, 1, 25, ReadLimits())
    after = await redis_client.info("commandstats")

    def calls(stats: dict[str, Any], name: str) -> int:
        return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))

    # One EVALSHA (the info calls themselves aside); a cold script cache adds one SCRIPT LOAD and a retry.
    evals = calls(after, "evalsha") - calls(before, "evalsha")
    loads = (
        calls(after, "script|load")
        + calls(after, "script")
        - calls(before, "script|load")
        - calls(before, "script")
    )
    assert (evals, loads) in ((1, 0), (2, 1))
    assert page.state == "failed" and counts.counts["failed"] == 3 and len(page.jobs) == 3
    assert counts.failed_last_hour == 3


# ---------------------------------------------------------------------------------- live updates


async def test_the_live_overview_keeps_the_failure_cells_current(
    sockets: Callable[[str], LiveSocket],  # noqa: F811
    live: str,  # noqa: F811
    redis_client: Redis,
) -> None:
    await add_jobs(live, "alpha", [("send", {}, {"jobId": "x1"})])
    overview = sockets(socket_path())
    assert await overview.connect() == (True, None)
    hour_cell = f'id="{fragments.failure_dom_id(ALPHA, "failed-hour")}"'
    await overview.wait_for(hour_cell)  # the snapshot on joining
    await process(live, "alpha", fail, until=1)
    at = await newest_failed(redis_client, ALPHA)
    pushed = await overview.wait_for(lambda text: clock(at) in text and 'class="clock"' in text)
    assert re.search(rf"{re.escape(hour_cell)}[^>]*>\s*<a[^>]*>1</a>", pushed)


async def test_the_breadcrumb_state_is_a_live_part_of_the_job_page(
    client: AsyncClient,
    sockets: Callable[[str], LiveSocket],  # noqa: F811
    live: str,  # noqa: F811
) -> None:
    await add_jobs(live, "alpha", [("send", {}, {"jobId": "r1"})])
    await process(live, "alpha", fail, until=1)
    page = (await client.get(links.job_url(ALPHA, "r1"))).content.decode()
    assert re.search(
        r'<a id="job-crumb" href="[^"]*\?state=failed" data-crumb-state="failed" data-live>', page
    )
    socket = sockets(ws_path(links.job_url(ALPHA, "r1")))
    await socket.connect()
    await socket.wait_for('data-crumb-state="failed"')
    queue = Queue("alpha", {"connection": live})
    try:
        job = await queue.getJob("r1")
        await job.retry("failed")
    finally:
        await queue.close()
    pushed = await socket.wait_for('data-crumb-state="waiting"')
    assert f'href="{links.queue_url(ALPHA)}?state=waiting"' in pushed
