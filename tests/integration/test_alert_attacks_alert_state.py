"""Attacks on the lifecycle of firing alerts: rows that never resolve, a stale process re-firing what
another resolved, announcements lost or serialized behind a slow webhook."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from django.urls import reverse
from redis.asyncio import Redis

from dashboard.alerts import OUTBOX_AFTER
from dashboard.models import AlertState, AuditEntry
from dashboard.monitor import Monitor
from dashboard.registry import reset_directories
from tests.support.builders import add_jobs, process
from tests.support.dashboard import dashboard_settings
from tests.support.urls import dashboard_url


class SlowReceiver:
    """A webhook receiver that answers each POST after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                time.sleep(delay)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_receiver() -> Iterator[SlowReceiver]:
    hook = SlowReceiver(0.3)
    yield hook
    hook.close()


def alerting(redis_url: str, rules: list[dict[str, Any]], **extra: Any) -> Any:
    alerts = {"RULES": rules, "INTERVAL": 1, "EVALUATE": False, **extra}
    return override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS=alerts))


async def test_removing_a_rule_resolves_its_alerts(client: AsyncClient, redis_url: str) -> None:
    """The operator drops the rule of bull:sms: its alert is never resolved (no queue no longer covered
    is evaluated again), so its banner and its Prometheus sample stay for good."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "sms", [("send", {}, {})])
    both = [{"QUEUES": ["bull:email"], "BACKLOG": 1}, {"QUEUES": ["bull:sms"], "BACKLOG": 1}]
    with alerting(redis_url, both):
        reset_directories()
        monitor = Monitor()
        assert len((await monitor.tick()).announced) == 2
    with alerting(redis_url, both[:1]):
        reset_directories()
        await monitor.tick()
        await monitor.tick()
        page = (await client.get(dashboard_url("default/bull:sms/"))).content.decode()
        scrape = (await client.get(reverse("bullmq_dashboard:metrics"))).content.decode()
    assert 'data-alert="backlog"' not in page, "bull:sms still shows its alert banner"
    assert 'bullmq_dashboard_alert_firing{queue="sms"' not in scrape
    assert not await AlertState.objects.filter(queue="bull:sms").aexists()


async def test_turning_alerts_off_clears_the_firing_metric(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with alerting(redis_url, [{"BACKLOG": 1}]):
        reset_directories()
        assert (await Monitor().tick()).announced
    with alerting(redis_url, []):
        reset_directories()
        scrape = (await client.get(reverse("bullmq_dashboard:metrics"))).content.decode()
    assert "bullmq_dashboard_alert_firing{" not in scrape, "no rule is set, yet an alert fires"


async def test_a_process_that_cannot_read_does_not_fire_again_what_another_resolved(
    redis_url: str, transactional_db: None
) -> None:
    """Two processes; the queue recovers; B resolves the alert (row deleted, "resolved" announced). A,
    whose Redis read fails this tick, still holds the alert as firing in its book, passes it to
    reconcile, re-creates the row and announces "fired" again for a queue that is fine."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with alerting(redis_url, [{"BACKLOG": 1}]):
        reset_directories()
        a, b = Monitor(), Monitor()
        assert (await a.tick()).announced
        await b.tick()

        async def work(job: Any, token: str) -> None:
            return None

        await process(redis_url, "email", work, until=1)
        assert [x.firing for x in (await b.tick()).announced] == [False]
        down = dashboard_settings(
            "redis://127.0.0.1:1/0", ALERTS={"RULES": [{"BACKLOG": 1}], "EVALUATE": False}
        )
    with override_settings(BULLMQ_DASHBOARD={**down, "CONNECT_TIMEOUT": 0.5}):
        tick = await a.tick()
    assert not tick.announced, [(x.queue.key, x.condition, x.firing) for x in tick.announced]
    assert await AuditEntry.objects.filter(action="alert_fired").acount() == 1


async def test_many_firing_alerts_do_not_stall_the_monitor(
    redis_url: str, redis_client: Redis, transactional_db: None, slow_receiver: SlowReceiver
) -> None:
    """A job author makes 30 queues in the prefix (a meta hash and a wait list each); the docs' rule
    `{"QUEUES": ["*"], "BACKLOG": ...}` covers them. Each announcement posts the webhook in turn,
    awaited one by one: a tick takes N times the webhook's time (5 s timeout: 10,000 queues are 14 h),
    during which no alert of any queue is evaluated. No cap, no digest."""
    pipe = redis_client.pipeline(transaction=False)
    for index in range(30):
        pipe.hset(f"bull:fake{index}:meta", "opts.maxLenEvents", "10000")
        pipe.rpush(f"bull:fake{index}:wait", "1")
    await pipe.execute()
    with alerting(redis_url, [{"QUEUES": ["*"], "BACKLOG": 1}], WEBHOOK_URL=slow_receiver.url):
        reset_directories()
        started = time.monotonic()
        tick = await Monitor().tick()
        took = time.monotonic() - started
    assert len(tick.announced) == 30
    assert took < 5, f"one tick took {took:.1f} s ({len(slow_receiver.received)} webhook posts, one by one)"


