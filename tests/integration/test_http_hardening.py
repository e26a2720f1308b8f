"""HTTP hardening of the standalone site (config/): the Content-Security-Policy, static files served by
WhiteNoise before Django, /healthz, HTTPS settings from the environment, daphne's proxy headers, and error
reports that never show a connection password."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from channels.testing import HttpCommunicator
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.views.debug import ExceptionReporter, technical_500_response
from django.views.decorators.debug import sensitive_variables

from config import health
from config.asgi import application
from config.error_reports import MASK, redact_text
from config.security_headers import DEFAULT_POLICY, add_policy
from config.serve import daphne_command
from dashboard import links
from queues.models import QueueRef
from queues.throwaway_redis import free_port
from tests.support.asgi import asgi_request
from tests.support.builders import add_jobs
from tests.support.site import site_env

ROOT = Path(__file__).resolve().parents[2]
EMAIL = QueueRef("default", "bull", "email")
CSP = "content-security-policy"
MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def header(response: dict[str, Any], name: str) -> str | None:
    """One response header of an ASGI response (None when absent)."""
    for key, value in response["headers"]:
        if key.decode().lower() == name:
            return str(value.decode())
    return None


# ---------------------------------------------------------------- Content-Security-Policy


def test_default_policy_is_the_strict_one() -> None:
    directives = dict(part.strip().split(" ", 1) for part in DEFAULT_POLICY.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in DEFAULT_POLICY


async def test_every_kind_of_page_carries_the_policy(admin_client: AsyncClient, redis_url: str) -> None:
    client = admin_client  # may see every page, the audit log too
    await add_jobs(redis_url, "email", [("send", {"to": "a@example.com"}, {"jobId": "j1"})])
    pages = {
        "overview": ("/queues/", 200),
        "queue": (links.queue_url(EMAIL), 200),
        "job": (links.job_url(EMAIL, "j1"), 200),
        "audit": ("/queues/audit/", 200),
        "a queue that is not there": (links.queue_url(QueueRef("default", "bull", "nope")), 404),
        "a site URL that is not there": ("/no-such-page/", 404),
    }
    for name, (url, status) in pages.items():
        response = await asgi_request(client, "GET", url)
        assert response["status"] == status, name
        assert str(header(response, "content-type")).startswith("text/html"), name
        assert header(response, CSP) == DEFAULT_POLICY, name

    partial = await asgi_request(client, "GET", links.queue_url(EMAIL), headers=[(b"hx-request", b"true")])
    assert partial["status"] == 200 and b"<html" not in partial["body"]  # type: ignore[operator]
    assert header(partial, CSP) == DEFAULT_POLICY


async def test_login_and_csrf_failure_pages_carry_the_policy_and_no_inline_style(
    anonymous_client: AsyncClient,
) -> None:
    login = await asgi_request(anonymous_client, "GET", "/accounts/login/")
    assert login["status"] == 200 and header(login, CSP) == DEFAULT_POLICY

    form = [(b"content-type", b"application/x-www-form-urlencoded")]
    refused = await asgi_request(anonymous_client, "POST", "/accounts/login/", b"username=x&password=y", form)
    assert refused["status"] == 403 and header(refused, CSP) == DEFAULT_POLICY
    body = refused["body"].decode()  # type: ignore[attr-defined]
    # The site's 403_csrf.html, not Django's inline-styled page.
    assert "403 Forbidden · BullMQ dashboard" in body and "CSRF verification failed" in body
    assert not re.search(r"<style|<script>|style=", body)


async def test_json_gets_no_policy_and_an_existing_header_is_kept(client: AsyncClient) -> None:
    api = await asgi_request(client, "GET", "/queues/api/queues/")
    assert api["status"] == 200 and header(api, CSP) is None

    own = HttpResponse("<p>x</p>", headers={"Content-Security-Policy": "default-src 'none'"})
    assert add_policy(own)["Content-Security-Policy"] == "default-src 'none'"


async def test_policy_comes_from_the_setting(anonymous_client: AsyncClient) -> None:
    with override_settings(CONTENT_SECURITY_POLICY="default-src 'self'; img-src https://cdn.example"):
        login = await asgi_request(anonymous_client, "GET", "/accounts/login/")
    assert header(login, CSP) == "default-src 'self'; img-src https://cdn.example"


async def test_django_debug_pages_go_out_without_the_policy(anonymous_client: AsyncClient) -> None:
    with override_settings(DEBUG=True):
        missing = await asgi_request(anonymous_client, "GET", "/no-such-page/")
        login = await asgi_request(anonymous_client, "GET", "/accounts/login/")
    assert missing["status"] == 404 and header(missing, CSP) is None  # technical 404, styled inline
    assert header(login, CSP) == DEFAULT_POLICY  # pages that work keep it with DEBUG on too


@pytest.mark.django_db
def test_the_middleware_works_on_the_sync_path_too() -> None:
    response = Client().get("/accounts/login/")  # WSGI handler: every middleware runs sync
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == DEFAULT_POLICY


def test_pages_load_no_inline_script_or_style() -> None:
    templates = [*(ROOT / "dashboard" / "templates").rglob("*.html"), *(ROOT / "templates").rglob("*.html")]
    assert len(templates) > 10
    for template in templates:
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template  # every script is a file
        assert not re.search(r"<style|\sstyle=|\shx-on|\sjs:|\bon[a-z]+=", text), template
    base = (ROOT / "dashboard" / "templates" / "bullmq_dashboard" / "layout.html").read_text()
    theme = base.index("bullmq_dashboard/theme.js")
    assert theme < base.index("dashboard.css")  # before first paint
    assert "defer" not in base[base.rindex("<script", 0, theme) : base.index("</script>", theme)]


# ---------------------------------------------------------------- static files and /healthz


async def test_static_files_are_served_by_whitenoise_through_config_asgi(tmp_path: Path) -> None:
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=MANIFEST_STORAGES):
        call_command("collectstatic", interactive=False, verbosity=0)
        hashed_css = staticfiles_storage.url("bullmq_dashboard/dashboard.css")
        hashed_js = staticfiles_storage.url("bullmq_dashboard/theme.js")
        assert re.fullmatch(r"/static/bullmq_dashboard/theme\.[0-9a-f]{12}\.js", hashed_js)
        visitor = AsyncClient()

        css = await asgi_request(visitor, "GET", hashed_css)
        js = await asgi_request(visitor, "GET", hashed_js, headers=[(b"accept-encoding", b"gzip")])
        plain = await asgi_request(visitor, "GET", "/static/bullmq_dashboard/theme.js")
        head = await asgi_request(visitor, "HEAD", hashed_js)
        missing = await asgi_request(visitor, "GET", "/static/bullmq_dashboard/nope.js")
        outside = await asgi_request(visitor, "GET", "/static/../config/settings.py")

    assert css["status"] == 200 and header(css, "content-type") == 'text/css; charset="utf-8"'

    assert css["body"] == (tmp_path / hashed_css.removeprefix("/static/")).read_bytes()
    assert header(css, "cache-control") == "max-age=315360000, public, immutable"
    assert header(css, "x-content-type-options") == "nosniff"
    assert js["status"] == 200 and header(js, "content-type") == 'text/javascript; charset="utf-8"'
    assert header(js, "content-encoding") == "gzip"
    assert plain["status"] == 200 and header(plain, "cache-control") == "max-age=60, public"
    assert b"bullmq-dashboard-theme" in plain["body"]  # type: ignore[operator]
    assert head["status"] == 200 and head["body"] == b""
    assert missing["status"] == 404 and header(missing, "content-type") == "text/plain; charset=utf-8"
    assert outside["status"] == 404
    # Answered before Django: no session cookie, no Django headers, no policy on a file.
    assert header(css, "set-cookie") is None and header(css, "x-frame-options") is None


async def test_pages_link_the_hashed_files_and_serve_them(
    client: AsyncClient, redis_url: str, tmp_path: Path
) -> None:
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=MANIFEST_STORAGES):
        call_command("collectstatic", interactive=False, verbosity=0)
        page = await asgi_request(client, "GET", "/queues/")
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page["body"].decode())  # type: ignore[attr-defined]
        assert any("theme." in asset for asset in assets) and len(assets) >= 5
        for asset in assets:
            served = await asgi_request(client, "GET", asset)
            assert served["status"] == 200, asset
            assert "immutable" in str(header(served, "cache-control")), asset


async def test_static_files_go_to_django_with_debug_on(anonymous_client: AsyncClient) -> None:
    with override_settings(DEBUG=True):
        response = await asgi_request(anonymous_client, "GET", "/static/bullmq_dashboard/theme.js")
    # staticfiles_urlpatterns() was not added (DEBUG was off when the URLconf loaded): Django's 404.
    assert response["status"] == 404 and header(response, "content-type") == "text/html; charset=utf-8"


async def test_healthz_answers_ok_without_database_redis_or_an_allowed_host() -> None:
    # No database access is allowed in this test, and the settings' Redis (port 1) is not there.
    for host in (b"localhost", b"attacker.example"):
        communicator = HttpCommunicator(application, "GET", health.PATH, headers=[(b"host", host)])
        response = await communicator.get_response(timeout=5)
        assert response["status"] == 200 and response["body"] == b"ok"
        assert header(response, "content-type") == "text/plain; charset=utf-8"
        assert header(response, "cache-control") == "no-store"

    head = await HttpCommunicator(application, "HEAD", health.PATH).get_response(timeout=5)
    post = await HttpCommunicator(application, "POST", health.PATH).get_response(timeout=5)
    assert head["status"] == 200 and head["body"] == b""
    assert post["status"] == 405 and header(post, "allow") == "GET, HEAD"


def dockerfile_instructions() -> dict[str, str]:
    """The Dockerfile's instructions by keyword (continuation lines joined; the last of each wins)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return {line.split(None, 1)[0]: line.split(None, 1)[1] for line in lines}


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's CMD, exec form."""
    healthcheck = dockerfile_instructions()["HEALTHCHECK"]
    options, _, command = healthcheck.partition(" CMD ")
    assert "--timeout=" in options and "--interval=" in options
    parsed: list[str] = json.loads(command)
    return parsed


