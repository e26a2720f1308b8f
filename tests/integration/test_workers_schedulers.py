"""Workers (CLIENT LIST) and job schedulers (the `repeat` zset): pages, API, the remove action, and
malformed or unusual Redis contents that must not break them."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bullmq import Queue, Worker
from django.contrib.auth.models import Permission
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings

pytestmark = pytest.mark.host_compatible

TICKS = QueueRef("default", "bull", "ticks")


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


async def upsert(url: str, scheduler_id: str, repeat: dict[str, Any], data: Any = None) -> None:
    queue = Queue("ticks", {"connection": url})
    try:
        await queue.upsertJobScheduler(scheduler_id, repeat, "tick", data)
    finally:
        await queue.close()


@pytest.fixture
async def named_connection(redis_url: str) -> AsyncIterator[Any]:
    """Open raw connections named as a worker names its own; closed after the test."""
    opened: list[Redis] = []

    async def connect(name: str) -> Redis:
        connection = Redis.from_url(redis_url, single_connection_client=True)
        await connection.execute_command("CLIENT", "SETNAME", name)
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        await connection.aclose()


def node_name(queue: str, worker: str = "", prefix: str = "bull") -> str:
    encoded = base64.b64encode(queue.encode()).decode()
    return f"{prefix}:{encoded}" + (f":w:{worker}" if worker else "")


# ---- schedulers ----


async def test_schedulers_page_and_api_show_every_field(client: AsyncClient, redis_url: str) -> None:
    await upsert(redis_url, "nightly", {"pattern": "0 3 * * *", "tz": "Europe/Berlin"}, {"report": "daily"})
    await upsert(redis_url, "pulse", {"every": 60_000, "limit": 5})

    page = await client.get(links.schedulers_url(TICKS))
    assert page.status_code == 200
    html = page.content.decode()
    assert "nightly" in html and "0 3 * * *" in html and "Europe/Berlin" in html and "pulse" in html
    assert 'aria-current="page">Schedulers' in html

    body = (await client.get(links.schedulers_api_url(TICKS))).json()
    assert body["total"] == 2
    rows = {row["key"]: row for row in body["schedulers"]}
    nightly, pulse = rows["nightly"], rows["pulse"]
    assert (nightly["pattern"], nightly["tz"], nightly["every"], nightly["name"]) == (
        "0 3 * * *",
        "Europe/Berlin",
        None,
        "tick",
    )
    assert nightly["template"]["data"] == {"report": "daily"}
    assert (pulse["every"], pulse["limit"], pulse["iterationCount"]) == (60_000, 5, 1)
    assert pulse["latestJob"]["id"] == f"repeat:pulse:{pulse['next']}"
    assert pulse["latestJob"]["state"] in {"waiting", "delayed"}
    assert body["schedulers"][0]["next"] <= body["schedulers"][1]["next"]  # soonest first
    assert nightly["remove_url"] is None  # a staff user without the permission


async def test_queue_json_links_workers_and_schedulers(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "ticks", [("tick", {}, {})])
    detail = (await client.get(links.queue_api_url(TICKS))).json()
    assert detail["workers_url"] == links.workers_api_url(TICKS)
    assert detail["schedulers_url"] == links.schedulers_api_url(TICKS)
    assert (await client.get(detail["workers_url"])).status_code == 200
    assert (await client.get(detail["schedulers_url"])).json()["total"] == 0


async def test_schedulers_are_paged(client: AsyncClient, redis_url: str) -> None:
    for index in range(12):
        await upsert(redis_url, f"s{index:02d}", {"every": 1000 * (index + 1)})
    first = (await client.get(links.schedulers_api_url(TICKS), {"per_page": 10})).json()
    second = (await client.get(links.schedulers_api_url(TICKS), {"per_page": 10, "page": 2})).json()
    assert (first["total"], first["pages"], len(first["schedulers"]), len(second["schedulers"])) == (
        12,
        2,
        10,
        2,
    )
    keys = {row["key"] for row in first["schedulers"] + second["schedulers"]}
    assert keys == {f"s{index:02d}" for index in range(12)}
    assert (await client.get(links.schedulers_api_url(TICKS), {"page": "x"})).status_code == 400


async def test_malformed_schedulers_do_not_break_the_page(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await upsert(redis_url, "good", {"every": 5000})
    key = "bull:ticks:repeat"
    await redis_client.zadd(
        key,
        {
            "wrong-types": 1,
            "only-name": 2,
            b"bad-\xff-id": 3,
            "string-key": 4,
            "huge": 5,
            "bad-json": 6,
            "report:rep-1:1893456000000:Europe/Paris:0 5 * * *": 7,
            "orphan": 8,
            "L" * 5000: 9,
        },
    )
    await redis_client.hset(
        f"{key}:wrong-types", mapping={"name": "x", "every": "soon", "ic": "many", "limit": "[]"}
    )
    await redis_client.hset(f"{key}:only-name", mapping={"name": "n"})
    await redis_client.hset(
        f"{key}:".encode() + b"bad-\xff-id", mapping={b"name": b"\xfe\xff", b"pattern": b"* \xff *"}
    )
    await redis_client.set(f"{key}:string-key", "not a hash")
    await redis_client.hset(f"{key}:huge", mapping={"name": "big", "every": "1000", "data": "x" * 100_000})
    await redis_client.hset(f"{key}:bad-json", mapping={"name": "j", "every": "1000", "data": "{not json"})

    page = await client.get(links.schedulers_url(TICKS))
    assert page.status_code == 200
    html = page.content.decode()
    assert "good" in html and "legacy repeatable" in html
    assert "every is &#x27;soon&#x27;, not a number." in html
    assert "not a hash" in html and "neither a pattern nor an every interval" in html
    assert "not valid UTF-8" in html and "100000 bytes long, not shown" in html

    body = (await client.get(links.schedulers_api_url(TICKS))).json()
    rows = {row["key"]: row for row in body["schedulers"]}
    assert body["total"] == 10 and len(rows) == 10
    long_row = rows["L" * 1024]
    assert long_row["kind"] == "broken" and "longer than 1 KB" in long_row["problem"]
    assert rows["wrong-types"]["every"] is None and rows["wrong-types"]["iterationCount"] is None
    legacy = rows["report:rep-1:1893456000000:Europe/Paris:0 5 * * *"]
    assert (legacy["kind"], legacy["name"], legacy["tz"], legacy["pattern"], legacy["endDate"]) == (
        "legacy",
        "report",
        "Europe/Paris",
        "0 5 * * *",
        1893456000000,
    )
    assert rows["orphan"]["kind"] == "broken"
    assert rows["bad-json"]["template"]["data"] == "{not json" and rows["bad-json"]["problem"]
    assert rows["huge"]["template"]["data"] is None


async def test_a_repeat_key_of_the_wrong_type_is_reported(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "ticks", [("tick", {}, {})])
    await redis_client.set("bull:ticks:repeat", "oops")
    page = await client.get(links.schedulers_url(TICKS))
    assert page.status_code == 200 and b"bull:ticks:repeat is a string" in page.content
    body = (await client.get(links.schedulers_api_url(TICKS))).json()
    assert body["problem"].startswith("bull:ticks:repeat is a string")


async def test_remove_scheduler_needs_its_permission(
    client: AsyncClient, staff_user: Any, redis_url: str, redis_client: Redis
) -> None:
    await upsert(redis_url, "pulse", {"pattern": "0 3 * * *"})  # its next job waits in delayed
    url = links.queue_action_url(TICKS, "remove_scheduler")

    refused = await post(client, url, scheduler="pulse")
    assert refused.status_code == 403
    assert await redis_client.zscore("bull:ticks:repeat", "pulse") is not None
    assert (await AuditEntry.objects.order_by("-id").afirst()).result == "refused"  # type: ignore[union-attr]

    permission = await Permission.objects.aget(codename="remove_job_scheduler")
    await staff_user.user_permissions.aadd(permission)
    client = AsyncClient()
    await client.aforce_login(staff_user)
    page = (await client.get(links.schedulers_url(TICKS))).content.decode()
    assert "hx-post" in page and "data-confirm=" in page
    assert "&quot;scheduler&quot;: &quot;pulse&quot;" in page
    next_job = f"bull:ticks:repeat:pulse:{int(await redis_client.zscore('bull:ticks:repeat', 'pulse') or 0)}"
    assert await redis_client.exists(next_job)

    missing = await post(client, url)
    assert missing.status_code == 400
    done = await post(client, url, scheduler="pulse")
    assert done.status_code == 200, done.content
    assert done.json()["message"] == "Job scheduler pulse removed from ticks."
    assert await redis_client.zscore("bull:ticks:repeat", "pulse") is None
    assert not await redis_client.exists("bull:ticks:repeat:pulse") and not await redis_client.exists(
        next_job
    )
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None and (entry.action, entry.result, entry.params) == (
        "remove_scheduler",
        "done",
        {"scheduler": "pulse"},
    )
    again = await post(client, url, scheduler="pulse")
    assert again.status_code == 409


async def test_remove_scheduler_is_refused_on_a_read_only_queue(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await upsert(redis_url, "pulse", {"every": 60_000})
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, READ_ONLY_QUEUES=["bull:ticks"])):
        reset_directories()
        body = (await admin_client.get(links.schedulers_api_url(TICKS))).json()
        assert body["schedulers"][0]["remove_url"] is None
        response = await post(
            admin_client, links.queue_action_url(TICKS, "remove_scheduler"), scheduler="pulse"
        )
    assert response.status_code == 403
    assert await redis_client.zscore("bull:ticks:repeat", "pulse") is not None


async def test_a_legacy_repeatable_is_not_removed_with_its_next_run_left_behind(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """BullMQ < 5 repeatables: removeJobScheduler deletes `repeat:<id>:<ms>`, but their next run is
    `repeat:<md5 of the key>:<ms>` and would stay queued while the dashboard said "removed"."""
    await upsert(redis_url, "pulse", {"pattern": "0 3 * * *"})  # makes the queue and its repeat zset
    legacy = "report::::0 5 * * *"
    await redis_client.zadd("bull:ticks:repeat", {legacy: 1893456000000})
    next_run = "repeat:5d41402abc4b2a76b9719d911017c592:1893456000000"
    await redis_client.hset(
        f"bull:ticks:{next_run}", mapping={"name": "report", "timestamp": 1, "data": "{}"}
    )
    await redis_client.zadd("bull:ticks:delayed", {next_run: 1})

    body = (await admin_client.get(links.schedulers_api_url(TICKS))).json()
    row = next(row for row in body["schedulers"] if row["key"] == legacy)
    assert row["kind"] == "legacy" and row["remove_url"] is None
    page = (await admin_client.get(links.schedulers_url(TICKS))).content.decode()
    assert "&quot;scheduler&quot;: &quot;report::::0 5 * * *&quot;" not in page
    response = await post(admin_client, links.queue_action_url(TICKS, "remove_scheduler"), scheduler=legacy)
    assert response.status_code == 400 and "removeRepeatableByKey" in response.content.decode(), (
        response.content
    )
    assert await redis_client.zscore("bull:ticks:repeat", legacy) is not None
    assert await redis_client.zscore("bull:ticks:delayed", next_run) is not None


# ---- workers ----


async def test_workers_of_node_and_python_names_and_what_they_hold(
    client: AsyncClient, redis_url: str, redis_client: Redis, named_connection: Any
) -> None:
    await add_jobs(redis_url, "ticks", [("tick", {}, {"jobId": "held-1"}), ("tick", {}, {"jobId": "held-2"})])
    await add_jobs(redis_url, "other", [("x", {}, {})])
    # Two active jobs, as moveToActive leaves them: one held by "node-a", one by a worker now gone.
    await redis_client.lmove("bull:ticks:wait", "bull:ticks:active", "RIGHT", "LEFT")
    await redis_client.lmove("bull:ticks:wait", "bull:ticks:active", "RIGHT", "LEFT")
    await redis_client.hset("bull:ticks:held-1", "pb", "node-a")
    await redis_client.hset("bull:ticks:held-2", "pb", "gone")
    await named_connection(node_name("ticks", "node-a"))
    await named_connection(node_name("ticks"))
    await named_connection("bull:ticks:w:py-worker")  # the PyPI package's form
    await named_connection(node_name("ticks") + ":qe")  # QueueEvents: not a worker
    await named_connection(node_name("other", "elsewhere"))

    body = (await client.get(links.workers_api_url(TICKS))).json()
    assert body["problem"] is None and body["capped"] is False
    workers = {worker["name"]: worker for worker in body["workers"]}
    assert set(workers) == {"node-a", None, "py-worker"}
    assert [job["id"] for job in workers["node-a"]["jobs"]] == ["held-1"]
    assert workers["node-a"]["address"].startswith("127.0.0.1:")
    assert workers["node-a"]["ageSeconds"] >= 0 and workers["node-a"]["idleSeconds"] >= 0
    assert [job["id"] for job in body["otherActiveJobs"]] == ["held-2"]
    assert body["active"] == 2

    page = (await client.get(links.workers_url(TICKS))).content.decode()
    assert "node-a" in page and "py-worker" in page and "held-1" in page and "elsewhere" not in page
    assert 'aria-current="page">Workers' in page

    overall = (await client.get(links.all_workers_url())).content.decode()
    assert "node-a" in overall and "elsewhere" in overall
    assert links.all_workers_url() in (await client.get(links.queue_url(TICKS))).content.decode()


async def test_a_python_bullmq_worker_is_listed(client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "ticks", [("tick", {}, {})])
    started = asyncio.Event()
    release = asyncio.Event()

    async def hold(job: Any, token: str) -> None:
        started.set()
        await release.wait()

    worker = Worker("ticks", hold, {"connection": redis_url, "name": "py-1", "autorun": False})
    runner = asyncio.ensure_future(worker.run())
    try:
        await asyncio.wait_for(started.wait(), 20)
        body = (await client.get(links.workers_api_url(TICKS))).json()
        names = [worker["name"] for worker in body["workers"]]
        assert "py-1" in names
    finally:
        release.set()
        await worker.close()
        await runner


async def test_workers_page_says_when_client_list_is_refused(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "ticks", [("tick", {}, {})])
    await redis_client.execute_command(
        "ACL", "SETUSER", "no-client-list", "on", ">pw", "~*", "&*", "+@all", "-client|list"
    )
    limited = redis_url.replace("redis://", "redis://no-client-list:pw@")
    try:
        with override_settings(BULLMQ_DASHBOARD=dashboard_settings(limited)):
            reset_directories()
            page = await client.get(links.workers_url(TICKS))
            overall = await client.get(links.all_workers_url())
            body = (await client.get(links.workers_api_url(TICKS))).json()
    finally:
        await redis_client.execute_command("ACL", "DELUSER", "no-client-list")
    assert page.status_code == 200 and overall.status_code == 200
    assert b"may not run CLIENT LIST (its ACL denies it)" in page.content
    assert b"may not run CLIENT LIST (its ACL denies it)" in overall.content
    assert "ACL denies it" in body["problem"] and body["workers"] == []
