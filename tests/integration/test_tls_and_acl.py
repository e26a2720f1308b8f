"""TLS (`rediss://` with a CA made here), least-privilege ACL users, and secrets that never show.

A real redis-server 7 with a TLS port; the ACL users are the lines of docs/redis-access.md, pasted as
they are. The dashboard is given the TLS port only; the test's own setup uses the plain port as the
default user.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.test import AsyncClient, override_settings

from dashboard import links, redis_access
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from dashboard.registry import reset_directories
from dashboard.throughput import sample_tick
from queues.models import QueueRef
from queues.sampling import sample_key
from queues.throwaway_redis import free_port
from tests.support.builders import add_jobs, process
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of, count_cell
from tests.support.snapshot import sync_snapshot
from tests.support.tls_redis import Certificates, TlsRedis, make_certificates
from tests.support.urls import dashboard_url, ws_path

EMAIL = QueueRef("default", "bull", "email")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "redis-access.md"
FULL_USER = "bullmq-dashboard"
VIEWER = "bullmq-dashboard-viewer"
PASSWORD = "Sup3r-S3cret/P@ss!w0rd"
# What a page says when a Redis command was refused or failed: none may show with a fitting ACL.
TROUBLE = ("NOPERM", "no permissions", "answered with an error", "unreachable", "can&#x27;t", "not allowed")


def acl_line(user: str) -> list[str]:
    """The documented `ACL SETUSER <user> …` line, as arguments, with the test's password."""
    for line in DOCS.read_text().splitlines():
        words = line.split()
        if words[:3] == ["ACL", "SETUSER", user]:
            return [f">{PASSWORD}" if word == ">CHANGE-ME" else word for word in words]
    raise AssertionError(f"docs/redis-access.md has no ACL SETUSER line for {user}")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(certificates: Certificates) -> Iterator[TlsRedis]:
    """A Redis with a TLS port; its clients need no certificate."""
    with TlsRedis(certificates) as tls_server:
        yield tls_server


@pytest.fixture
def admin(server: TlsRedis) -> Iterator[redis.Redis]:
    """The default user on the plain port; the test's users, keys and ACL log are gone afterwards."""
    client = redis.Redis.from_url(server.url)
    client.acl_log_reset()
    yield client
    client.flushall()
    for user in (FULL_USER, VIEWER):
        client.acl_deluser(user)
    client.acl_log_reset()
    client.close()


@contextmanager
def dashboard_on(url: str, layers: dict[str, Any] | None = None, **extra: Any) -> Iterator[None]:
    """The dashboard given this one connection URL, with fast live updates."""
    with override_settings(
        CHANNEL_LAYERS=layers or IN_MEMORY, BULLMQ_DASHBOARD=dashboard_settings(url, LIVE=FAST, **extra)
    ):
        reset_directories()
        redis_access.forget()
        try:
            yield
        finally:
            reset_directories()
            redis_access.forget()


def ca_query(certificates: Certificates) -> str:
    return f"ssl_ca_certs={quote(str(certificates.ca))}"


async def fail_all(url: str, count: int) -> None:
    async def fail(job: Any, token: str) -> None:
        raise RuntimeError(f"boom {job.id}")

    await process(url, "email", fail, until=count)


async def build_email_queue(url: str) -> None:
    """Through BullMQ: f1 failed, then w1 and w2 waiting and d1 delayed."""
    await add_jobs(url, "email", [("send", {"to": "a@example.com"}, {"jobId": "f1"})])
    await fail_all(url, 1)
    await add_jobs(
        url,
        "email",
        [
            ("send", {}, {"jobId": "w1"}),
            ("send", {}, {"jobId": "w2"}),
            ("send", {}, {"jobId": "d1", "delay": 600_000}),
        ],
    )


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


