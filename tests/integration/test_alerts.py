"""Alerts end to end: rules in settings, the monitor's evaluation over a real Redis, the firing rows,
banners on the pages, the audit entries and the Slack-compatible webhook."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import AsyncClient, override_settings
from django.urls import reverse
from redis.asyncio import Redis

from dashboard.alerts import slack_escape, webhook_payload
from dashboard.models import AlertState, AuditEntry
from dashboard.monitor import Monitor
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.builders import add_jobs, process
from tests.support.dashboard import dashboard_settings
from tests.support.urls import dashboard_url

pytestmark = pytest.mark.host_compatible

HOSTILE = "<!channel>&<b>x"


class Receiver:
    """A local HTTP server that keeps the JSON bodies posted to it."""

    def __init__(self, status: int = 200) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def alerting(redis_url: str, rules: list[dict[str, Any]], **extra: Any) -> Any:
    # The tests tick their own monitors; page views must not start the process's own.
    alerts = {"RULES": rules, "INTERVAL": 1, "EVALUATE": False, **extra}
    return override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS=alerts))


async def test_a_backlog_alert_fires_once_shows_and_resolves(
    client: AsyncClient, redis_url: str, redis_client: Redis, receiver: Receiver
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}) for _ in range(3)])
    await add_jobs(redis_url, "sms", [("send", {}, {})])
    rules = [{"QUEUES": ["bull:*"], "BACKLOG": 3}]
    with alerting(redis_url, rules, WEBHOOK_URL=receiver.url, BASE_URL="https://ops.example.com"):
        reset_directories()
        first, second = Monitor(), Monitor()  # two processes evaluating the same queues
        tick = await first.tick(now=1_000_000)
        assert [(f.queue.name, f.condition) for f in tick.firing] == [("email", "backlog")]
        assert [a.firing for a in tick.announced] == [True]
        again = await second.tick(now=1_001_000)
        assert again.firing and not again.announced  # the other process already announced it
        row = await AlertState.objects.aget()
        assert (row.queue, row.condition, row.value) == ("bull:email", "backlog", 3)
        assert [body["alert"]["status"] for body in receiver.received] == ["firing"]
        text = receiver.received[0]["text"]
        assert text.startswith(":rotating_light: FIRING bull:email (default): 3 jobs waiting (threshold 3)")
        assert "<https://ops.example.com" in text and "|open>" in text
        entry = await AuditEntry.objects.aget(action="alert_fired")
        assert (entry.username, entry.queue, entry.result) == ("alerts", "bull:email", "done")
        assert entry.params["webhook"] == "sent (200)"

        overview = (await client.get(dashboard_url())).content.decode()
        assert 'data-alerts="1"' in overview and "3 jobs waiting (threshold 3)" in overview
        queue_page = (await client.get(dashboard_url("default/bull:email/"))).content.decode()
        assert 'data-alert="backlog"' in queue_page
        other_page = (await client.get(dashboard_url("default/bull:sms/"))).content.decode()
        assert "data-alerts=" not in other_page

        async def work(job: Any, token: str) -> None:
            return None

        await process(redis_url, "email", work, until=3)
        resolved = await first.tick(now=1_002_000)
        assert [a.firing for a in resolved.announced] == [False]
        assert not await AlertState.objects.aexists()
        assert await AuditEntry.objects.filter(action="alert_resolved").acount() == 1
        assert [body["alert"]["status"] for body in receiver.received] == ["firing", "resolved"]
        assert "data-alerts=" not in (await client.get(dashboard_url())).content.decode()
        assert not (await second.tick(now=1_003_000)).announced


async def test_for_holds_an_alert_pending(redis_url: str, transactional_db: None) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with alerting(redis_url, [{"BACKLOG": 1, "FOR": "1m"}]):
        reset_directories()
        monitor = Monitor()
        assert not (await monitor.tick(now=0)).announced
        assert not (await monitor.tick(now=59_000)).announced
        assert [a.condition for a in (await monitor.tick(now=60_000)).announced] == ["backlog"]


async def test_failure_rate_and_stalls_from_the_events_stream(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    await add_jobs(
        redis_url,
        "jobs",
        [("run", {"n": n}, {"jobId": f"j{n}", "removeOnComplete": True}) for n in range(10)],
    )

    async def work(job: Any, token: str) -> None:
        if int(job.data["n"]) < 4:
            raise ValueError("broken")

    await process(redis_url, "jobs", work, until=10)
    # removeOnComplete: the completed set is empty, so the rate must come from the events.
    assert await redis_client.zcard("bull:jobs:completed") == 0
    with alerting(redis_url, [{"FAILURE_RATE": 0.4, "MIN_FINISHED": 10, "STALLED": 1, "WINDOW": "1h"}]):
        reset_directories()
        monitor = Monitor()
        tick = await monitor.tick()
        assert [(f.condition, f.value) for f in tick.firing] == [("failure_rate", 0.4)]
        # A stalled event (as the stall checker writes it) fires the stall alert on the next tick,
        # read from the stream after where the previous tick stopped.
        await redis_client.xadd("bull:jobs:events", {"event": "stalled", "jobId": "j9"})
        tick = await monitor.tick()
        assert sorted(f.condition for f in tick.firing) == ["failure_rate", "stalled"]


async def test_a_tick_reads_only_the_new_events_and_catches_up_when_capped(
    redis_url: str, redis_client: Redis, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import queues.signals as signals_module

    await add_jobs(redis_url, "jobs", [("run", {}, {})])
    for _ in range(5):
        await redis_client.xadd(
            "bull:jobs:events", {"event": "failed", "jobId": "x", "failedReason": "r" * 1000}
        )
    monkeypatch.setattr(signals_module, "TALLY_ENTRIES", 2)
    original = signals_module.fetch_signals

    async def small_steps(*args: Any, **kwargs: Any) -> Any:
        return await original(*args, **{**kwargs, "tally_entries": 2})

    monkeypatch.setattr("dashboard.monitor.fetch_signals", small_steps)
    with alerting(redis_url, [{"FAILURE_RATE": 1, "MIN_FINISHED": 5, "WINDOW": "1h"}]):
        reset_directories()
        monitor = Monitor()
        queue = QueueRef("default", "bull", "jobs")
        counted = [0]
        while counted[-1] < 5 and len(counted) < 10:
            tick = await monitor.tick()
            counted.append(monitor.windows[queue].totals(0)[1])
            assert monitor.windows[queue].behind or counted[-1] == 5
        # At most two events a tick: behind until the last tick has counted all five, then it fires.
        assert len(counted) >= 4 and all(0 <= b - a <= 2 for a, b in itertools.pairwise(counted))
        assert [f.condition for f in tick.firing] == ["failure_rate"]


async def test_a_huge_failed_event_is_not_copied_past_the_budget(
    redis_url: str, redis_client: Redis, transactional_db: None
) -> None:
    from queues.signals import fetch_signals

    queue = QueueRef("default", "bull", "jobs")
    await add_jobs(redis_url, "jobs", [("run", {}, {})])
    for _ in range(3):
        await redis_client.xadd(
            "bull:jobs:events", {"event": "failed", "jobId": "x", "failedReason": "r" * 3_000_000}
        )
    [row] = await fetch_signals(redis_client, [queue], tally_after={queue: "0-0"}, tally_bytes=1_000_000)
    assert row.tally is not None and row.tally.capped
    assert sum(minute.failed for minute in row.tally.minutes) == 1  # one entry over the budget, then stop
    await redis_client.delete("bull:jobs:events")
    await redis_client.hset("bull:jobs:events", "x", "y")
    [row] = await fetch_signals(redis_client, [queue], tally_after={queue: "0-0"})
    assert row.tally is None and "not a stream" in row.tally_problem
    assert row.counts.counts["waiting"] == 1


async def test_no_workers_fires_after_the_threshold(redis_url: str, transactional_db: None) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with alerting(redis_url, [{"NO_WORKERS": "5m"}]):
        reset_directories()
        monitor = Monitor()
        first = await monitor.tick(now=0)
        assert first.workers[QueueRef("default", "bull", "email")] == 0
        assert not first.firing
        assert [f.condition for f in (await monitor.tick(now=300_000)).firing] == ["no_workers"]


async def test_oldest_waiting_from_the_job_next_in_line(redis_url: str, transactional_db: None) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}), ("later", {}, {"priority": 5})])
    with alerting(redis_url, [{"OLDEST_WAITING": "1h"}]):
        reset_directories()
        monitor = Monitor()
        import time

        soon = await monitor.tick(now=int(time.time() * 1000) + 60_000)
        age = soon.signals[QueueRef("default", "bull", "email")].oldest_waiting_seconds
        assert age is not None and 60 <= age < 90
        assert not soon.firing
        later = await monitor.tick(now=int(time.time() * 1000) + 3_601_000)
        assert [f.condition for f in later.firing] == ["oldest_waiting"]


def test_webhook_text_escapes_what_slack_would_read_as_markup() -> None:
    from datetime import UTC, datetime

    from dashboard.alerts import Announcement

    announcement = Announcement(
        QueueRef("default", "bull", HOSTILE), "backlog", True, datetime.now(tz=UTC), 5, f"{HOSTILE} waiting"
    )
    payload = webhook_payload(announcement, "https://x/<y>")
    assert "<!channel>" not in payload["text"] and "<b>" not in payload["text"]
    assert slack_escape(HOSTILE) in payload["text"]
    assert payload["alert"]["queue"] == HOSTILE


async def test_a_failing_webhook_is_audited_and_does_not_stop_the_evaluation(
    redis_url: str, transactional_db: None
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    hook = Receiver(status=500)
    try:
        with alerting(redis_url, [{"BACKLOG": 1}], WEBHOOK_URL=hook.url, WEBHOOK_TIMEOUT=2):
            reset_directories()
            tick = await Monitor().tick()
    finally:
        hook.close()
    assert tick.announced
    entry = await AuditEntry.objects.aget(action="alert_fired")
    assert entry.params["webhook"].startswith("failed: HTTP Error 500")


async def test_a_down_connection_keeps_its_alerts(redis_url: str, transactional_db: None) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    with alerting(redis_url, [{"BACKLOG": 1}]):
        reset_directories()
        monitor = Monitor()
        assert (await monitor.tick()).announced
        settings = dashboard_settings("redis://127.0.0.1:1/0", ALERTS={"RULES": [{"BACKLOG": 1}]})
    with override_settings(BULLMQ_DASHBOARD={**settings, "CONNECT_TIMEOUT": 0.5}):
        tick = await monitor.tick()
    assert not tick.announced
    assert await AlertState.objects.acount() == 1


@pytest.mark.parametrize(
    "alerts",
    [
        "nope",
        {"RULES": [{"BACKLOG": "many"}]},
        {"RULES": [{"FAILURE_RATE": 20}]},
        {"RULES": [{"BACKLGO": 1}]},
        {"RULES": [{"FOR": "soon"}]},
        {"WEBHOOK_URL": "file:///etc/passwd", "RULES": []},
        {"RULES": [], "WEBHOOK": "https://hooks.example.com/x"},
    ],
)
def test_unreadable_alert_settings_are_reported(alerts: Any, redis_server: str) -> None:
    settings = dashboard_settings(redis_server, ALERTS=alerts)
    with override_settings(BULLMQ_DASHBOARD=settings), pytest.raises(SystemCheckError, match="E011"):
        call_command("check")


async def test_banners_show_only_the_queues_a_user_may_view(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "secret", [("send", {}, {})])
    settings = dashboard_settings(
        redis_url,
        ALERTS={"RULES": [{"BACKLOG": 1}], "EVALUATE": False},
        PERMISSION="tests.integration.test_security.only_email",
    )
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        assert len((await Monitor().tick()).announced) == 2
        overview = (await client.get(dashboard_url())).content.decode()
        assert 'data-alerts="1"' in overview and "bull:secret" not in overview
        fetched = (await client.get(reverse("bullmq_dashboard:alerts"))).content.decode()
        assert 'id="bullmq-alerts"' in fetched and "bull:email" in fetched and "bull:secret" not in fetched
        hidden = await client.get(reverse("bullmq_dashboard:queue-alerts", args=["default", "bull:secret"]))
        assert hidden.status_code == 404 and "1 jobs waiting" not in hidden.content.decode()
        scrape = (await client.get(reverse("bullmq_dashboard:metrics"))).content.decode()
        assert 'queue="secret"' not in scrape


async def test_no_rules_no_banner_element_and_no_monitor(client: AsyncClient, redis_url: str) -> None:
    from dashboard.monitor import get_monitor

    await add_jobs(redis_url, "email", [("send", {}, {})])
    page = (await client.get(dashboard_url())).content.decode()
    assert 'id="bullmq-alerts"' not in page
    assert get_monitor()._task is None


async def test_a_page_view_starts_the_monitor_which_samples_throughput(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    import asyncio

    from dashboard.monitor import get_monitor
    from dashboard.throughput import sampling_on

    await add_jobs(redis_url, "email", [("send", {}, {})])

    async def work(job: Any, token: str) -> None:
        return None

    await process(redis_url, "email", work, until=1)
    settings = dashboard_settings(redis_url, THROUGHPUT={"SAMPLING": True})
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        assert (await client.get(dashboard_url())).status_code == 200
        for _ in range(100):
            if await redis_client.exists("bullmq-dashboard:samples:bull:email"):
                break
            await asyncio.sleep(0.05)
        assert await redis_client.type("bullmq-dashboard:samples:bull:email") == b"stream"
        assert get_monitor()._task is not None and not get_monitor()._task.done()
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, READ_ONLY=True)):
        assert not sampling_on()
