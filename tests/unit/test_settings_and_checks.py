"""The DASHBOARD settings: defaults, reset on change, system checks, the permission callable."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import override_settings

from dashboard.checks import check_dashboard_settings
from dashboard.conf import get_config
from dashboard.permissions import default_permission, has_permission
from dashboard.templatetags.dashboard_tags import duration, percent, reltime
from dashboard.views.pages import page_numbers
from queues.connections import redacted_url


def ids(**dashboard: object) -> set[str]:
    with override_settings(DASHBOARD=dashboard):
        return {message.id for message in check_dashboard_settings()}


def test_config_is_cached_and_reset_when_settings_change() -> None:
    with override_settings(DASHBOARD={"CONNECTIONS": {"a": "redis://h:1/2"}, "DEFAULT_PAGE_SIZE": 50}):
        config = get_config()
        assert config.connections["a"].url == "redis://h:1/2"
        assert config.default_page_size == 50
        assert get_config() is config
    assert "a" not in get_config().connections


def test_checks_accept_a_good_configuration() -> None:
    assert ids(CONNECTIONS={"main": {"URL": "rediss://u:p@h:6380/1", "QUEUES": ["bull:email"]}}) == set()


@pytest.mark.parametrize(
    ("dashboard", "expected"),
    [
        ({"CONNECTIONS": {}}, "dashboard.E001"),
        ({"CONNECTIONS": {"x": {"PREFIXES": ["bull"]}}}, "dashboard.E001"),
        ({"CONNECTIONS": {"api": "redis://h"}}, "dashboard.E002"),
        ({"CONNECTIONS": {"a/b": "redis://h"}}, "dashboard.E002"),
        ({"CONNECTIONS": {"x": "http://h"}}, "dashboard.E003"),
        ({"PERMISSION": "nowhere.nothing"}, "dashboard.E004"),
        ({"DEFAULT_PAGE_SIZE": 33}, "dashboard.E005"),
        ({"CONNECTIONS": {"x": {"URL": "redis://h", "QUEUES": ["nocolon"]}}}, "dashboard.E006"),
    ],
)
def test_checks_explain_each_mistake(dashboard: dict[str, object], expected: str) -> None:
    assert expected in ids(**dashboard)


def user(**flags: bool) -> SimpleNamespace:
    defaults = {"is_authenticated": True, "is_active": True, "is_staff": False, "is_superuser": False}
    return SimpleNamespace(**{**defaults, **flags}, has_perm=lambda perm: perm == "dashboard.retry_job")


def test_default_permission() -> None:
    assert default_permission(user(is_staff=True), "view", None)
    assert not default_permission(user(), "view", None)
    assert not default_permission(user(is_staff=True, is_active=False), "view", None)
    assert default_permission(user(is_staff=True), "retry", None)
    assert default_permission(user(is_staff=True), "bulk", None)
    assert not default_permission(user(is_staff=True), "clean", None)
    assert not default_permission(user(is_staff=True), "no_such_action", None)
    assert not default_permission(user(), "retry", None)
    assert default_permission(user(is_superuser=True), "clean", None)


def allow_everyone(user: object, action: str, queue: object) -> bool:
    return True


def test_permission_callable_is_replaceable() -> None:
    with override_settings(DASHBOARD={"PERMISSION": "tests.unit.test_settings_and_checks.allow_everyone"}):
        assert has_permission(user(), "view")


def test_passwords_never_shown() -> None:
    assert redacted_url("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redacted_url("redis://host:6379/0") == "redis://host:6379/0"


def test_page_numbers_with_gaps() -> None:
    assert page_numbers(1, 1) == [1]
    assert page_numbers(10, 20) == [1, None, 8, 9, 10, 11, 12, None, 20]
    assert page_numbers(2, 5) == [1, 2, 3, 4, 5]


def test_template_helpers() -> None:
    assert duration(850) == "850 ms" and duration(12_400) == "12.4 s" and duration(None) == "—"
    assert duration(3 * 3600_000 + 60_000) == "3 h 1 min"
    assert percent(140) == 100 and percent({"a": 1}) is None and percent(True) is None
    assert 'datetime="2026-11-28T07:00:00.000Z"' in reltime(1795849200000)
    assert "—" in reltime(None) and "—" in reltime(10**20)


@pytest.mark.parametrize("job_id", ["1", "repeat:a:1", "a/b c#d?e=f&g", "%41", "ü 🚀", "x;y,z+!$'()*", "~@"])
def test_fast_job_links_equal_django_reverse(job_id: str) -> None:
    from django.urls import reverse

    from dashboard import links
    from queues.models import QueueRef

    queue = QueueRef("default", "{t}:x", "email")
    assert links.job_url(queue, job_id) == reverse("dashboard:job", args=["default", "{t}:x:email", job_id])
    assert links.job_action_url(queue, "retry", job_id) == reverse(
        "dashboard:job-action", args=["default", "{t}:x:email", "retry", job_id]
    )