def reading_urls() -> list[str]:
    """Pages and API answers that read every kind of thing the dashboard reads."""
    return [
        dashboard_url(),
        links.queue_url(EMAIL),
        links.queue_list_url(EMAIL, "failed"),
        links.job_url(EMAIL, "f1"),
        links.workers_url(EMAIL),
        links.all_workers_url(),
        links.schedulers_url(EMAIL),
        links.queue_metrics_url(EMAIL),
        links.error_groups_url(EMAIL),
        links.all_error_groups_url(),
        links.search_url(EMAIL) + "?q=boom",
        links.lookup_api_url("f1"),
        dashboard_url("api/queues/"),
        links.queue_api_url(EMAIL),
        links.jobs_api_url(EMAIL) + "?state=waiting",
        links.job_api_url(EMAIL, "f1"),
        links.health_api_url(EMAIL),
        dashboard_url("metrics"),
    ]


async def read_everything(client: AsyncClient) -> dict[str, str]:
    """Every reading URL answered 200 without a sign of a refused command; their bodies by URL."""
    bodies: dict[str, str] = {}
    for url in reading_urls():
        response = await client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, (url, response.status_code, body[:500])
        assert not [word for word in TROUBLE if word in body], (url, body[:2000])
        bodies[url] = body
    return bodies


def dashboard_clients(admin: redis.Redis) -> list[dict[str, Any]]:
    return [client for client in admin.client_list() if client.get("name", "").startswith("bullmq-dashboard")]


# ------------------------------------------------------------------------------------------ TLS, full user


