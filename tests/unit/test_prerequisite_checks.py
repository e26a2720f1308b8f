"""System checks of what a host project must provide: middleware, channels, websocket routes, login URLs.

Each ID of dashboard/checks.py that is about the host project (not the BULLMQ_DASHBOARD dict itself) has a
test here; the ASGI applications and the URLconf the tests point the settings at are defined below.
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from channels.sessions import SessionMiddlewareStack
from django.core.checks import CheckMessage, run_checks
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import include, path, re_path
from django_htmx.middleware import HtmxMiddleware

from dashboard import checks
from dashboard.asgi_routes import consumer_routes, routed_consumer
from dashboard.consumers import JobConsumer, OverviewConsumer
from dashboard.routing import websocket_urlpatterns, websocket_urls

HERE = __name__


def dashboard_messages(**overrides: Any) -> dict[str, CheckMessage]:
    """The dashboard's check messages (by ID) with some settings changed."""
    with override_settings(**overrides):
        return {
            message.id: message
            for message in run_checks()
            if message.id and message.id.startswith("bullmq_dashboard.")
        }


async def http_app(scope: Any, receive: Any, send: Any) -> None:
    """Stands in for Django in the ASGI applications below."""


class ChatConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """A host's own consumer."""


class LoggingWrapper:
    """A host's own ASGI middleware, keeping its application as `.app`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def stack(routes: list[Any]) -> Any:
    return AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routes)))


WELL_ROUTED = ProtocolTypeRouter({"http": http_app, "websocket": stack(websocket_urls("queues/"))})
# Nested routers, a regex route and a host's wrapper on the way: still found.
NESTED = LoggingWrapper(
    ProtocolTypeRouter(
        {
            "http": http_app,
            "websocket": LoggingWrapper(
                stack(
                    [
                        path("chat/", ChatConsumer.as_asgi()),
                        re_path(r"^queues/", URLRouter([path("ws/", URLRouter(websocket_urlpatterns))])),
                    ]
                )
            ),
        }
    )
)
MISMOUNTED = ProtocolTypeRouter({"http": http_app, "websocket": stack(websocket_urls("ops/queues/"))})
NOT_ROUTED = ProtocolTypeRouter(
    {"http": http_app, "websocket": stack([path("chat/", ChatConsumer.as_asgi())])}
)
HTTP_ONLY = ProtocolTypeRouter({"http": http_app})
NO_AUTH = ProtocolTypeRouter(
    {"http": http_app, "websocket": SessionMiddlewareStack(URLRouter(websocket_urls("queues/")))}
)


def host_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("a host page")


# A URLconf without the dashboard (ROOT_URLCONF = this module).
urlpatterns = [path("home/", host_page, name="home"), path("accounts/", include("django.contrib.auth.urls"))]


class HostHtmxMiddleware(HtmxMiddleware):
    """A host's subclass of django-htmx's middleware."""


def test_the_standalone_site_passes_every_check() -> None:
    assert dashboard_messages() == {}


def test_e007_htmx_middleware_missing(settings: Any) -> None:
    without = [name for name in settings.MIDDLEWARE if "htmx" not in name]
    message = dashboard_messages(MIDDLEWARE=without)["bullmq_dashboard.E007"]
    assert "django_htmx.middleware.HtmxMiddleware" in message.msg and "MIDDLEWARE" in (message.hint or "")
    subclass = [*without, f"{HERE}.HostHtmxMiddleware"]
    assert "bullmq_dashboard.E007" not in dashboard_messages(MIDDLEWARE=subclass)


def test_e008_channels_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "find_spec", lambda name: None if name == "channels" else object())
    message = dashboard_messages()["bullmq_dashboard.E008"]
    assert "pip install channels" in (message.hint or "") and '"ENABLED": False' in (message.hint or "")
    assert set(dashboard_messages()) == {"bullmq_dashboard.E008"}  # no websocket checks without channels
    off = {"CONNECTIONS": {"default": "redis://h/0"}, "LIVE": {"ENABLED": False}}
    assert dashboard_messages(BULLMQ_DASHBOARD=off) == {}


@pytest.mark.parametrize("layers", [{}, None, {"other": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}])
def test_w001_no_default_channel_layer(layers: object) -> None:
    message = dashboard_messages(CHANNEL_LAYERS=layers)["bullmq_dashboard.W001"]
    assert "InMemoryChannelLayer" in (message.hint or "")
    off = {"CONNECTIONS": {"default": "redis://h/0"}, "LIVE": {"ENABLED": False}}
    assert dashboard_messages(CHANNEL_LAYERS=layers, BULLMQ_DASHBOARD=off) == {}


@pytest.mark.parametrize("asgi", [None, "", "nowhere.asgi.application", f"{HERE}.NO_SUCH_APPLICATION"])
def test_w002_asgi_application_missing_or_broken(asgi: str | None) -> None:
    message = dashboard_messages(ASGI_APPLICATION=asgi)["bullmq_dashboard.W002"]
    assert "ASGI_APPLICATION" in message.msg


@pytest.mark.parametrize("application", ["WELL_ROUTED", "NESTED"])
def test_websocket_routes_found_through_routers_and_wrappers(application: str) -> None:
    assert dashboard_messages(ASGI_APPLICATION=f"{HERE}.{application}") == {}


def test_routes_are_read_like_url_router_matches_them() -> None:
    assert routed_consumer(NESTED, "queues/ws/") is OverviewConsumer
    assert routed_consumer(NESTED, "/queues/ws/default/bull:email/job/") is JobConsumer
    assert routed_consumer(NESTED, "chat/") is ChatConsumer
    assert routed_consumer(NESTED, "queues/") is None
    assert routed_consumer(HTTP_ONLY, "queues/ws/") is None
    [route] = consumer_routes(NESTED, OverviewConsumer)
    assert route.mount == "queues/ws/"
    assert LoggingWrapper in route.wrappers


@pytest.mark.parametrize("application", ["NOT_ROUTED", "HTTP_ONLY"])
def test_w003_websockets_not_routed(application: str) -> None:
    message = dashboard_messages(ASGI_APPLICATION=f"{HERE}.{application}")["bullmq_dashboard.W003"]
    assert "/queues/ws/" in message.msg
    assert 'URLRouter(websocket_urls("queues/"))' in (message.hint or "")


def test_w004_websockets_under_another_mount() -> None:
    message = dashboard_messages(ASGI_APPLICATION=f"{HERE}.MISMOUNTED")["bullmq_dashboard.W004"]
    assert "/ops/queues/ws/" in message.msg and "/queues/ws/" in message.msg
    assert (
        message.hint == 'Mount them with the pages\' mount: URLRouter(websocket_urls("queues/")) in asgi.py.'
    )


def test_w009_websockets_without_auth_middleware() -> None:
    message = dashboard_messages(ASGI_APPLICATION=f"{HERE}.NO_AUTH")["bullmq_dashboard.W009"]
    assert "AuthMiddlewareStack" in (message.hint or "")


@pytest.mark.parametrize("login_url", ["nowhere", "/nowhere/", "bullmq_dashboard:queue"])
def test_w005_login_url_leads_nowhere(login_url: str) -> None:
    message = dashboard_messages(LOGIN_URL=login_url)["bullmq_dashboard.W005"]
    assert repr(login_url) in message.msg


@pytest.mark.parametrize("login_url", ["/accounts/login/", "login", "https://sso.example/login?app=queues"])
def test_login_url_names_paths_and_other_sites_pass(login_url: str) -> None:
    assert "bullmq_dashboard.W005" not in dashboard_messages(LOGIN_URL=login_url)


@pytest.mark.parametrize("logout_url", ["host-logout", "/sign-out/"])
def test_w006_logout_url_leads_nowhere(logout_url: str) -> None:
    dashboard = {"CONNECTIONS": {"default": "redis://h/0"}, "LOGOUT_URL": logout_url}
    message = dashboard_messages(BULLMQ_DASHBOARD=dashboard)["bullmq_dashboard.W006"]
    assert "LOGOUT_URL" in message.msg and "None" in (message.hint or "")


@pytest.mark.parametrize("logout_url", ["logout", "/accounts/logout/", None])
def test_logout_url_that_resolves_or_none_passes(logout_url: str | None) -> None:
    dashboard = {"CONNECTIONS": {"default": "redis://h/0"}, "LOGOUT_URL": logout_url}
    assert dashboard_messages(BULLMQ_DASHBOARD=dashboard) == {}


def test_w008_urls_not_included() -> None:
    messages = dashboard_messages(ROOT_URLCONF=HERE)
    assert 'include("dashboard.urls")' in (messages["bullmq_dashboard.W008"].hint or "")
    assert "bullmq_dashboard.W003" not in messages  # no mount to compare the sockets with


def router_cycle() -> Any:
    """A router that routes to itself on several paths: walked naively, 4**64 visits."""
    loop = URLRouter([])
    loop.routes.extend(path(f"{name}/", loop) for name in "abcd")  # after __init__, which checks nothing
    return ProtocolTypeRouter({"http": http_app, "websocket": stack([path("x/", loop)])})


ROUTER_CYCLE = router_cycle()


def test_a_router_cycle_is_walked_once_and_reported() -> None:
    messages = dashboard_messages(ASGI_APPLICATION=f"{HERE}.ROUTER_CYCLE")
    assert set(messages) == {"bullmq_dashboard.W003"}


class TenantConverter:
    """A host's converter that looks its value up in a table `migrate` has not created yet."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        raise RuntimeError("no such table: tenants_tenant")

    def to_url(self, value: str) -> str:
        return value


