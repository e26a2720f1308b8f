"""Queue health end to end over a real Redis: each cause built with the Python `bullmq` package (paused,
global concurrency with a busy worker, rate limits, no workers, stalls, deduplication, a parent waiting
on a stuck child queue), judged in the API, on the overview (the Health column, `?attention=1`), on the
queue page (the panel), in the scrape and by the alert rules; hostile meta values; and what a page view
costs Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bullmq import FlowProducer, Queue, Worker
from django.test import AsyncClient, override_settings
from django.urls import reverse
from redis.asyncio import Redis

from dashboard import links
from dashboard.health import get_health
from dashboard.live import fragments
from dashboard.monitor import Monitor, get_monitor
from dashboard.registry import reset_directories
from queues.counts import now_ms
from queues.health import ReasonCode
from queues.models import QueueRef
from queues.signals import fetch_signals
from tests.integration.test_metrics_endpoint import samples, value
from tests.support.builders import add_jobs, pause, process
from tests.support.dashboard import dashboard_settings
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of, count_cell
from tests.support.urls import dashboard_url, socket_path

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")
SMS = QueueRef("default", "bull", "sms")
MB = 1024 * 1024


def health_url(queue: QueueRef) -> str:
    return reverse("bullmq_dashboard:api-queue-health", args=[queue.connection, queue.key])


async def health(client: AsyncClient, queue: QueueRef) -> dict[str, Any]:
    response = await client.get(health_url(queue))
    assert response.status_code == 200, response.content
    return response.json()


def reason(answer: dict[str, Any], code: str) -> dict[str, Any]:
    found = [each for each in answer["reasons"] if each["code"] == code]
    assert found, answer
    return found[0]


@contextlib.asynccontextmanager
async def bull_queue(url: str, name: str) -> AsyncIterator[Queue]:
    queue = Queue(name, {"connection": url})
    try:
        yield queue
    finally:
        await queue.close()


@contextlib.asynccontextmanager
async def busy_worker(url: str, name: str, **opts: Any) -> AsyncIterator[asyncio.Event]:
    """A worker whose jobs run until the yielded event is set."""
    release = asyncio.Event()
    settled = asyncio.Event()
    started = finished = 0

    async def work(job: Any, token: str) -> str:
        nonlocal started
        started += 1
        settled.clear()
        await release.wait()
        return "ok"

    def done(*_: Any) -> None:
        nonlocal finished
        finished += 1
        if finished >= started:
            settled.set()

    worker = Worker(name, work, {"connection": url, "autorun": False, **opts})
    worker.on("completed", done)
    worker.on("failed", done)
    worker.on("error", done)
    runner = asyncio.ensure_future(worker.run())
    try:
        yield release
    finally:
        release.set()
        # Closed once the jobs it took have finished and it waits for the next: closing the Python
        # worker while it finishes one or fetches leaves a connection of its pool open.
        if finished < started:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), 5)
        await asyncio.sleep(0.2)
        await worker.close()
        await runner


async def until(check: Any, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------------------------------ the API


async def test_the_api_answers_the_shape_and_a_paused_queue_is_stuck(
    client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}), ("send", {}, {})])
    await pause(redis_url, "email")
    listed = (await client.get(dashboard_url("api/queues/"))).json()["queues"]
    assert listed[0]["health_url"] == health_url(EMAIL)
    detail = (await client.get(links.queue_api_url(EMAIL))).json()
    assert detail["health_url"] == health_url(EMAIL)
    answer = await health(client, EMAIL)
    assert set(answer) == {"verdict", "reasons", "checked_at"}
    assert answer["verdict"] == "stuck"
    assert abs(answer["checked_at"] - now_ms()) < 60_000
    paused = reason(answer, "paused")
    assert set(paused) == {"code", "message", "since", "value"}
    assert paused["message"] == "paused with 2 jobs waiting" and paused["value"] == 2
    assert isinstance(paused["since"], int)
    # No worker either: said, but not yet for long.
    assert reason(answer, "no_workers")["message"] == "no worker connected"
    assert answer["reasons"][0]["code"] == "paused"  # the stuck reason first
    async with bull_queue(redis_url, "email") as queue:
        await queue.resume()
    resumed = await health(client, EMAIL)  # read now: the API keeps nothing
    assert "paused" not in {each["code"] for each in resumed["reasons"]}


async def test_unknown_queue_and_permissions_as_the_other_endpoints(
    client: AsyncClient, anonymous_client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    assert (await client.get(health_url(QueueRef("default", "bull", "nope")))).status_code == 404
    assert (await anonymous_client.get(health_url(EMAIL))).status_code == 401


async def test_no_worker_for_long_is_stuck(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    first = await health(client, EMAIL)
    assert first["verdict"] == "degraded" and reason(first, "no_workers")["message"] == "no worker connected"
    # This process first saw the queue without workers 12 minutes ago.
    memory = get_health().memory
    memory.since(EMAIL, ReasonCode.NO_WORKERS, False, 0)
    memory.since(EMAIL, ReasonCode.NO_WORKERS, True, now_ms() - 12 * 60_000)
    later = await health(client, EMAIL)
    assert later["verdict"] == "stuck"
    assert reason(later, "no_workers")["message"] == "no worker connected for 12 min"
    async with busy_worker(redis_url, "email"):
        await until(lambda: _verdict_is(client, EMAIL, "healthy"))


async def _verdict_is(client: AsyncClient, queue: QueueRef, wanted: str) -> bool:
    return (await health(client, queue))["verdict"] == wanted


async def test_at_the_global_concurrency_with_a_busy_worker(client: AsyncClient, redis_url: str) -> None:
    async with bull_queue(redis_url, "email") as queue:
        await queue.setGlobalConcurrency(1)
        for index in range(3):
            await queue.add("send", {"i": index})
        async with busy_worker(redis_url, "email", concurrency=3):
            await until(lambda: _active(redis_url, 1))
            answer = await health(client, EMAIL)
            assert answer["verdict"] == "degraded"
            capped = reason(answer, "at_capacity")
            assert capped["message"] == "at its global concurrency of 1 with 1 active"
            assert capped["value"] == 1
            await queue.setGlobalConcurrency(0)  # lets no job start: stuck at once
            assert (await health(client, EMAIL))["verdict"] == "stuck"
            await queue.removeGlobalConcurrency()
            assert "at_capacity" not in {each["code"] for each in (await health(client, EMAIL))["reasons"]}


async def _active(url: str, count: int) -> bool:
    async with bull_queue(url, "email") as queue:
        return int((await queue.getJobCounts("active"))["active"]) == count


async def test_rate_limits_held_briefly_and_for_long(client: AsyncClient, redis_url: str) -> None:
    async with bull_queue(redis_url, "email") as queue:
        await queue.setGlobalRateLimit(1, 60_000)
        for index in range(3):
            await queue.add("send", {"i": index})
        # BullMQ's own moveToActive counts the first job in the limiter and holds the next ones.
        async with busy_worker(redis_url, "email") as release:
            await until(lambda: _active(redis_url, 1))
            release.set()
            await until(lambda: _active(redis_url, 0))
            answer = await health(client, EMAIL)
        limited = reason(answer, "rate_limited")
        assert answer["verdict"] in ("degraded", "stuck")  # no worker now: degraded, or stuck
        assert limited["message"].startswith("rate-limited for ") and limited["message"].endswith(" s more")
        assert 0 < limited["value"] <= 60_000
        assert abs(limited["value"] - await queue.getRateLimitTtl()) < 5_000
        # rateLimit() for an hour: nothing moves for long.
        await queue.rateLimit(3_600_000)
        held = await health(client, EMAIL)
        assert held["verdict"] == "stuck"
        assert reason(held, "rate_limited")["message"] == "rate-limited for 60 min more"
        await queue.removeRateLimitKey()
        assert "rate_limited" not in {each["code"] for each in (await health(client, EMAIL))["reasons"]}


async def test_stalled_and_deduplicated_jobs_in_the_window(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"deduplication": {"id": "same"}}) for _ in range(3)])
    # A worker that loses its lock (it never renews it) while the stall checker runs: BullMQ moves the
    # job back to wait with a `stalled` event.
    async with busy_worker(
        redis_url, "email", lockDuration=300, lockRenewTime=600_000, stalledInterval=200, maxStalledCount=5
    ):
        await until(lambda: _stalled_events(redis_url), within=15)
    answer = await health(client, EMAIL)
    stalled = reason(answer, "stalled")
    assert stalled["message"].endswith("stalled in the last 10 min") and stalled["value"] >= 1
    deduplicated = reason(answer, "deduplicated")
    assert deduplicated["message"] == "2 jobs deduplicated in the last 10 min"
    assert deduplicated["value"] == 2
    assert answer["verdict"] in ("degraded", "stuck")


async def _stalled_events(url: str) -> bool:
    client = Redis.from_url(url)
    try:
        entries = await client.xrange("bull:email:events")
    finally:
        await client.aclose()
    return any(fields.get(b"event") == b"stalled" for _id, fields in entries)


async def test_parents_waiting_on_a_stuck_child_queue(client: AsyncClient, redis_url: str) -> None:
    flow = FlowProducer({"connection": redis_url})
    try:
        await flow.add(
            {
                "name": "report",
                "queueName": "reports",
                "data": {},
                "children": [{"name": "page", "queueName": "pages", "data": {"p": i}} for i in range(2)],
            }
        )
    finally:
        await flow.close()
    reports, pages = QueueRef("default", "bull", "reports"), QueueRef("default", "bull", "pages")
    await pause(redis_url, "pages")
    await client.get(dashboard_url())  # discovery sees both queues
    answer = await health(client, reports)
    assert answer["verdict"] == "stuck"
    children = reason(answer, "children_stuck")
    assert children["message"] == "waiting on children in bull:pages which is stuck"
    assert children["value"] == "bull:pages"
    assert (await health(client, pages))["verdict"] == "stuck"
    async with bull_queue(redis_url, "pages") as queue:
        await queue.resume()
    assert "children_stuck" not in {each["code"] for each in (await health(client, reports))["reasons"]}


# ---------------------------------------------------------------------------------------- the pages


async def test_overview_health_column_and_needs_attention_filter(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await pause(redis_url, "email")
    await add_jobs(redis_url, "sms", [("send", {}, {"delay": 60_000})])
    async with busy_worker(redis_url, "sms"):
        await until(lambda: _workers(redis_url, "sms"))
        page = (await client.get(dashboard_url())).content.decode()
        assert f'id="{fragments.health_dom_id(EMAIL)}"' in page and 'data-health="stuck"' in page
        assert "paused with 1 job waiting" in page
        assert f'id="{fragments.health_dom_id(SMS)}"' in page and 'data-health="idle"' in page
        attention = (await client.get(dashboard_url("?attention=1"))).content.decode()
        assert 'data-queue="bull:email"' in attention and 'data-queue="bull:sms"' not in attention
        assert 'name="attention" value="1"' in attention and 'aria-current="true"' in attention
        partial = await client.get(dashboard_url("?attention=1&q=sms"), headers={"HX-Request": "true"})
        assert b"data-attention-empty" in partial.content and b"No queue needs attention" in partial.content
    assert (await client.get(dashboard_url("?attention=2"))).status_code == 400


async def _workers(url: str, name: str) -> bool:
    async with bull_queue(url, name) as queue:
        return int(await queue.get_workers_count()) > 0


async def test_queue_page_panel_lists_each_reason(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}), ("send", {}, {})])
    await pause(redis_url, "email")
    page = (await client.get(links.queue_url(EMAIL))).content.decode()
    assert f'id="{fragments.health_panel_dom_id(EMAIL)}"' in page
    assert 'data-reason="paused"' in page and "paused with 2 jobs waiting" in page
    assert 'data-reason="no_workers"' in page and "no worker connected" in page
    body = await client.get(links.queue_url(EMAIL) + "?state=waiting", headers={"HX-Request": "true"})
    assert b'data-reason="paused"' in body.content  # the body swapped after an action shows it too


async def test_hostile_meta_values_are_not_copied_and_say_so(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await fetch_signals(redis_client, [EMAIL])  # loads the script
    await redis_client.hset("bull:email:meta", mapping={"concurrency": "9" * (10 * MB), "max": "many"})
    await redis_client.set("bull:email:limiter", "x" * (10 * MB), px=60_000)
    before = await _evalsha_usec(redis_client)
    (row,) = await fetch_signals(redis_client, [EMAIL])
    spent_ms = (await _evalsha_usec(redis_client) - before) / 1000
    assert spent_ms < 20, f"one signals read kept Redis busy for {spent_ms:.0f} ms"
    assert row.limits.concurrency is None and row.limits.rate_max is None and row.limits.limiter_count is None
    assert {name for name, _what in row.limits.problems} == {"concurrency", "max", "limiter"}
    answer = await health(client, EMAIL)
    messages = [each["message"] for each in answer["reasons"] if each["code"] == "broken"]
    assert any("concurrency = 10485760 bytes, too long for a number" in each for each in messages)
    assert any("max = 'many' is not a number" in each for each in messages)
    assert len((await client.get(health_url(EMAIL))).content) < 10_000


async def test_hostile_waiting_children_are_sampled_within_bounds(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """A huge parent id in waiting-children, or a huge child key in a parent's dependencies, is never
    copied: the sample leaves that zset or set out."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await fetch_signals(redis_client, [EMAIL])  # loads the script
    await redis_client.zadd("bull:email:waiting-children", {"x" * (10 * MB): 1, "p1": 2})
    await redis_client.sadd("bull:email:p1:dependencies", "bull:sms:1", "bull:sms:" + "y" * (10 * MB))
    before = await _evalsha_usec(redis_client)
    (row,) = await fetch_signals(redis_client, [EMAIL])
    spent_ms = (await _evalsha_usec(redis_client) - before) / 1000
    assert spent_ms < 20, f"one signals read kept Redis busy for {spent_ms:.0f} ms"
    assert row.waiting_on == ()
    await redis_client.zrem("bull:email:waiting-children", "x" * (10 * MB))
    (row,) = await fetch_signals(redis_client, [EMAIL])
    assert row.waiting_on == ()  # the dependencies set is huge on average: not read either
    await redis_client.srem("bull:email:p1:dependencies", "bull:sms:" + "y" * (10 * MB))
    (row,) = await fetch_signals(redis_client, [EMAIL])
    assert row.waiting_on == ("bull:sms:1",)


