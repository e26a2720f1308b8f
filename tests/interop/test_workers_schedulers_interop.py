"""Job schedulers and workers of real Node BullMQ 6: what the dashboard shows is what Node's getters say,
and a scheduler removed through the dashboard is gone for Node too."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.operations import wait_all
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.interop.test_actions_interop import node
from tests.support.dashboard import dashboard_settings
from tests.support.node import INTEROP

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]
REPORTS = QueueRef("default", "bull", "reports")
FIELDS = ("name", "next", "pattern", "every", "tz", "limit", "iterationCount")


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    response = await client.post(url, data=json.dumps(params), content_type="application/json")
    await wait_all()
    return response


async def test_schedulers_made_by_node_show_as_node_reports_them(client: AsyncClient, redis_url: str) -> None:
    made = await node("schedulers.mjs", redis_url, "reports", "create")
    assert made["count"] == 2
    body = (await client.get(links.schedulers_api_url(REPORTS))).json()
    assert body["total"] == 2
    ours = {row["key"]: row for row in body["schedulers"]}
    for theirs in made["schedulers"]:
        row = ours[theirs["key"]]
        assert {field: row[field] for field in FIELDS} == {field: theirs.get(field) for field in FIELDS}
        assert row["template"]["data"] == theirs["template"]["data"]
    assert [row["key"] for row in body["schedulers"]] == [each["key"] for each in made["schedulers"]]
    nightly, pulse = ours["nightly"], ours["pulse"]
    assert (nightly["pattern"], nightly["tz"]) == ("0 30 3 * * *", "America/New_York")
    assert (pulse["every"], pulse["limit"]) == (60000, 3)
    # The newest job each scheduler made, named as BullMQ names them.
    assert nightly["latestJob"]["id"] == f"repeat:nightly:{nightly['next']}"
    assert nightly["latestJob"]["state"] == "delayed"
    html = (await client.get(links.schedulers_url(REPORTS))).content.decode()
    assert "0 30 3 * * *" in html and "America/New_York" in html and "every 1 min 0 s" in html
    assert links.job_url(REPORTS, nightly["latestJob"]["id"]).replace("&", "&amp;") in html


async def test_a_scheduler_removed_through_the_dashboard_is_gone_for_node(
    client: AsyncClient, staff_user: Any, redis_url: str, redis_client: Redis
) -> None:
    await node("schedulers.mjs", redis_url, "reports", "create")
    url = links.queue_action_url(REPORTS, "remove_scheduler")

    refused = await post(client, url, scheduler="nightly")
    assert refused.status_code == 403
    assert {
        each["key"] for each in (await node("schedulers.mjs", redis_url, "reports", "list"))["schedulers"]
    } == {
        "nightly",
        "pulse",
    }

    await staff_user.user_permissions.aadd(await Permission.objects.aget(codename="remove_job_scheduler"))
    allowed = AsyncClient()
    await allowed.aforce_login(staff_user)
    next_run = (await allowed.get(links.schedulers_api_url(REPORTS))).json()["schedulers"]
    nightly = next(row for row in next_run if row["key"] == "nightly")
    assert nightly["remove_url"] == url
    # The page's button posts the scheduler id as form data (hx-vals), as htmx sends it.
    response = await allowed.post(url, {"scheduler": "nightly"}, headers={"HX-Request": "true"})
    await wait_all()
    assert response.status_code == 200, response.content

    after = await node("schedulers.mjs", redis_url, "reports", "list")
    assert [each["key"] for each in after["schedulers"]] == ["pulse"] and after["count"] == 1
    assert not await redis_client.exists(f"bull:reports:repeat:nightly:{nightly['next']}")


class HeldWorker:
    """tests/interop/held_worker.mjs: a named Node worker holding one job until released."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def step(self, name: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(30):
            while True:
                line = await self.process.stdout.readline()
                assert line, f"held_worker.mjs ended before {name!r}"
                message = json.loads(line)
                if message.get("step") == name:
                    return dict(message)

    async def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"release\n")
        await self.process.stdin.drain()
        await self.step("done")
        async with asyncio.timeout(20):
            _out, err = await self.process.communicate()
        assert self.process.returncode == 0, err.decode()


@pytest.fixture
async def held_worker(redis_url: str) -> AsyncIterator[HeldWorker]:
    executable = shutil.which("node")
    assert executable, "Node 20 is required for the interop tests"
    process = await asyncio.create_subprocess_exec(
        executable,
        "held_worker.mjs",
        redis_url,
        "reports",
        "nightly-runner",
        cwd=INTEROP,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    worker = HeldWorker(process)
    await worker.step("active")
    yield worker
    if process.returncode is None:
        process.kill()
        await process.communicate()


async def test_a_node_worker_and_the_job_it_holds_are_listed(
    client: AsyncClient, redis_url: str, held_worker: HeldWorker
) -> None:
    body = (await client.get(links.workers_api_url(REPORTS))).json()
    assert body["problem"] is None
    (worker,) = body["workers"]
    assert worker["name"] == "nightly-runner"
    assert [job["id"] for job in worker["jobs"]] == ["held-1"]
    assert worker["jobs"][0]["processedBy"] == "nightly-runner"
    page = (await client.get(links.workers_url(REPORTS))).content.decode()
    assert "nightly-runner" in page and links.job_url(REPORTS, "held-1") in page
    overall = (await client.get(links.all_workers_url())).content.decode()
    assert "nightly-runner" in overall

    await held_worker.release()
    body = (await client.get(links.workers_api_url(REPORTS))).json()
    assert body["workers"] == [] and body["active"] == 0


async def test_workers_page_says_client_list_is_refused_by_the_acl(
    client: AsyncClient, redis_url: str, redis_client: Redis, held_worker: HeldWorker
) -> None:
    await redis_client.execute_command(
        "ACL", "SETUSER", "dashboard-no-client", "on", ">pw", "~*", "&*", "+@all", "-client|list"
    )
    limited = redis_url.replace("redis://", "redis://dashboard-no-client:pw@")
    try:
        with override_settings(BULLMQ_DASHBOARD=dashboard_settings(limited)):
            reset_directories()
            page = await client.get(links.workers_url(REPORTS))
            overall = await client.get(links.all_workers_url())
    finally:
        await redis_client.execute_command("ACL", "DELUSER", "dashboard-no-client")
    for response in (page, overall):
        assert response.status_code == 200
        assert b"may not run CLIENT LIST (its ACL denies it)" in response.content
        assert b"nightly-runner" not in response.content
    await held_worker.release()
