"""The BULLMQ_DASHBOARD settings: defaults, reset on change, system checks, the permission callable."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import override_settings

from dashboard.checks import check_dashboard_settings
from dashboard.conf import get_config
from dashboard.permissions import default_permission, has_permission
from dashboard.templatetags.bullmq_dashboard_tags import duration, percent, reltime
from dashboard.views.pages import page_numbers
from queues.connections import redacted_url


def ids(**dashboard: object) -> set[str]:
    with override_settings(BULLMQ_DASHBOARD=dashboard):
        return {message.id for message in check_dashboard_settings()}


def test_config_is_cached_and_reset_when_settings_change() -> None:
    with override_settings(BULLMQ_DASHBOARD={"CONNECTIONS": {"a": "redis://h:1/2"}, "DEFAULT_PAGE_SIZE": 50}):
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
        ({"CONNECTIONS": {}}, "bullmq_dashboard.E001"),
        ({"CONNECTIONS": {"x": {"PREFIXES": ["bull"]}}}, "bullmq_dashboard.E001"),
        ({"CONNECTIONS": {"api": "redis://h"}}, "bullmq_dashboard.E002"),
        ({"CONNECTIONS": {"a/b": "redis://h"}}, "bullmq_dashboard.E002"),
        ({"CONNECTIONS": {"x": "http://h"}}, "bullmq_dashboard.E003"),
        ({"CONNECTIONS": {"x": "redis://h:63790000/0"}}, "bullmq_dashboard.E003"),
        ({"CONNECTIONS": {"x": "redis://h:port/0"}}, "bullmq_dashboard.E003"),
        ({"CONNECTIONS": {"x": "redis://h:6379/queues"}}, "bullmq_dashboard.E003"),
        ({"CONNECTIONS": {"x": "redis://h:6379?db=one"}}, "bullmq_dashboard.E003"),
        ({"CONNECTIONS": {"x": "redis://:pw@:6379/0"}}, "bullmq_dashboard.E003"),
        ({"CONNECTIONS": {"x": {"URL": "rediss:///0"}}}, "bullmq_dashboard.E003"),
        ({"CONNECTIONS": {"x": "unix://"}}, "bullmq_dashboard.E003"),
        ({"CONNECTIONS": {"x": "unix:///run/redis.sock?db=x"}}, "bullmq_dashboard.E003"),
        ({"PERMISSION": "nowhere.nothing"}, "bullmq_dashboard.E004"),
        ({"DEFAULT_PAGE_SIZE": 33}, "bullmq_dashboard.E005"),
        ({"PAGE_SIZES": [25, 500]}, "bullmq_dashboard.E005"),
        ({"CONNECTIONS": {"x": {"URL": "redis://h", "QUEUES": ["nocolon"]}}}, "bullmq_dashboard.E006"),
    ],
)
def test_checks_explain_each_mistake(dashboard: dict[str, object], expected: str) -> None:
    assert expected in ids(**dashboard)


@pytest.mark.parametrize(
    "url",
    [
        "redis://h",
        "redis://h:6379",
        "redis://u:p%40ss@h:6379/15",
        "redis://h:6379/?db=3",
        "rediss://h/2",
        "unix:///run/redis.sock",
        "unix://u:p@/run/redis.sock?db=2",
    ],
)
def test_usable_redis_urls_pass(url: str) -> None:
    assert ids(CONNECTIONS={"x": url}) == set()


def test_bad_redis_urls_are_explained_without_their_password() -> None:
    with override_settings(BULLMQ_DASHBOARD={"CONNECTIONS": {"x": "redis://u:secret@h:6379/queues"}}):
        [message] = check_dashboard_settings()
    assert message.id == "bullmq_dashboard.E003"
    assert "'queues'" in message.msg and "a number" in message.msg and "secret" not in message.msg
    assert "redis://" in (message.hint or "")


@pytest.mark.parametrize(
    ("dashboard", "key", "suggestion"),
    [
        ({"PAGE_SIZE": [10]}, "'PAGE_SIZE'", "Did you mean 'PAGE_SIZES'?"),
        ({"read_only": True}, "'read_only'", "Did you mean 'READ_ONLY'?"),
        ({"LIVE": {"REFRESH_INTERVALL": 2}}, "BULLMQ_DASHBOARD['LIVE']", "Did you mean 'REFRESH_INTERVAL'?"),
        (
            {"CONNECTIONS": {"main": {"URL": "redis://h/0", "PREFIX": ["bull"]}}},
            "BULLMQ_DASHBOARD['CONNECTIONS']['main']",
            "Did you mean 'PREFIXES'?",
        ),
        ({"ZZZ": 1}, "'ZZZ'", "Known keys: "),
    ],
)
def test_w007_unknown_keys_with_a_suggestion(dashboard: dict[str, object], key: str, suggestion: str) -> None:
    with override_settings(BULLMQ_DASHBOARD=dashboard):
        [message] = check_dashboard_settings()
    assert message.id == "bullmq_dashboard.W007"
    assert key in message.msg
    assert (message.hint or "").startswith(suggestion)


def test_connection_keys_are_the_ones_the_settings_read() -> None:
    from dashboard.checks import CONNECTION_KEYS
    from dashboard.conf import DEFAULTS, connection_settings

    class Recording(dict[str, object]):
        read: set[str] = set()

        def __getitem__(self, key: str) -> object:
            self.read.add(key)
            return super().__getitem__(key)

        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            self.read.add(key)
            return super().get(key, default)

    connection_settings("x", Recording(URL="redis://h/0"), DEFAULTS)
    assert Recording.read == CONNECTION_KEYS


def user(**flags: bool) -> SimpleNamespace:
    defaults = {"is_authenticated": True, "is_active": True, "is_staff": False, "is_superuser": False}
    return SimpleNamespace(
        **{**defaults, **flags}, has_perm=lambda perm: perm == "bullmq_dashboard.retry_job"
    )


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
    with override_settings(
        BULLMQ_DASHBOARD={"PERMISSION": "tests.unit.test_settings_and_checks.allow_everyone"}
    ):
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


HOSTILE_IDS = [
    "1",
    "repeat:a:1",
    "a/b c#d?e=f&g",
    "%41",
    "%2e%2e",
    "ü 🚀",
    "x;y,z+!$'()*",
    "~@",
    "../../actions/drain/",
    "..",
    ".",
    "a/../../x",
    "//evil.example/x",
    "\\x\\..\\y",
    "line\nbreak\r\ttab",
    "",
]


@pytest.mark.parametrize("job_id", HOSTILE_IDS)
def test_job_links_carry_the_id_exactly_and_never_in_the_path(job_id: str) -> None:
    from urllib.parse import unquote, urljoin, urlsplit

    from django.test import RequestFactory
    from django.urls import resolve

    from dashboard import links
    from dashboard.views.base import job_id_param
    from queues.models import QueueRef

    queue = QueueRef("default", "{t}:x", "email")
    for url, view in [
        (links.job_url(queue, job_id), "job"),
        (links.job_api_url(queue, job_id), "api-job"),
        (links.logs_url(queue, job_id), "job-logs"),
        (links.job_action_url(queue, "retry", job_id), "job-action"),
        (links.raw_field_url(queue, job_id, "../data"), "job-raw"),
    ]:
        # What a browser sends: the URL resolved against the page it is on (dot segments removed).
        sent = urljoin("http://testserver/queues/default/{t}:x:email/", url)
        path = urlsplit(sent).path
        assert path == urlsplit(url).path, "the path must not depend on the id"
        match = resolve(unquote(path))  # the server decodes the path before routing
        assert match.url_name == view
        assert match.kwargs["queue_key"] == "{t}:x:email"
        if job_id:
            assert job_id_param(RequestFactory().get(url)) == job_id


@pytest.mark.parametrize("key", ["bull:email", "{t}:x:a/b", "~odd:q", "p:..", "p:a%2Fb", "p:ü #?"])
def test_queue_keys_round_trip_through_one_path_segment(key: str) -> None:
    from urllib.parse import unquote

    from django.urls import resolve

    from dashboard import links
    from queues.models import QueueRef

    queue = QueueRef.from_key("default", key)
    url = links.queue_url(queue)
    assert url.count("/") == 4  # /queues/<connection>/<key>/
    assert resolve(unquote(url)).kwargs["queue_key"] == key


def test_dialog_text_shows_controls_and_bidi_marks_as_escapes() -> None:
    from dashboard.templatetags.bullmq_dashboard_tags import plain

    # An id that would make "Remove job …?" read differently in a confirm dialog.
    assert plain("x\u202e?boj evomeR\nOK") == "x\\u202e?boj evomeR\\u000aOK"
    assert plain("ok-id") == "ok-id"
    assert len(plain("y" * 500)) == 120


@pytest.mark.parametrize(
    "dashboard",
    [
        None,
        ["CONNECTIONS"],
        {"PAGE_SIZES": 25},
        {"PAGE_SIZES": None},
        {"DEFAULT_PAGE_SIZE": "many"},
        {"LIVE": "on"},
        {"LIVE": {"REFRESH_INTERVAL": "soon"}},
        {"CONNECTIONS": {"default": {"URL": "redis://h/0", "SOCKET_TIMEOUT": "long"}}},
        {"CONNECTIONS": {"default": {"URL": "redis://h/0", "QUEUES": 5}}},
        {"CONNECTIONS": {"default": {"URL": "redis://h/0", "PREFIXES": True}}},
        {"OVERVIEW_MAX_QUEUES": float("inf")},
        {"PAGE_SIZES": [float("inf")]},
        {"LIVE": {"MAX_QUEUES": float("inf")}},
        {"READ_ONLY_QUEUES": 5},
    ],
)
def test_e009_wrong_types_are_reported_not_raised(dashboard: object) -> None:
    with override_settings(BULLMQ_DASHBOARD=dashboard):
        messages = check_dashboard_settings()
    assert [message.id for message in messages] == ["bullmq_dashboard.E009"]


def test_w010_a_name_list_given_as_one_string_is_that_one_name() -> None:
    dashboard = {
        "READ_ONLY_QUEUES": "bull:payments",
        "CONNECTIONS": {"default": {"URL": "redis://h/0", "PREFIXES": "bull", "QUEUES": "bull:email"}},
    }
    with override_settings(BULLMQ_DASHBOARD=dashboard):
        messages = check_dashboard_settings()
        config = get_config()
    assert [message.id for message in messages] == ["bullmq_dashboard.W010"] * 3
    assert "['bull:payments']" in (messages[0].hint or "")
    assert config.read_only_queues == frozenset({"bull:payments"})
    assert config.connections["default"].prefixes == ("bull",)
    assert config.connections["default"].queues == ("bull:email",)


@pytest.mark.parametrize(
    ("dashboard", "expected"),
    [
        ({"CONNECTIONS": {"default": "redis://[::1/0"}}, "bullmq_dashboard.E003"),
        ({"PERMISSION": ".x"}, "bullmq_dashboard.E004"),
        ({"PERMISSION": "..x"}, "bullmq_dashboard.E004"),
    ],
)
def test_values_that_break_parsers_are_reported_not_raised(
    dashboard: dict[str, object], expected: str
) -> None:
    assert expected in ids(**dashboard)


def test_a_logout_url_that_is_no_url_is_a_warning_and_no_button() -> None:
    from django.core.checks import run_checks

    from dashboard.views.base import logout_url

    with override_settings(BULLMQ_DASHBOARD={"LOGOUT_URL": "http://[x"}):
        assert "bullmq_dashboard.W006" in {message.id for message in run_checks()}
        assert logout_url("http://[x") is None
    with override_settings(LOGIN_URL="http://[x"):
        assert "bullmq_dashboard.W005" in {message.id for message in run_checks()}


def test_plain_text_shows_bidi_controls_and_zero_width_marks_as_escapes() -> None:
    from queues.parsing import plain_text

    assert plain_text("pay\u202eevil") == "pay\\u202eevil"
    assert plain_text("a\u200bb\ufeff") == "a\\u200bb\\ufeff"
    assert plain_text("x" * 200, 10) == "x" * 9 + "…"
