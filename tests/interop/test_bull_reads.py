"""Queues of the older npm `bull` 4 (Bull 3/4 key layout), written by real Bull: found by discovery beside
BullMQ's, and read as Bull's own getters read them (counts, ids per state, job fields, logs)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.test import AsyncClient, override_settings

from dashboard.registry import reset_directories
from queues import kinds
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis
from tests.support.asgi import asgi_get
from tests.support.builders import add_jobs
from tests.support.bull import bull_state
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.urls import dashboard_url

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

# Bull's states; it has no prioritized or waiting-children state (prioritized jobs wait in `wait`).
BULL_STATES = ("waiting", "active", "paused", "delayed", "completed", "failed")


@pytest.fixture(scope="module")
def bull_redis() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    """A throwaway Redis holding tests/bull4's Bull state (and one BullMQ queue beside it)."""
    with ThrowawayRedis() as server:
        queues, getters = bull_state(server.url)
        yield server.url, queues, getters


@pytest.fixture
async def api(
    bull_redis: tuple[str, list[dict[str, Any]], dict[str, Any]], staff_user: Any
) -> AsyncIterator[Any]:
    url = bull_redis[0]
    await add_jobs(url, "modern", [("send", {}, {"jobId": "m1"})])
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(url)):
        reset_directories()
        client = AsyncClient()
        await client.aforce_login(staff_user)
        yield client
        await close_dashboard()
    reset_directories()


def bull_queue(getters: dict[str, Any], key: str) -> dict[str, Any]:
    for queue in getters["queues"]:
        if f"{queue['prefix']}:{queue['name']}" == key:
            return queue
    raise KeyError(key)


async def all_ids(api: AsyncClient, jobs_url: str, state: str) -> list[str]:
    ids: list[str] = []
    page = 1
    while True:
        body = (await api.get(jobs_url, {"state": state, "page": page, "per_page": 10})).json()
        ids.extend(job["id"] for job in body["jobs"])
        if page >= body["pages"]:
            return ids
        page += 1


async def listed(api: AsyncClient) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in (await api.get(dashboard_url("api/queues/"))).json()["queues"]}


async def test_bull_queues_are_found_beside_bullmq_ones_with_bulls_counts(
    api: AsyncClient, bull_redis: tuple[str, list[dict[str, Any]], dict[str, Any]]
) -> None:
    _, built, getters = bull_redis
    rows = await listed(api)
    expected = {f"{queue['prefix']}:{queue['name']}" for queue in built}
    assert set(rows) == expected | {"bull:modern"}
    assert kinds.is_bull(QueueRef("default", "bull", "legacy-main"))
    assert not kinds.is_bull(QueueRef("default", "bull", "modern"))
    for key in expected:
        ours, bull = rows[key], bull_queue(getters, key)
        assert {state: ours["counts"][state] for state in BULL_STATES} == bull["counts"], key
        assert ours["counts"]["prioritized"] == ours["counts"]["waiting-children"] == 0, key
        assert ours["paused"] is bull["isPaused"], key
        assert ours["kind"] == "bull", key
    assert rows["bull:modern"]["kind"] == "bullmq"


async def test_ids_per_state_in_bulls_order(
    api: AsyncClient, bull_redis: tuple[str, list[dict[str, Any]], dict[str, Any]]
) -> None:
    _, built, getters = bull_redis
    rows = await listed(api)
    checked = 0
    for queue in built:
        key = f"{queue['prefix']}:{queue['name']}"
        bull = bull_queue(getters, key)
        jobs_url = (await api.get(rows[key]["api_url"])).json()["jobs_url"]
        for state in BULL_STATES:
            # Newest first, as Bull's getJobs() without `asc` (and Bull Board) list them.
            assert await all_ids(api, jobs_url, state) == bull["idsNewestFirst"][state], (key, state)
            checked += len(bull["idsNewestFirst"][state])
    assert checked > 30


async def test_job_fields_match_bulls_jobs(
    api: AsyncClient, bull_redis: tuple[str, list[dict[str, Any]], dict[str, Any]]
) -> None:
    _, built, getters = bull_redis
    rows = await listed(api)
    seen_failed = seen_logs = 0
    for queue in built:
        key = f"{queue['prefix']}:{queue['name']}"
        bull = bull_queue(getters, key)
        jobs_url = (await api.get(rows[key]["api_url"])).json()["jobs_url"]
        for state in BULL_STATES:
            body = (await api.get(jobs_url, {"state": state, "per_page": 100})).json()
            for summary in body["jobs"]:
                job = bull["jobs"][summary["id"]]
                status, raw = await asgi_get(api, summary["api_url"])
                assert status == 200, summary["api_url"]
                ours = json.loads(raw)
                context = (key, summary["id"])
                assert ours["name"] == job["name"], context
                assert ours["data"] == job["data"], context
                assert ours["attemptsMade"] == job["attemptsMade"], context
                assert ours["timestamp"] == job["timestamp"], context
                assert ours["finishedOn"] == job["finishedOn"], context
                if job["failedReason"] is not None:
                    assert ours["failedReason"] == job["failedReason"], context
                    assert ours["stacktrace"] == job["stacktrace"], context
                    seen_failed += 1
                if state == "completed":
                    assert ours["returnvalue"] == job["returnvalue"], context
                assert ours["logs"]["count"] == job["logs"]["count"], context
                assert ours["logs"]["items"] == job["logs"]["items"], context
                seen_logs += bool(job["logs"]["count"])
    assert seen_failed >= 5 and seen_logs >= 5


async def test_the_queue_page_names_bull(
    api: AsyncClient, bull_redis: tuple[str, list[dict[str, Any]], dict[str, Any]]
) -> None:
    rows = await listed(api)
    page = (await api.get(rows["bull:legacy-main"]["html_url"])).content.decode()
    assert "Bull 3/4" in page
    # Prioritized jobs wait in Bull's `wait` list: the waiting tab lists them.
    assert "legacy-main" in page


async def test_bulls_repeatable_jobs_are_listed(
    api: AsyncClient, bull_redis: tuple[str, list[dict[str, Any]], dict[str, Any]]
) -> None:
    _, _, getters = bull_redis
    bull = bull_queue(getters, "bull:legacy-repeat")
    body = (await api.get(dashboard_url("api/queues/default/bull:legacy-repeat/schedulers/"))).json()
    ours = {row["key"]: row for row in body["schedulers"]}
    assert set(ours) == {job["key"] for job in bull["repeatable"]}
    for job in bull["repeatable"]:
        row = ours[job["key"]]
        assert (row["kind"], row["name"], row["next"]) == ("legacy", job["name"], job["next"]), row
        assert (row["every"], row["pattern"] or None, row["tz"] or None) == (
            job["every"],
            job["cron"],
            job["tz"],
        )