async def test_a_least_privilege_user_over_tls_reads_acts_and_gets_live_updates(
    server: TlsRedis, certificates: Certificates, admin: redis.Redis, superuser_client: AsyncClient
) -> None:
    admin.execute_command(*acl_line(FULL_USER))
    await build_email_queue(server.url)
    url = server.tls_url(FULL_USER, PASSWORD, query=ca_query(certificates))
    # The channel layer (channels-redis, several web processes) over TLS too, in a database of its own.
    layer_url = server.tls_url(query=ca_query(certificates)).replace("/0?", "/1?")
    layers = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [layer_url]}}
    }
    with dashboard_on(url, layers):
        bodies = await read_everything(superuser_client)
        assert "hx-post" in bodies[links.queue_url(EMAIL)]
        assert "read-only Redis user" not in bodies[links.queue_url(EMAIL)]
        detail = json.loads(bodies[links.job_api_url(EMAIL, "f1")])
        assert set(detail["actions"]) >= {"retry", "remove"}

        socket = LiveSocket(ws_path(links.queue_url(EMAIL)), cookie_of(superuser_client))
        try:
            assert (await socket.connect())[0]
            await socket.wait_for(count_cell(EMAIL, "waiting", 2))
            await add_jobs(server.url, "email", [("send", {}, {"jobId": "w3"})])
            await socket.wait_for(count_cell(EMAIL, "waiting", 3))

            retried = await post(superuser_client, detail["actions"]["retry"])
            assert retried.status_code == 200, retried.content
            assert admin.zscore("bull:email:failed", "f1") is None
            assert b"f1" in admin.lrange("bull:email:wait", 0, -1)
            await socket.wait_for(count_cell(EMAIL, "waiting", 4))

            paused = await post(superuser_client, links.queue_action_url(EMAIL, "pause"))
            assert paused.status_code == 200, paused.content
            assert admin.hget("bull:email:meta", "paused") == b"1"
            resumed = await post(superuser_client, links.queue_action_url(EMAIL, "resume"))
            assert resumed.status_code == 200, resumed.content
            assert admin.hget("bull:email:meta", "paused") is None
            promoted = await post(superuser_client, links.job_action_url(EMAIL, "promote", "d1"))
            assert promoted.status_code == 200, promoted.content
            assert admin.zscore("bull:email:delayed", "d1") is None
            removed = await post(superuser_client, links.job_action_url(EMAIL, "remove", "w2"))
            assert removed.status_code == 200, removed.content
            assert not admin.exists("bull:email:w2")

            # Every connection the dashboard holds now (readers, writer, the live watcher's XREAD
            # client) came in over TLS as the ACL user.
            clients = dashboard_clients(admin)
            names = {client["name"] for client in clients}
            assert {"bullmq-dashboard", "bullmq-dashboard-writer", "bullmq-dashboard-events"} <= names
            assert {(client["user"], client["laddr"]) for client in clients} == {
                (FULL_USER, f"127.0.0.1:{server.tls_port}")
            }
            # The throughput sampler writes the dashboard's own keys as the same user.
            sampling = dashboard_settings(url, LIVE=FAST, THROUGHPUT={"SAMPLING": True})
            with override_settings(CHANNEL_LAYERS=layers, BULLMQ_DASHBOARD=sampling):
                await sample_tick()
            assert admin.xlen(sample_key("bullmq-dashboard", EMAIL)) >= 1
            # Every other action, each through its own BullMQ script or command.
            for url, params in [
                (links.job_action_url(EMAIL, "update_data", "w1"), {"data": {"x": 1}}),
                (links.job_action_url(EMAIL, "change_priority", "w1"), {"priority": 5}),
                (links.job_action_url(EMAIL, "duplicate", "f1"), {"jobId": "f1-copy"}),
                (links.queue_action_url(EMAIL, "add"), {"name": "send", "data": {}, "delay": 60_000}),
                (links.queue_action_url(EMAIL, "add"), {"name": "send", "data": {}, "delay": 60_000}),
                (links.queue_action_url(EMAIL, "promote_oldest_delayed"), {}),
                (links.queue_action_url(EMAIL, "promote_all"), {}),
                (links.queue_action_url(EMAIL, "set_global_concurrency"), {"concurrency": 3}),
                (links.queue_action_url(EMAIL, "set_global_concurrency"), {"concurrency": 0}),
                (links.queue_action_url(EMAIL, "remove_rate_limit_key"), {}),
            ]:
                answer = await post(superuser_client, url, **params)
                assert answer.status_code == 200, (url, answer.content)
            await fail_all(server.url, admin.llen("bull:email:wait") + admin.zcard("bull:email:prioritized"))
            for url, params in [
                (links.queue_action_url(EMAIL, "retry_all"), {"state": "failed"}),
                (links.queue_action_url(EMAIL, "add"), {"name": "send", "data": {}, "delay": 60_000}),
                (links.queue_action_url(EMAIL, "drain"), {}),
                (links.queue_action_url(EMAIL, "add"), {"name": "send", "data": {}}),
            ]:
                answer = await post(superuser_client, url, **params)
                assert answer.status_code == 200, (url, answer.content)
            await fail_all(server.url, 1)
            for url, params in [
                (links.queue_action_url(EMAIL, "clean"), {"state": "failed", "grace": 0, "limit": 0}),
                (links.queue_action_url(EMAIL, "obliterate"), {"confirm": "email", "force": True}),
            ]:
                answer = await post(superuser_client, url, **params)
                assert answer.status_code == 200, (url, answer.content)
            assert not admin.exists("bull:email:meta")  # obliterated
        finally:
            await socket.close()
            layer = get_channel_layer()
            await layer.flush()
            await layer.close_pools()
    entries = [entry async for entry in AuditEntry.objects.order_by("id")]
    assert [(entry.action, entry.result) for entry in entries][:5] == [
        ("retry", "done"),
        ("pause", "done"),
        ("resume", "done"),
        ("promote", "done"),
        ("remove", "done"),
    ]
    assert {entry.result for entry in entries} == {"done"}, [model_to_dict(e) for e in entries]
    assert len(entries) == 21
    # Not one command of the dashboard was refused: the documented list is all it needs.
    assert admin.acl_log() == []