async def _evalsha_usec(client: Redis) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("usec", 0))


async def test_a_broken_queue_answers_502_and_others_are_judged(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await redis_client.delete("bull:email:wait")
    await redis_client.hset("bull:email:wait", "x", "y")  # BullMQ's scripts fail on it
    answer = await health(client, EMAIL)
    assert answer["verdict"] == "stuck" and reason(answer, "broken")


# ---------------------------------------------------------------------------- scrape, alerts, live


async def test_the_scrape_exports_the_verdicts_and_reasons(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await pause(redis_url, "email")
    await add_jobs(redis_url, "sms", [("send", {}, {"delay": 60_000})])
    found = samples((await client.get(reverse("bullmq_dashboard:metrics"))).content.decode())
    email = {"queue": "email", "prefix": "bull", "connection": "default"}
    sms = {"queue": "sms", "prefix": "bull", "connection": "default"}
    assert value(found, "bullmq_dashboard_queue_health", verdict="stuck", **email) == 1
    assert value(found, "bullmq_dashboard_queue_health", verdict="healthy", **email) == 0
    assert value(found, "bullmq_dashboard_health_reason", code="paused", **email) == 1
    assert value(found, "bullmq_dashboard_queue_health", verdict="degraded", **sms) == 1
    assert value(found, "bullmq_dashboard_health_reason", code="no_workers", **sms) == 1
    assert ("bullmq_dashboard_health_reason", tuple(sorted({**sms, "code": "paused"}.items()))) not in found


async def test_alert_rules_fire_on_the_verdicts_reasons(redis_url: str, transactional_db: None) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await pause(redis_url, "email")
    rules = [{"QUEUES": ["bull:email"], "PAUSED": True, "STUCK": True, "RATE_LIMITED": True}]
    alerts = {"RULES": rules, "INTERVAL": 1, "EVALUATE": False}
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS=alerts)):
        reset_directories()
        tick = await Monitor().tick()
        firing = {str(finding.condition): str(finding.message) for finding in tick.firing}
        assert firing == {"paused": "paused with 1 job waiting", "stuck": "stuck: paused with 1 job waiting"}
        async with bull_queue(redis_url, "email") as queue:
            await queue.resume()
        assert (await Monitor().tick()).firing == []


