"""Attacks (f): misconfigured ALERTS / metrics settings that crash pages or silently stop alerting
instead of being reported by the checks (E011)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import AsyncClient, override_settings

from dashboard.monitor import Monitor
from dashboard.registry import reset_directories
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings
from tests.support.urls import dashboard_url


@pytest.mark.parametrize("backlog", [float("inf"), float("nan"), "nan", "1e999", "inf"])
def test_a_non_finite_count_is_reported_by_e011(backlog: Any, redis_server: str) -> None:
    """JSON from DASHBOARD_ALERTS may hold NaN / Infinity (json.loads accepts them), or a string."""
    settings = dashboard_settings(redis_server, ALERTS={"RULES": [{"BACKLOG": backlog}]})
    with override_settings(BULLMQ_DASHBOARD=settings), pytest.raises(SystemCheckError, match="E011"):
        call_command("check")


@pytest.mark.parametrize("backlog", [float("inf"), "nan"])
async def test_a_non_finite_count_does_not_break_every_page(
    backlog: Any, client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    settings = dashboard_settings(redis_url, ALERTS={"RULES": [{"BACKLOG": backlog}], "EVALUATE": False})
    with override_settings(BULLMQ_DASHBOARD=settings):
        reset_directories()
        response = await client.get(dashboard_url())
    assert response.status_code == 200


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("key", ["WINDOW", "FOR", "OLDEST_WAITING", "NO_WORKERS"])
def test_a_non_finite_duration_is_reported_by_e011(key: str, value: float, redis_server: str) -> None:
    """NaN FOR / OLDEST_WAITING / NO_WORKERS: the condition silently never fires; NaN or inf WINDOW:
    every tick raises (int(nan)) so no alert of any queue is evaluated."""
    settings = dashboard_settings(redis_server, ALERTS={"RULES": [{"STALLED": 1, key: value}]})
    with override_settings(BULLMQ_DASHBOARD=settings), pytest.raises(SystemCheckError, match="E011"):
        call_command("check")


@pytest.mark.parametrize("key", ["INTERVAL", "WEBHOOK_TIMEOUT"])
def test_an_infinite_interval_or_timeout_is_reported_by_e011(key: str, redis_server: str) -> None:
    """INTERVAL inf: the monitor sleeps for ever after its first tick; WEBHOOK_TIMEOUT inf: every post
    fails (socket.settimeout(inf) is an OverflowError, caught and audited as "failed")."""
    settings = dashboard_settings(redis_server, ALERTS={"RULES": [{"BACKLOG": 1}], key: float("inf")})
    with override_settings(BULLMQ_DASHBOARD=settings), pytest.raises(SystemCheckError, match="E011"):
        call_command("check")


async def test_a_non_finite_window_of_one_rule_does_not_stop_every_alert(
    redis_url: str, transactional_db: None
) -> None:
    """One rule with WINDOW NaN for one queue: the backlog alert of another queue must still fire."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    await add_jobs(redis_url, "payments", [("pay", {}, {})])
    rules = [
        {"QUEUES": ["bull:email"], "BACKLOG": 1},
        {"QUEUES": ["bull:payments"], "STALLED": 1, "WINDOW": float("nan")},
    ]
    alerts = {"RULES": rules, "EVALUATE": False}
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS=alerts)):
        reset_directories()
        tick = await Monitor().tick()
    assert [f.queue.name for f in tick.firing] == ["email"]


def test_a_window_longer_than_the_epoch_is_reported_by_e011(redis_server: str) -> None:
    """ "100000d" passes E011, but the window then starts before 1970: a negative stream id."""
    settings = dashboard_settings(redis_server, ALERTS={"RULES": [{"STALLED": 1, "WINDOW": "100000d"}]})
    with override_settings(BULLMQ_DASHBOARD=settings), pytest.raises(SystemCheckError, match="E011"):
        call_command("check")


async def test_a_rule_that_cannot_be_read_is_left_out_and_the_others_fire(
    redis_url: str, transactional_db: None
) -> None:
    """A WINDOW before 1970 (or NaN) makes its rule unreadable: E011 reports it, it is left out, and the
    other rules are evaluated."""
    await add_jobs(redis_url, "email", [("send", {}, {})])
    rules = [{"BACKLOG": 1}, {"STALLED": 5, "WINDOW": "100000d"}, {"STALLED": 1, "WINDOW": float("nan")}]
    alerts = {"RULES": rules, "EVALUATE": False}
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS=alerts)):
        reset_directories()
        tick = await Monitor().tick()
    signals = next(iter(tick.signals.values()))
    assert not signals.counts.error, signals.counts.error
    assert [f.condition for f in tick.firing] == ["backlog"]


@pytest.mark.parametrize("limit", ["many", None])
def test_metrics_max_queues_of_the_wrong_type_is_reported(limit: Any, redis_server: str) -> None:
    settings = dashboard_settings(redis_server, METRICS_MAX_QUEUES=limit)
    with override_settings(BULLMQ_DASHBOARD=settings), pytest.raises(SystemCheckError, match="E009"):
        call_command("check")
