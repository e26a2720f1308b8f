"""Regression tests of what an adversarial review of the reusable app (issue 11) broke: live pushes that
pinned megabytes per socket or rendered once per joiner, a cell let through by its digest alone,
languages a socket may ask for, NaN in job content, a LOGOUT_URL of another scheme, and a dashboard
mounted inside i18n_patterns. Each test is the attack as it was made, now answered."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from django.test import AsyncClient, override_settings

from dashboard import links
from dashboard.consumers import OverviewConsumer, catalog_languages
from dashboard.live import fragments
from dashboard.live.hub import LiveHub, LiveView, ViewKind, get_hub, overview_message
from queues.events import LiveUpdate
from queues.live.interest import Interest
from queues.models import QueueCounts, QueueRef
from queues.states import STATES
from tests.integration.test_languages import with_locale_middleware
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings
from tests.support.live import IN_MEMORY, LiveSocket, cookie_of
from tests.support.urls import dashboard_url

EMAIL = QueueRef("default", "bull", "email")
ALLOWED = QueueRef("default", "tenant-a", "emails")
FORBIDDEN = QueueRef("default", "tenant-b", "payroll-2026")


@pytest.mark.host_compatible
def test_the_hub_remembers_a_digest_of_what_it_sent_not_the_html() -> None:
    hub = LiveHub()
    log_pager = "<div id='log-pager'>" + "&amp;" * 2_000_000 + "</div>"  # 10 MB of escaped log lines
    assert hub._changed("job-group", {"log-pager": log_pager}) == {"log-pager": log_pager}
    assert hub._changed("job-group", {"log-pager": log_pager}) == {}  # unchanged: not sent again
    assert sum(len(mark) for mark in hub._sent.values()) <= 32


@pytest.mark.host_compatible
async def test_joining_viewers_of_one_page_share_one_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {
        queue: QueueCounts(queue, {state: 1 for state in STATES}, paused=False)
        for queue in (QueueRef("default", "bull", f"q{i}") for i in range(50))
    }
    update = LiveUpdate(counts=rows, changed=set())
    hub = LiveHub()
    for n in range(30):  # one user reconnecting 30 overview sockets at once
        hub._views[f"socket-{n}"] = LiveView(ViewKind.OVERVIEW)
        update.answered.append((f"socket-{n}", Interest(all_queues=True)))
    hub._views["socket-de"] = LiveView(ViewKind.OVERVIEW, language="de")
    update.answered.append(("socket-de", Interest(all_queues=True)))
    rendered: list[LiveView] = []
    snapshot = hub._snapshot

    def counting(view: LiveView, update: LiveUpdate, *rest: Any) -> Any:
        rendered.append(view)
        return snapshot(view, update, *rest)

    monkeypatch.setattr(hub, "_snapshot", counting)
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        await hub._publish(update)
    assert sorted(view.language for view in rendered) == ["", "de"]  # one per language, not 31


@pytest.mark.host_compatible
def test_sockets_speak_only_the_languages_the_dashboard_has_words_for() -> None:
    assert catalog_languages() == frozenset({"en", "de"})
    with override_settings(
        LANGUAGES=[("en", "English"), ("de", "German"), ("fr", "French"), ("ja", "Japanese")]
    ):
        answers = {}
        for wanted in ["de", "fr", "ja", "xx", "de-at"]:
            consumer = OverviewConsumer()
            consumer.scope = {"query_string": f"lang={wanted}".encode()}
            answers[wanted] = consumer.page_language()
    assert answers == {"de": "de", "fr": "", "ja": "", "xx": "", "de-at": "de"}


@pytest.mark.host_only
def test_inside_i18n_patterns_a_socket_keeps_its_page_language_for_the_links() -> None:
    """A /fr/ page of a host whose LANGUAGES has fr: the dashboard has no French words, but the links a
    push renders must keep the /fr/ prefix (LANGUAGE_CODE's links would move the reader to German)."""
    languages = [("de", "Deutsch"), ("fr", "Français"), ("en", "English")]
    with override_settings(
        LANGUAGE_CODE="de", LANGUAGES=languages, ROOT_URLCONF="tests.host_project.i18n_urls"
    ):
        consumer = OverviewConsumer()
        consumer.scope = {"query_string": b"lang=fr"}
        assert consumer.page_language() == "fr"
        consumer.scope = {"query_string": b"lang=ja"}  # not one of the host's languages
        assert consumer.page_language() == ""


@pytest.mark.host_compatible
def test_an_overview_cell_passes_by_the_queue_its_message_names_not_by_a_digest() -> None:
    consumer = OverviewConsumer()
    consumer.known = {fragments.queue_dom_id(ALLOWED)}
    consumer.visible = {}
    sent: list[str] = []

    async def send(text_data: str) -> None:
        sent.append(text_data)

    consumer.send = send  # type: ignore[method-assign]
    row = QueueCounts(FORBIDDEN, {state: 7 for state in STATES}, paused=False)
    message = overview_message({FORBIDDEN: "".join(fragments.overview_cells(row).values())})
    # What the hub would send if the digests of the two queues agreed (a second preimage of 48 bits):
    collided = {
        "type": "live.overview",
        "cells": {fragments.queue_dom_id(ALLOWED): next(iter(message["cells"].values()))},
        "queues": {fragments.queue_dom_id(ALLOWED): [FORBIDDEN.connection, FORBIDDEN.prefix, FORBIDDEN.name]},
    }
    asyncio.run(consumer.live_overview(collided))
    assert sent == []


def strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.host_compatible
async def test_nan_and_infinity_in_job_content_keep_the_api_json(
    client: AsyncClient, redis_url: str, redis_client: Any
) -> None:
    await add_jobs(redis_url, "email", [("ok", {"a": 1}, {"jobId": "fine"}), ("odd", {}, {"jobId": "nan"})])
    # What Python's json.dumps writes by default, e.g. a Python worker's own HSET:
    await redis_client.hset("bull:email:nan", "data", '{"ratio": NaN}')
    await redis_client.hset("bull:email:fine", "progress", "Infinity")
    for url in [
        links.jobs_api_url(EMAIL) + "?state=waiting",
        links.job_api_url(EMAIL, "nan"),
        links.job_api_url(EMAIL, "fine"),
    ]:
        response = await client.get(url)
        assert response.status_code == 200
        strict_json(response.content.decode())  # raises on NaN / Infinity literals


@pytest.mark.host_compatible
@pytest.mark.parametrize("logout_url", ["javascript:alert(document.cookie)", "data:text/html,<b>x</b>"])
async def test_a_logout_url_of_another_scheme_is_never_rendered(
    client: AsyncClient, redis_url: str, logout_url: str
) -> None:
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, LOGOUT_URL=logout_url)):
        html = (await client.get(dashboard_url())).content.decode()
    assert 'class="logout"' not in html and logout_url.split(":")[0] + ":" not in html