async def test_a_tick_stopped_while_announcing_loses_no_announcement(
    redis_url: str, transactional_db: None, slow_receiver: SlowReceiver
) -> None:
    """Rows are inserted first, announcements made after: a process stopped between the two (a deploy,
    a restart while the webhook is slow) leaves transitions that another process announces later."""
    for name in ("email", "sms", "push"):
        await add_jobs(redis_url, name, [("send", {}, {})])
    with alerting(redis_url, [{"BACKLOG": 1}], WEBHOOK_URL=slow_receiver.url, WEBHOOK_TIMEOUT=5):
        reset_directories()
        task = asyncio.ensure_future(Monitor().tick())
        while not slow_receiver.received:  # noqa: ASYNC110 (a thread fills it)
            await asyncio.sleep(0.01)
        task.cancel()  # the process stops
        with pytest.raises(asyncio.CancelledError):
            await task
        # A new process takes over; it claims the transitions nobody announced once OUTBOX_AFTER passed.
        await Monitor().tick()
        assert await AuditEntry.objects.filter(action="alert_fired").acount() < 3
        later = int((time.time() + OUTBOX_AFTER.total_seconds() + 60) * 1000)
        await Monitor().tick(now=later)
        await asyncio.sleep(0.5)
    assert await AlertState.objects.acount() == 3
    audited = await AuditEntry.objects.filter(action="alert_fired").acount()
    assert audited == 3, f"3 alerts fire, {audited} fired entries, {len(slow_receiver.received)} posts"


async def test_a_long_queue_name_does_not_overflow_the_alert_row(
    redis_url: str, transactional_db: None
) -> None:
    """AlertState.queue is a CharField(max_length=500); the key is stored uncut. SQLite keeps it, but
    PostgreSQL (and MySQL in strict mode) raise DataError, which _reconcile does not catch (only
    IntegrityError): every tick fails, no alert of any queue is evaluated while the queue exists."""
    name = "q" * 600
    await add_jobs(redis_url, name, [("send", {}, {})])
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with alerting(redis_url, [{"BACKLOG": 1}]):
        reset_directories()
        await Monitor().tick()
    limit = AlertState._meta.get_field("queue").max_length
    assert limit is not None
    longest = max([len(row.queue) async for row in AlertState.objects.all()])
    assert longest <= limit, f"a {longest}-character value in a varchar({limit})"


async def test_a_long_queue_name_does_not_stop_every_alert(redis_url: str, transactional_db: None) -> None:
    """Passes on SQLite; on PostgreSQL (tried by hand: DATABASES with psycopg) the DataError of the long
    name's row fails the whole tick: bull:email's alert never fires either."""
    await add_jobs(redis_url, "q" * 600, [("send", {}, {})])
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with alerting(redis_url, [{"BACKLOG": 1}]):
        reset_directories()
        await Monitor().tick()
    assert await AlertState.objects.filter(queue="bull:email").aexists()


async def test_alerts_of_deleted_queues_resolve_and_are_not_kept_forever(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    """A job author churns queues: creates 50 (meta + wait), lets a tick fire them, deletes them. Their
    rows are never deleted (a gone queue "keeps its state"), no "resolved" is ever posted, the process's
    AlertBook keeps them, and every later tick tries (and fails) to INSERT each again. Repeated, the
    table, the book and the per-tick work grow without bound; every page view reads every row."""
    pipe = redis_client.pipeline(transaction=False)
    for index in range(50):
        pipe.hset(f"bull:churn{index}:meta", "opts.maxLenEvents", "10000")
        pipe.rpush(f"bull:churn{index}:wait", "1")
    await pipe.execute()
    with alerting(redis_url, [{"QUEUES": ["*"], "BACKLOG": 1}]):
        reset_directories()
        monitor = Monitor()
        assert len((await monitor.tick()).announced) == 50
        await redis_client.flushdb()
        reset_directories()  # the next listing no longer has them
        await monitor.tick()
        await monitor.tick()
    kept = await AlertState.objects.acount()
    resolved = await AuditEntry.objects.filter(action="alert_resolved").acount()
    assert (kept, resolved, len(monitor.book.firing())) == (0, 50, 0), (
        kept,
        resolved,
        len(monitor.book.firing()),
    )


async def test_queues_no_rule_covers_do_not_push_covered_ones_out_of_the_evaluation(
    redis_url: str, redis_client: Redis, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Monitor.tick cuts the listing at MAX_QUEUES (10,000) *before* matching the rules, in key order: a
    job author who writes 10,000 meta hashes under a prefix that sorts first (or names that sort
    before the real ones) blinds every rule, even `{"QUEUES": ["bull:payments"]}`. (MAX_QUEUES is
    lowered here to keep the test small; nothing else depends on its size.)"""
    monkeypatch.setattr("dashboard.monitor.MAX_QUEUES", 5)
    await add_jobs(redis_url, "payments", [("pay", {}, {})])
    pipe = redis_client.pipeline(transaction=False)
    for index in range(5):
        pipe.hset(f"aaa:junk{index}:meta", "opts.maxLenEvents", "10000")
    await pipe.execute()
    with alerting(redis_url, [{"QUEUES": ["bull:payments"], "BACKLOG": 1}]):
        reset_directories()
        tick = await Monitor().tick()
    assert [f.queue.key for f in tick.firing] == ["bull:payments"], [q.key for q in tick.evaluated]


async def test_a_queue_name_cannot_add_lines_to_the_webhook_text(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    """Slack renders the `text` field's newlines; slack_escape only escapes &, < and >. A queue whose
    name holds a newline makes its FIRING message show a forged line of its own, e.g. that another
    queue resolved. (The dashboard's own dialogs use queues.parsing.plain_text against exactly this.)"""
    from tests.integration.test_alerts import Receiver

    name = "x\n✅ RESOLVED bull.payments (default): back to normal"
    await redis_client.hset(f"bull:{name}:meta", "opts.maxLenEvents", "10000")
    await redis_client.rpush(f"bull:{name}:wait", "1")
    hook = Receiver()
    try:
        with alerting(redis_url, [{"BACKLOG": 1}], WEBHOOK_URL=hook.url):
            reset_directories()
            await Monitor().tick()
    finally:
        hook.close()
    [body] = hook.received
    assert "\n" not in body["text"], body["text"]