async def test_client_certificates_and_hostname_checks(
    certificates: Certificates, superuser_client: AsyncClient
) -> None:
    with TlsRedis(certificates, client_certificates=True) as server:
        await add_jobs(server.url, "email", [("send", {}, {"jobId": "w1"})])
        tls = {"ssl_ca_certs": str(certificates.ca)}
        client_cert = {
            **tls,
            "ssl_certfile": str(certificates.client_cert),
            "ssl_keyfile": str(certificates.client_key),
        }
        # The certificate names localhost too (subject alternative names): the hostname check passes.
        for host in ("127.0.0.1", "localhost"):
            settings = {"default": {"URL": server.tls_url(host=host), "OPTIONS": client_cert}}
            with dashboard_on(server.tls_url(), CONNECTIONS=settings):
                response = await superuser_client.get(links.queue_url(EMAIL))
                assert response.status_code == 200, response.content[:500]
                socket = LiveSocket(ws_path(links.queue_url(EMAIL)), cookie_of(superuser_client))
                try:
                    assert (await socket.connect())[0]
                    await socket.wait_for(count_cell(EMAIL, "waiting", 1))
                    paused = await post(superuser_client, links.queue_action_url(EMAIL, "pause"))
                    assert paused.status_code == 200, paused.content
                    resumed = await post(superuser_client, links.queue_action_url(EMAIL, "resume"))
                    assert resumed.status_code == 200, resumed.content
                finally:
                    await socket.close()
                    await wait_all()
                    await close_dashboard()
        # 127.0.0.2 is not named by the certificate: refused, unless the hostname check is turned off.
        settings = {
            "default": {
                "URL": server.tls_url(host="127.0.0.2"),
                "OPTIONS": {**client_cert, "ssl_check_hostname": False},
            }
        }
        with dashboard_on(server.tls_url(), CONNECTIONS=settings):
            response = await superuser_client.get(links.queue_url(EMAIL))
            assert response.status_code == 200, response.content[:500]
            await close_dashboard()
        # Without its certificate, trusting another CA, or at an address the certificate does not name,
        # the dashboard says Redis is unreachable.
        refused = {
            "no client certificate": ("127.0.0.1", tls),
            "another CA": ("127.0.0.1", {**client_cert, "ssl_ca_certs": str(certificates.other_ca)}),
            "another host": ("127.0.0.2", client_cert),
        }
        for why, (host, options) in refused.items():
            settings = {"default": {"URL": server.tls_url(host=host), "OPTIONS": options}}
            with dashboard_on(server.tls_url(), CONNECTIONS=settings):
                response = await superuser_client.get(links.queue_url(EMAIL))
                assert response.status_code == 503, (why, response.content[:500])
                assert "Redis is unreachable" in response.content.decode(), why
                await close_dashboard()


# ------------------------------------------------------------------------------------ read-only users


async def test_a_read_only_user_gets_a_read_only_dashboard(
    server: TlsRedis, certificates: Certificates, admin: redis.Redis, superuser_client: AsyncClient
) -> None:
    admin.execute_command(*acl_line(VIEWER))
    await build_email_queue(server.url)
    before = sync_snapshot(admin, "bull:*")
    with dashboard_on(server.tls_url(VIEWER, PASSWORD, query=ca_query(certificates))):
        bodies = await read_everything(superuser_client)
        queue_page = bodies[links.queue_url(EMAIL)]
        assert "read-only Redis user" in queue_page
        # The superuser may take every action, but none is offered: the Redis user could take none.
        assert [url for url, body in bodies.items() if "hx-post" in body] == []
        assert json.loads(bodies[links.job_api_url(EMAIL, "f1")])["actions"] == {}

        retried = await post(superuser_client, links.job_action_url(EMAIL, "retry", "f1"))
        assert retried.status_code == 403
        assert "read-only Redis user" in retried.json()["message"]
        assert "Nothing was changed" in retried.json()["message"]
        htmx = await superuser_client.post(
            links.queue_action_url(EMAIL, "pause"), headers={"HX-Request": "true"}
        )
        assert htmx.status_code == 403 and "read-only Redis user" in htmx.content.decode()
        assert sync_snapshot(admin, "bull:*") == before

        socket = LiveSocket(ws_path(links.queue_url(EMAIL)), cookie_of(superuser_client))
        try:
            assert (await socket.connect())[0]
            await socket.wait_for(count_cell(EMAIL, "waiting", 2))
            await add_jobs(server.url, "email", [("send", {}, {"jobId": "w3"})])
            await socket.wait_for(count_cell(EMAIL, "waiting", 3))
        finally:
            await socket.close()
    entries = [entry async for entry in AuditEntry.objects.order_by("id")]
    assert [(entry.action, entry.result) for entry in entries] == [("retry", "refused"), ("pause", "refused")]
    # Nothing was even tried: the dashboard asked Redis's ACL instead of running a write.
    assert admin.acl_log() == []