def tenant_routes() -> Any:
    from django.urls import register_converter

    register_converter(TenantConverter, "tenant")
    return ProtocolTypeRouter(
        {
            "http": http_app,
            "websocket": stack([path("<tenant:slug>/", URLRouter([])), *websocket_urls("queues/")]),
        }
    )


FAILING_CONVERTER = tenant_routes()


def test_w002_a_router_that_fails_while_read_is_reported_not_raised() -> None:
    message = dashboard_messages(ASGI_APPLICATION=f"{HERE}.FAILING_CONVERTER")["bullmq_dashboard.W002"]
    assert "no such table" in message.msg and "SILENCED_SYSTEM_CHECKS" in (message.hint or "")


@pytest.mark.parametrize("logout_url", ["javascript:alert(1)", "data:text/html,x", "//evil.example/"])
def test_w006_logout_url_of_another_kind(logout_url: str) -> None:
    dashboard = {"CONNECTIONS": {"default": "redis://h/0"}, "LOGOUT_URL": logout_url}
    messages = dashboard_messages(BULLMQ_DASHBOARD=dashboard)
    if logout_url.startswith("//"):
        assert messages == {}  # another site's logout (single sign-on) is allowed and not checked
    else:
        assert "scheme" in messages["bullmq_dashboard.W006"].msg


