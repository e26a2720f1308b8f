"""The HEALTH settings (dashboard.health) and their check, bullmq_dashboard.E013; the alert rules' health
conditions (E011 for a value that is no flag)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from dashboard.alerts import AlertSettingError, parse_rule
from dashboard.checks import check_dashboard_settings
from dashboard.conf import DEFAULTS
from dashboard.health import HealthSettingError, health_settings, parse_settings
from queues.health import HealthThresholds


def ids(**dashboard: object) -> set[str]:
    with override_settings(BULLMQ_DASHBOARD=dashboard):
        return {message.id for message in check_dashboard_settings()}


def test_the_defaults_are_the_verdicts_own() -> None:
    settings = parse_settings(DEFAULTS)
    assert settings.thresholds == HealthThresholds()
    assert (settings.cache_seconds, settings.child_parents, settings.child_keys) == (15, 5, 3)
    assert "bullmq_dashboard.E013" not in ids()


def test_values_are_read_and_merged_over_the_defaults() -> None:
    settings = parse_settings(
        {"HEALTH": {"WINDOW": "30m", "STALLED": 5, "OLDEST_WAITING": None, "NO_WORKERS": 0}}
    )
    assert settings.thresholds.window_seconds == 1800
    assert settings.thresholds.stalled == 5
    assert settings.thresholds.oldest_waiting_seconds is None
    assert settings.thresholds.no_workers_seconds == 0
    assert settings.thresholds.rate_limited_seconds == 300  # a default kept
    with override_settings(BULLMQ_DASHBOARD={"HEALTH": {"CACHE_SECONDS": 0}}):
        assert health_settings().cache_seconds == 0


@pytest.mark.parametrize(
    "given",
    [
        "10m",
        {"WINDOW": "10s"},  # under a minute
        {"WINDOW": "2d"},  # over a day
        {"OLDEST_WAITING": "soon"},
        {"STALLED": 0},
        {"STALLED": 1.5},
        {"STALLED": True},
        {"DEDUPLICATED": float("nan")},
        {"CACHE_SECONDS": 301},
        {"CHILD_PARENTS": 21},
        {"CHILD_KEYS": 0},
        {"NO_WORKER": "1m"},  # a typo
    ],
)
def test_unusable_values_are_e013_and_the_defaults_stand_in(given: Any) -> None:
    with pytest.raises(HealthSettingError):
        parse_settings({"HEALTH": given})
    assert "bullmq_dashboard.E013" in ids(HEALTH=given)
    with override_settings(BULLMQ_DASHBOARD={"HEALTH": given}):
        assert health_settings() == parse_settings(DEFAULTS)


def test_alert_rules_take_the_verdicts_conditions_as_flags() -> None:
    rule = parse_rule({"QUEUES": ["bull:*"], "PAUSED": True, "STUCK": True, "AT_CAPACITY": False})
    assert rule.thresholds == {"paused": True, "stuck": True, "at_capacity": False}
    with pytest.raises(AlertSettingError, match="True or False"):
        parse_rule({"RATE_LIMITED": "yes"})
    assert "bullmq_dashboard.E011" in ids(ALERTS={"RULES": [{"STUCK": 1}]})