@pytest.mark.host_only
async def test_inside_i18n_patterns_each_language_gets_its_own_links_and_a_routed_socket(
    redis_url: str, client: AsyncClient
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "j1"})])
    with override_settings(
        ROOT_URLCONF="tests.host_project.i18n_urls",
        MIDDLEWARE=with_locale_middleware(),
        CHANNEL_LAYERS=IN_MEMORY,
        BULLMQ_DASHBOARD=dashboard_settings(redis_url),
    ):
        german = (
            await client.get("/de/ops/queues/default/bull:email/", headers={"Accept-Language": "de"})
        ).content
        english = (
            await client.get("/ops/queues/default/bull:email/", headers={"Accept-Language": "en"})
        ).content
        pages = {"de": german.decode(), "en": english.decode()}
        sockets = {
            lang: re.search(r'ws-connect="([^"]+)"', html)[1].replace("&amp;", "&")
            for lang, html in pages.items()
        }
        socket = LiveSocket(sockets["de"], cookie_of(client))
        outcome = await socket.connect()
        await socket.close()
        await get_hub().shutdown()
    assert re.search(r'href="/de/ops/queues/default/bull:email/job/\?id=j1"', pages["de"])
    assert re.search(r'href="/ops/queues/default/bull:email/job/\?id=j1"', pages["en"])  # not the German one
    for lang, socket in sockets.items():  # unprefixed (asgi.py routes one mount), in the page's language
        assert socket.startswith("/ops/queues/ws/default/bull:email/?state=waiting&")
        assert socket.endswith("&lang=de" if lang == "de" else "&lang=en-us")
    assert outcome[0] is True