def with_templates(templates: dict[str, str]) -> list[dict[str, Any]]:
    """TEMPLATES that find `templates` (name -> source) and then the apps' own."""
    from django.conf import settings

    [backend] = settings.TEMPLATES
    loaders = [
        ("django.template.loaders.locmem.Loader", templates),
        "django.template.loaders.app_directories.Loader",
    ]
    options = {key: value for key, value in backend.get("OPTIONS", {}).items()}
    return [{**backend, "APP_DIRS": False, "OPTIONS": {**options, "loaders": loaders}}]


HOST_TEMPLATES = {
    "site.html": "<head>{% block extra_head %}{% endblock %}</head>{% block main %}{% endblock %}",
    "site_for_dashboard.html": '{% extends "site.html" %}{% block main %}{% block content %}{% endblock %}'
    "{% endblock %}{% block title %}{% endblock %}",
    "dynamic.html": "{% extends base %}",
    "broken.html": "{% block content %}",
}


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("bullmq_dashboard/base.html", None),
        ("site_for_dashboard.html", None),
        ("dynamic.html", None),  # read only by rendering: not judged
        ("site.html", "bullmq_dashboard.W011"),
        ("nowhere.html", "bullmq_dashboard.E010"),
        ("broken.html", "bullmq_dashboard.E010"),
    ],
)
def test_base_template_loads_and_has_the_blocks(base: str, expected: str | None) -> None:
    dashboard = {"CONNECTIONS": {"default": "redis://h/0"}, "BASE_TEMPLATE": base}
    messages = dashboard_messages(BULLMQ_DASHBOARD=dashboard, TEMPLATES=with_templates(HOST_TEMPLATES))
    assert set(messages) == ({expected} if expected else set())
    if expected == "bullmq_dashboard.W011":
        assert "title, content" in messages[expected].msg