async def test_a_write_refused_by_an_acl_changed_meanwhile_is_answered_clearly(
    server: TlsRedis, certificates: Certificates, admin: redis.Redis, superuser_client: AsyncClient
) -> None:
    admin.execute_command(*acl_line(FULL_USER))
    await build_email_queue(server.url)
    with dashboard_on(server.tls_url(FULL_USER, PASSWORD, query=ca_query(certificates))):
        assert (
            "hx-post" in (await superuser_client.get(links.queue_url(EMAIL))).content.decode()
        )  # writable, kept a minute
        admin.execute_command("ACL", "SETUSER", FULL_USER, "-@write")
        retried = await post(superuser_client, links.job_action_url(EMAIL, "retry", "f1"))
        assert retried.status_code == 403, retried.content
        message = retried.json()["message"]
        assert "The dashboard's Redis user may not do this: its ACL denies it" in message
        assert admin.zscore("bull:email:failed", "f1") is not None
        paused = await post(superuser_client, links.queue_action_url(EMAIL, "pause"))
        assert paused.status_code == 403, paused.content
        assert admin.hget("bull:email:meta", "paused") is None
    results = [(entry.action, entry.result) async for entry in AuditEntry.objects.order_by("id")]
    assert [action for action, _ in results] == ["retry", "pause"]
    assert {result for _, result in results} <= {"refused", "failed"}
    assert {entry["reason"] for entry in admin.acl_log()} == {"command"}


# ------------------------------------------------------------------------------------------- secrets

# The password as written, as it appears percent-encoded in a URL, and a part of it.
NEEDLES = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD), "S3cret")
LOGGERS = ("", "dashboard", "bullmq_dashboard", "queues", "django", "daphne", "redis", "channels", "asyncio")


def leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def log_text(records: list[logging.LogRecord]) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in records)


async def everything_shown(client: AsyncClient) -> list[tuple[str, str]]:
    """Every page, error page, API and Prometheus answer, action answer and live push, as text."""
    shown: list[tuple[str, str]] = []
    for url in [
        *reading_urls(),
        dashboard_url("audit/"),
        dashboard_url("alerts/"),
        links.job_url(EMAIL, "nope"),
    ]:
        for headers in ({}, {"HX-Request": "true"}):
            response = await client.get(url, headers=headers)
            shown.append(
                (url, f"{response.status_code} {dict(response.headers)} {response.content.decode()}")
            )
    for url, params in [
        (links.job_action_url(EMAIL, "retry", "f1"), {}),
        (links.queue_action_url(EMAIL, "pause"), {}),
        (links.queue_action_url(EMAIL, "clean"), {"state": "failed", "grace": 0, "limit": 0}),
    ]:
        response = await post(client, url, **params)
        shown.append((url, f"{response.status_code} {response.content.decode()}"))
        response = await client.post(url, params, headers={"HX-Request": "true"})
        shown.append((url, f"{response.status_code} {dict(response.headers)} {response.content.decode()}"))
    for path in (ws_path(dashboard_url()), ws_path(links.queue_url(EMAIL))):
        socket = LiveSocket(path, cookie_of(client))
        try:
            accepted, _ = await socket.connect()
            if accepted:
                shown.append((path, "\n".join(await socket.drain(1.5))))
        finally:
            await socket.close()
    return shown