def test_dockerfile_healthcheck_and_cmd() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/healthz" in command[2] and "timeout=3" in command[2]
    cmd = json.loads(dockerfile_instructions()["CMD"])
    assert cmd[:2] == ["sh", "-c"] and "exec python -m config.serve --bind 0.0.0.0 --port 8000" in cmd[2]
    assert "COPY templates ./templates" in (ROOT / "Dockerfile").read_text()
    assert "$(PY) -m config.serve" in (ROOT / "Makefile").read_text()


@pytest.mark.parametrize(
    ("value", "proxy_headers"), [("1", True), ("true", True), ("0", False), ("", False), (None, False)]
)
def test_daphne_gets_proxy_headers_only_behind_a_proxy(value: str | None, proxy_headers: bool) -> None:
    environ = {} if value is None else {"DJANGO_BEHIND_PROXY": value}
    command = daphne_command("0.0.0.0", 8000, environ)
    assert command[-1] == "config.asgi:application" and command[1:3] == ["-m", "daphne"]
    assert ("--proxy-headers" in command) is proxy_headers


def test_serve_behind_a_proxy_end_to_end(tmp_path: Path) -> None:
    """`python -m config.serve` as the container runs it: the HEALTHCHECK passes although 127.0.0.1 is not
    an allowed host and HTTPS is enforced, and daphne takes the scheme from X-Forwarded-Proto."""
    port = free_port()
    env = site_env(
        tmp_path,
        "redis://127.0.0.1:1/0",
        DJANGO_BEHIND_PROXY="1",
        DJANGO_ALLOWED_HOSTS="dashboard.example.com",
        DJANGO_SECURE_SSL_REDIRECT="1",
    )
    log = (tmp_path / "daphne.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "config.serve", "--bind", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        probe = [sys.executable, *healthcheck_command()[1:]]
        probe[-1] = probe[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while subprocess.run(probe, cwd=ROOT, capture_output=True, check=False).returncode != 0:
            assert process.poll() is None, (tmp_path / "daphne.log").read_text()
            assert time.monotonic() < deadline, "the HEALTHCHECK command never passed"
            time.sleep(0.3)
        # config.serve replaced itself with daphne (same process), with --proxy-headers.
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"daphne" in cmdline and b"--proxy-headers" in cmdline

        def get(headers: dict[str, str]) -> tuple[int, str]:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/queues/", headers=headers)
            opener = urllib.request.build_opener(NoRedirects)
            try:
                with opener.open(request, timeout=5) as response:
                    return response.status, ""
            except urllib.error.HTTPError as error:
                return error.code, error.headers.get("Location", "")

        host = {"Host": "dashboard.example.com", "X-Forwarded-For": "203.0.113.7"}
        assert get(host) == (301, "https://dashboard.example.com/queues/")
        # daphne reads X-Forwarded-Proto with X-Forwarded-For, as proxies send them.
        status, location = get({**host, "X-Forwarded-Proto": "https"})
        assert (status, location) == (302, "/accounts/login/?next=/queues/")  # past the HTTPS redirect
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib handler that reports redirects instead of following them."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# ---------------------------------------------------------------- settings from the environment


def settings_from(env: dict[str, str]) -> dict[str, Any]:
    """config.settings imported in a fresh interpreter with this environment."""
    names = [
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "CONTENT_SECURITY_POLICY",
        "DEFAULT_EXCEPTION_REPORTER_FILTER",
        "DEFAULT_EXCEPTION_REPORTER",
        "MIDDLEWARE",
    ]
    script = (
        f"import json, config.settings as s; print(json.dumps({{n: getattr(s, n, None) for n in {names!r}}}))"
    )
    clean = {
        key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "BULLMQ_DASHBOARD"))
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_SECRET_KEY": "x", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_https_settings_default_to_off() -> None:
    loaded = settings_from({})
    assert loaded["SECURE_HSTS_SECONDS"] == 0 and loaded["SECURE_SSL_REDIRECT"] is False
    assert loaded["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False and loaded["SECURE_HSTS_PRELOAD"] is False
    assert loaded["SECURE_PROXY_SSL_HEADER"] is None and loaded["SESSION_COOKIE_SECURE"] is False
    assert loaded["CONTENT_SECURITY_POLICY"] == DEFAULT_POLICY
    assert (
        loaded["DEFAULT_EXCEPTION_REPORTER_FILTER"] == "config.error_reports.RedactingExceptionReporterFilter"
    )
    assert loaded["DEFAULT_EXCEPTION_REPORTER"] == "config.error_reports.RedactingExceptionReporter"
    assert "config.security_headers.ContentSecurityPolicyMiddleware" in loaded["MIDDLEWARE"]


def test_https_settings_from_the_environment() -> None:
    loaded = settings_from(
        {
            "DJANGO_SECURE_HSTS_SECONDS": "31536000",
            "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
            "DJANGO_SECURE_HSTS_PRELOAD": "yes",
            "DJANGO_SECURE_SSL_REDIRECT": "true",
            "DJANGO_SECURE_PROXY_SSL_HEADER": "1",
            "DJANGO_SECURE_COOKIES": "1",
            "DJANGO_CSP": "default-src 'self'; report-uri /csp",
        }
    )
    assert loaded["SECURE_HSTS_SECONDS"] == 31536000
    assert loaded["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True and loaded["SECURE_HSTS_PRELOAD"] is True
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert loaded["SESSION_COOKIE_SECURE"] is True and loaded["CSRF_COOKIE_SECURE"] is True
    assert loaded["CONTENT_SECURITY_POLICY"] == "default-src 'self'; report-uri /csp"


def deploy_check(env: dict[str, str]) -> str:
    """`manage.py check --deploy` output with this environment."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONWARNINGS": "ignore", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout + result.stderr


def test_deploy_checks_see_the_https_settings() -> None:
    secret = {"DJANGO_SECRET_KEY": "k" * 60 + "-a-long-and-random-enough-secret"}
    bare = deploy_check(secret)
    assert "security.W004" in bare and "security.W008" in bare  # no HSTS, no SSL redirect
    hardened = deploy_check(
        {
            **secret,
            "DJANGO_SECURE_HSTS_SECONDS": "31536000",
            "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
            "DJANGO_SECURE_HSTS_PRELOAD": "1",
            "DJANGO_SECURE_SSL_REDIRECT": "1",
            "DJANGO_SECURE_COOKIES": "1",
        }
    )
    for check in ("W004", "W005", "W008", "W012", "W016", "W021"):
        assert f"security.{check}" not in hardened, hardened


async def test_hsts_and_https_redirect_follow_the_proxy_header(transactional_db: None) -> None:
    https = {
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    }
    with override_settings(**https):
        visitor = AsyncClient()  # builds its middleware chain now, with these settings
        plain = await visitor.get("/accounts/login/")
        proxied = await visitor.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/accounts/login/"
    assert proxied.status_code == 200 and proxied["Strict-Transport-Security"] == "max-age=3600"
    assert proxied["Content-Security-Policy"] == DEFAULT_POLICY


# ---------------------------------------------------------------- error reports


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://user:secret@host:6379/0", f"redis://user:{MASK}@host:6379/0"),
        ("rediss://:secret@host", f"rediss://:{MASK}@host"),
        ("unix://user:secret@/run/redis.sock?db=2", f"unix://user:{MASK}@/run/redis.sock?db=2"),
        ("postgres://app:se@cr:et@db/app", f"postgres://app:{MASK}@db/app"),
        ("mysql://root:secret@db/x", f"mysql://root:{MASK}@db/x"),
        ("redis://host/0?password=secret&db=1", f"redis://host/0?password={MASK}&db=1"),
        ("redis://host/0?x=1&amp;password=secret", f"redis://host/0?x=1&amp;password={MASK}"),
        (
            "see redis://u:secret@h/0, then mysql://m:secret2@h",
            f"see redis://u:{MASK}@h/0, then mysql://m:{MASK}@h",
        ),
        ("{'URL': \"redis://u:pa'ss@h\"}", f"{{'URL': \"redis://u:{MASK}@h\"}}"),
        ("redis://user:pass word@host", f"redis://user:{MASK}@host"),  # a whole value is one URL
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user@host/0", "redis://user@host/0"),
        ("https://user:visible@example.com", "https://user:visible@example.com"),
        ("no url here", "no url here"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def secret(name: str) -> str:
    """A password that is in no line of source (reports show the code around each frame)."""
    return f"{name}-s3cret"


SECRETS = {
    "BULLMQ_DASHBOARD": {
        "CONNECTIONS": {"default": {"URL": f"redis://ops:{secret('dash')}@redis.internal:6379/0"}}
    },
    "CHANNEL_LAYERS": {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {
                "hosts": [
                    f"rediss://:{secret('chan')}@redis.internal:6380/1",
                    (f"unix://:{secret('sock')}@/x", 1),
                ]
            },
        }
    },
    "REDIS_URL": f"redis://default:{secret('plain')}@cache:6379",
    "ANALYTICS_DSNS": {f"postgres://app:{secret('pg')}@db/app", f"mysql://app:{secret('my')}@db/app"},
    "QUERY_URL": f"redis://cache:6379/0?password={secret('query')}",
}
SECRET_NAMES = "dash chan sock plain pg my query local nested object bytes hidden message get"
SECRET_WORDS = [secret(name) for name in SECRET_NAMES.split()]


@dataclass
class Connection:
    url: str


def failing_view() -> None:
    """A frame whose locals hold connection URLs in every shape, then an exception."""
    url = f"redis://worker:{secret('local')}@redis.internal:6379/0"
    nested = {"hosts": [(f"unix://:{secret('nested')}@/run/redis.sock", 0)], "ok": "redis://redis.internal"}
    connection = Connection(f"rediss://svc:{secret('object')}@redis.internal")
    raw = f"redis://:{secret('bytes')}@h".encode()
    assert url and nested and connection and raw
    raise ConnectionError("Redis is not answering")


@sensitive_variables("token")
def failing_with_sensitive_variable() -> None:
    token = secret("hidden")
    assert token
    raise ValueError("boom")


def exception_info(function: Any) -> tuple[Any, Any, Any]:
    try:
        function()
    except Exception:
        return sys.exc_info()
    raise AssertionError("no exception")


@pytest.mark.parametrize("debug", [True, False])
def test_error_reports_never_show_a_connection_password(debug: bool) -> None:
    request = RequestFactory().get("/queues/")
    with override_settings(DEBUG=debug, **SECRETS):
        for function in (failing_view, failing_with_sensitive_variable):
            reporter = ExceptionReporter(request, *exception_info(function))  # Django's own reporter
            html, text = reporter.get_traceback_html(), reporter.get_traceback_text()
            for report in (html, text):
                leaked = [word for word in SECRET_WORDS if word in report]
                assert not leaked, leaked
            if function is failing_view:
                assert f"redis://ops:{MASK}@redis.internal:6379/0" in text  # the setting, masked
                assert f"redis://worker:{MASK}@redis.internal:6379/0" in html  # the local, masked
                assert "Connection(url=" in html and f"rediss://svc:{MASK}@redis.internal" in html
                assert "ConnectionError" in html and "Redis is not answering" in text


def test_the_debug_500_page_masks_the_exception_message_and_query_too() -> None:
    def fail() -> None:
        raise ConnectionError(f"cannot reach redis://ops:{secret('message')}@redis.internal:6379/0")

    request = RequestFactory().get("/queues/", {"url": f"redis://q:{secret('get')}@h"})
    with override_settings(DEBUG=True, **SECRETS):
        response = technical_500_response(request, *exception_info(fail))
    page = response.content.decode()
    assert f"cannot reach redis://ops:{MASK}@redis.internal" in page
    assert not [word for word in SECRET_WORDS if word in page]