async def test_health_is_pushed_live_when_it_changes(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    settings = dashboard_settings(redis_url, LIVE=FAST, HEALTH={"CACHE_SECONDS": 0})
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        overview = LiveSocket(socket_path(), cookie_of(client))
        queue_page = LiveSocket(socket_path("default/bull:email/"), cookie_of(client))
        try:
            assert (await overview.connect())[0] and (await queue_page.connect())[0]
            cell = fragments.health_dom_id(EMAIL)
            await overview.wait_for(lambda text: f'id="{cell}"' in text and 'data-health="degraded"' in text)
            await pause(redis_url, "email")
            await overview.wait_for(lambda text: f'id="{cell}"' in text and 'data-health="stuck"' in text)
            panel = fragments.health_panel_dom_id(EMAIL)
            await queue_page.wait_for(lambda text: f'id="{panel}"' in text and 'data-reason="paused"' in text)
        finally:
            await overview.close()
            await queue_page.close()


async def test_a_needs_attention_page_says_when_another_queue_comes_to_need_it(
    client: AsyncClient, redis_url: str
) -> None:
    """The filtered page's socket passes on only the cells of the queues it lists, and says once that
    another queue now needs attention (it would be listed on a reload)."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await pause(redis_url, "email")  # stuck: listed
    await add_jobs(redis_url, "sms", [("send", {}, {})])

    async def work(job: Any, token: str) -> str:
        return "ok"

    await process(redis_url, "sms", work, until=1)  # idle: not listed
    settings = dashboard_settings(redis_url, LIVE=FAST, HEALTH={"CACHE_SECONDS": 0})
    with override_settings(CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=settings):
        reset_directories()
        page = (await client.get(dashboard_url(), {"attention": "1"})).content.decode()
        assert fragments.queue_dom_id(EMAIL) in page and fragments.queue_dom_id(SMS) not in page
        socket_url = page.split('ws-connect="', 1)[1].split('"', 1)[0]
        assert "attention=1" in socket_url and 'id="live-attention-more"' in page
        filtered = LiveSocket(f"{socket_path()}?attention=1", cookie_of(client))
        every = LiveSocket(socket_path(), cookie_of(client))
        try:
            assert (await filtered.connect())[0] and (await every.connect())[0]
            email_cell = fragments.health_dom_id(EMAIL)
            await filtered.wait_for(lambda text: f'id="{email_cell}"' in text)
            await add_jobs(redis_url, "sms", [("send", {}, {})])  # waiting, no worker: degraded
            sms_cell = fragments.health_dom_id(SMS)
            await every.wait_for(lambda text: f'id="{sms_cell}"' in text and 'data-health="degraded"' in text)
            note = await filtered.wait_for('id="live-attention-more"')
            assert "Another queue came to need attention" in note and " hidden" not in note
            assert not any(fragments.queue_dom_id(SMS) in text for text in filtered.received)
            await add_jobs(redis_url, "sms", [("send", {}, {})])
            await every.wait_for(count_cell(SMS, "waiting", 2))
            assert sum('id="live-attention-more"' in text for text in filtered.received) == 1  # said once
        finally:
            await filtered.close()
            await every.close()


# ------------------------------------------------------------------------------------------ the cost


async def test_cost_of_overview_views(client: AsyncClient, redis_url: str, redis_client: Redis) -> None:
    """A view reads each row's signals once (one pipeline) and one CLIENT LIST; views within
    CACHE_SECONDS read neither again."""
    for index in range(20):
        await add_jobs(redis_url, f"q{index}", [("send", {}, {})])
    await client.get(dashboard_url())  # discovery, scripts loaded, windows started
    get_health().forget()
    before = await redis_client.info("commandstats")
    await client.get(dashboard_url())
    middle = await redis_client.info("commandstats")
    await client.get(dashboard_url())
    after = await redis_client.info("commandstats")

    def calls(stats: dict[str, Any], name: str) -> int:
        return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))

    assert calls(middle, "client|list") - calls(before, "client|list") == 1
    # 20 signals scripts beside the overview's own counts (20 more, unless the live watcher had them).
    assert 20 <= calls(middle, "evalsha") - calls(before, "evalsha") <= 41
    assert calls(after, "client|list") == calls(middle, "client|list")
    assert calls(after, "evalsha") - calls(middle, "evalsha") <= 21  # the counts only, if at all


async def test_pages_count_events_from_the_monitors_windows_when_it_runs(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    """With rules watching the verdict, the alert monitor keeps the events windows and the pages read
    them instead of tallying the streams again."""
    await add_jobs(redis_url, "email", [("send", {}, {"deduplication": {"id": "same"}}) for _ in range(2)])
    alerts = {"RULES": [{"QUEUES": ["bull:email"], "STUCK": True}], "INTERVAL": 1}
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS=alerts)):
        reset_directories()
        monitor = get_monitor()
        monitor.start()
        try:
            await until(lambda: _judged_by(monitor))
            service = get_health()
            service.forget()
            judged = await service.read("default", [EMAIL])
            assert EMAIL not in service.windows  # nothing tallied here
            verdict = judged.verdicts[EMAIL]
            assert verdict is not None
            assert str(verdict.reason(ReasonCode.DEDUPLICATED).message) == (  # type: ignore[union-attr]
                "1 job deduplicated in the last 10 min"
            )
        finally:
            await monitor.stop()


async def _judged_by(monitor: Monitor) -> bool:
    return EMAIL in monitor.verdicts and EMAIL in monitor.windows