def check_output(extra_connections: dict[str, Any]) -> str:
    """What `manage.py check` prints for the configured connections plus some broken ones."""
    out, err = io.StringIO(), io.StringIO()
    settings = dashboard_settings("redis://127.0.0.1:1/0")
    with override_settings(BULLMQ_DASHBOARD={**settings, "CONNECTIONS": extra_connections}):
        try:
            call_command("check", stdout=out, stderr=err)
        except Exception as exc:  # SystemCheckError: its message is the report
            err.write(str(exc))
    return out.getvalue() + err.getvalue()


@pytest.mark.parametrize("how", ["wrong password", "wrong password over TLS", "nothing listening", "stopped"])
async def test_no_password_shows_in_pages_logs_answers_checks_or_the_audit(
    how: str,
    server: TlsRedis,
    certificates: Certificates,
    admin: redis.Redis,
    superuser_client: AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    await build_email_queue(server.url)
    admin.execute_command(
        *[word if not word.startswith(">") else ">another-password" for word in acl_line(FULL_USER)]
    )
    tls = ca_query(certificates)
    secret = quote(PASSWORD, safe="")
    own_server: TlsRedis | None = None
    if how == "wrong password":
        url = f"redis://{FULL_USER}:{secret}@127.0.0.1:{server.port}/0"
    elif how == "wrong password over TLS":
        url = server.tls_url(FULL_USER, PASSWORD, query=tls)
    elif how == "nothing listening":
        url = f"rediss://{FULL_USER}:{secret}@127.0.0.1:{free_port()}/0?{tls}"
    else:
        own_server = TlsRedis(certificates).start()
        own_admin = redis.Redis.from_url(own_server.url)
        own_admin.execute_command(*acl_line(FULL_USER))
        own_admin.close()
        await build_email_queue(own_server.url)
        url = own_server.tls_url(FULL_USER, PASSWORD, query=tls)
    shown: list[tuple[str, str]] = []
    try:
        with dashboard_on(url):
            if own_server is not None:
                await read_everything(superuser_client)  # it works, with pools and the live watcher connected
                socket = LiveSocket(ws_path(links.queue_url(EMAIL)), cookie_of(superuser_client))
                assert (await socket.connect())[0]
                await socket.wait_for(count_cell(EMAIL, "waiting", 2))
                own_server.stop()
                shown.append(("live", "\n".join(await socket.drain(2.0))))
                await socket.close()
            shown.extend(await everything_shown(superuser_client))
            await wait_all()
    finally:
        if own_server is not None:
            own_server.stop()
    assert leaks(url)  # the needles would find it
    statuses = {text.split(" ", 1)[0] for url, text in shown if url.startswith("/")}
    assert statuses & {"502", "503"}, statuses  # Redis was in the way, and said so
    said = "Redis refused the dashboard&#x27;s login" if "password" in how else "Redis is unreachable"
    assert any(said in text for _, text in shown), said
    assert not [(url, leaks(text)) for url, text in shown if leaks(text)]
    assert not leaks(log_text(caplog.records)), log_text(caplog.records)[-3000:]
    assert caplog.records  # what Redis refused was logged, without the password
    audit = [str(model_to_dict(entry)) async for entry in AuditEntry.objects.all()]
    assert audit and not leaks("\n".join(audit))
    report = check_output(
        {
            "default": {"URL": url},
            "badport": f"redis://{FULL_USER}:{secret}@127.0.0.1:99999/0",
            "notls": {"URL": f"redis://{FULL_USER}:{secret}@127.0.0.1/0?{tls}"},
            "noca": {
                "URL": url.replace("redis://", "rediss://"),
                "OPTIONS": {"ssl_ca_certs": "/nonexistent/ca.crt"},
            },
        }
    )
    assert "bullmq_dashboard.E003" in report and "bullmq_dashboard.E014" in report
    assert "/nonexistent/ca.crt" in report
    assert not leaks(report), report


# ------------------------------------------------------------------------------------- system check


def tls_errors(connection: Any) -> list[str]:
    from dashboard.checks import check_connection

    return [message.msg for message in check_connection("default", connection) if message.id.endswith("E014")]


def test_the_system_check_reports_tls_settings_that_cannot_work(certificates: Certificates) -> None:
    ca = str(certificates.ca)
    assert tls_errors({"URL": "rediss://127.0.0.1:6380/0", "OPTIONS": {"ssl_ca_certs": ca}}) == []
    assert tls_errors(f"rediss://127.0.0.1:6380/0?ssl_ca_certs={quote(ca)}") == []
    client = {"ssl_certfile": str(certificates.client_cert), "ssl_keyfile": str(certificates.client_key)}
    assert tls_errors({"URL": "rediss://127.0.0.1:6380/0", "OPTIONS": client}) == []
    assert (
        tls_errors(
            {"URL": "rediss://127.0.0.1:6380/0", "OPTIONS": {"ssl_ca_path": str(certificates.ca.parent)}}
        )
        == []
    )
    (missing,) = tls_errors({"URL": "rediss://127.0.0.1:6380/0", "OPTIONS": {"ssl_ca_certs": "/nope/ca.crt"}})
    assert "ssl_ca_certs" in missing and "/nope/ca.crt" in missing
    (in_query,) = tls_errors(
        f"rediss://u:{quote(PASSWORD, safe='')}@127.0.0.1:6380/0?ssl_keyfile=/nope/k.pem"
    )
    assert "ssl_keyfile" in in_query and not leaks(in_query)
    (a_directory,) = tls_errors(
        {"URL": "rediss://h/0", "OPTIONS": {"ssl_ca_certs": str(certificates.ca.parent)}}
    )
    assert "cannot be read" in a_directory
    (plain,) = tls_errors({"URL": "redis://127.0.0.1:6379/0", "OPTIONS": {"ssl_ca_certs": ca}})
    assert "not rediss://" in plain
    (not_a_dict,) = tls_errors({"URL": "rediss://127.0.0.1:6380/0", "OPTIONS": ["ssl_ca_certs", ca]})
    assert "must be a dict" in not_a_dict


async def test_read_only_key_patterns_are_refused_by_redis_and_said_so(
    server: TlsRedis, certificates: Certificates, admin: redis.Redis, superuser_client: AsyncClient
) -> None:
    # `%R~bull:*` instead of `~bull:*`: Redis counts EVALSHA's keys as written, so it refuses every
    # read script (docs/redis-access.md); the pages say so in Redis's words, and nothing crashes.
    line = [word.replace("~bull:*", "%R~bull:*") if word == "~bull:*" else word for word in acl_line(VIEWER)]
    admin.execute_command(*line)
    await build_email_queue(server.url)
    with dashboard_on(server.tls_url(VIEWER, PASSWORD, query=ca_query(certificates))):
        for url in (dashboard_url(), links.queue_url(EMAIL), links.job_api_url(EMAIL, "f1")):
            response = await superuser_client.get(url)
            assert response.status_code in (200, 502), (url, response.status_code)
            assert "no permissions to access one of the keys" in response.content.decode(), url


def test_the_settings_objects_keep_passwords_out_of_their_repr() -> None:
    from dashboard.conf import get_config

    connection = {
        "URL": f"rediss://{FULL_USER}:{quote(PASSWORD, safe='')}@127.0.0.1:6380/0",
        "OPTIONS": {"password": PASSWORD, "ssl_password": PASSWORD},
    }
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings("redis://x/0", CONNECTIONS={"default": connection})
    ):
        config = get_config()
        # What a log line, a debugger or an error report's frame variables would print of them.
        assert "127.0.0.1" not in repr(config.connections["default"])
        assert not leaks(repr(config)) and not leaks(repr(config.connections["default"]))
        assert leaks(str(config.connections["default"].options))  # the needles would find it
        assert not leaks(config.connections["default"].safe_url)
