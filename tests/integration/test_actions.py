"""Actions through the API and htmx: what they change in Redis, what they refuse, what they audit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import links
from dashboard.models import AuditEntry
from queues.actions import QueueWriter
from queues.models import QueueRef
from tests.support.builders import add_jobs, process
from tests.support.urls import dashboard_url

pytestmark = pytest.mark.host_compatible

EMAIL = QueueRef("default", "bull", "email")


async def fail_all(url: str, count: int, name: str = "email") -> None:
    async def fail(job: Any, token: str) -> None:
        raise RuntimeError(f"boom {job.id}")

    await process(url, name, fail, until=count)


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


async def last_audit() -> AuditEntry:
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None
    return entry


async def test_retry_a_failed_job(admin_client: AsyncClient, redis_url: str, redis_client: Redis) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "f1"})])
    await fail_all(redis_url, 1)
    detail = (await admin_client.get(links.job_api_url(EMAIL, "f1"))).json()
    assert set(detail["actions"]) == {"retry", "remove", "duplicate", "update_data"}

    response = await post(admin_client, detail["actions"]["retry"])

    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "action": "retry",
        "done": 1,
        "skipped": 0,
        "message": "Job f1 moved from failed to waiting.",
    }
    assert await redis_client.lrange("bull:email:wait", 0, -1) == [b"f1"]
    assert await redis_client.zcard("bull:email:failed") == 0
    entry = await last_audit()
    assert (entry.action, entry.result, entry.queue, entry.job_ids, entry.username) == (
        "retry",
        "done",
        "bull:email",
        ["f1"],
        "root",
    )


async def test_a_job_removed_by_another_operator_after_the_state_check_is_a_409_not_a_second_removal(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BullMQ's removeJob answers 1 for a job that is gone: the other operator's removal lands between
    # this one's state check and its script, and only one of the two may say (and audit) it removed it.
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "r1"})])
    checked = QueueWriter.state

    async def checked_then_removed_by_another(self: QueueWriter, job_id: str) -> str:
        state = await checked(self, job_id)
        monkeypatch.setattr(QueueWriter, "state", checked)  # the other operator's check is plain
        other = await post(admin_client, links.job_action_url(EMAIL, "remove", job_id))
        assert other.status_code == 200
        return state

    monkeypatch.setattr(QueueWriter, "state", checked_then_removed_by_another)
    response = await post(admin_client, links.job_action_url(EMAIL, "remove", "r1"))

    assert response.status_code == 409 and "no longer exists" in response.json()["message"]
    assert not await redis_client.exists("bull:email:r1")
    entries = [(entry.result, entry.job_ids) async for entry in AuditEntry.objects.order_by("id")]
    assert entries == [("conflict", ["r1"]), ("done", ["r1"])]  # the outer entry is opened first


async def test_retry_of_a_job_that_moved_on_is_a_409_and_changes_nothing(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "w1"})])
    before = await redis_client.hgetall("bull:email:w1")
    response = await post(admin_client, links.job_action_url(EMAIL, "retry", "w1"))
    assert response.status_code == 409
    assert "waiting now" in response.json()["message"]
    assert await redis_client.hgetall("bull:email:w1") == before
    assert (await last_audit()).result == "conflict"
    gone = await post(admin_client, links.job_action_url(EMAIL, "remove", "nope"))
    assert gone.status_code == 409 and "no longer exists" in gone.json()["message"]


async def test_remove_promote_priority_and_edit(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(
        redis_url,
        "email",
        [
            ("send", {"a": 1}, {"jobId": "d1", "delay": 600_000}),
            ("send", {"a": 2}, {"jobId": "w1"}),
            ("send", {"a": 3}, {"jobId": "r1"}),
        ],
    )
    await redis_client.rpush("bull:email:r1:logs", "a log line")

    assert (await post(admin_client, links.job_action_url(EMAIL, "promote", "d1"))).status_code == 200
    assert await redis_client.zcard("bull:email:delayed") == 0
    again = await post(admin_client, links.job_action_url(EMAIL, "promote", "d1"))
    assert again.status_code == 409

    assert (
        await post(admin_client, links.job_action_url(EMAIL, "change_priority", "w1"), priority=5)
    ).status_code == 200
    assert await redis_client.zscore("bull:email:prioritized", "w1") is not None
    bad_priority = await post(
        admin_client, links.job_action_url(EMAIL, "change_priority", "w1"), priority="high"
    )
    assert bad_priority.status_code == 400

    edited = await admin_client.post(
        links.job_action_url(EMAIL, "update_data", "w1"), {"data": '{"a": 20, "note": "fixed"}'}
    )
    assert edited.status_code == 200
    assert json.loads(await redis_client.hget("bull:email:w1", "data")) == {"a": 20, "note": "fixed"}
    broken = await admin_client.post(links.job_action_url(EMAIL, "update_data", "w1"), {"data": '{"a": '})
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["message"] and "line 1" in broken.json()["message"]
    assert json.loads(await redis_client.hget("bull:email:w1", "data")) == {"a": 20, "note": "fixed"}

    assert (await post(admin_client, links.job_action_url(EMAIL, "remove", "r1"))).status_code == 200
    assert not await redis_client.exists("bull:email:r1", "bull:email:r1:logs")


async def test_duplicate_and_add(admin_client: AsyncClient, redis_url: str, redis_client: Redis) -> None:
    await add_jobs(redis_url, "email", [("send", {"to": "a@example.com"}, {"jobId": "orig", "attempts": 4})])
    copy = await post(
        admin_client, links.job_action_url(EMAIL, "duplicate", "orig"), data={"to": "b@example.com"}
    )
    assert copy.status_code == 200
    new_id = copy.json()["message"].rsplit(" ", 1)[-1].rstrip(".")
    assert json.loads(await redis_client.hget(f"bull:email:{new_id}", "data")) == {"to": "b@example.com"}
    assert json.loads(await redis_client.hget(f"bull:email:{new_id}", "opts"))["attempts"] == 4

    added = await post(
        admin_client,
        links.queue_action_url(EMAIL, "add"),
        name="report",
        data={"x": 1},
        delay=60_000,
        attempts=2,
    )
    assert added.status_code == 200, added.json()
    assert await redis_client.zcard("bull:email:delayed") == 1
    nameless = await post(admin_client, links.queue_action_url(EMAIL, "add"), data={})
    assert nameless.status_code == 400


async def test_pause_resume_and_the_actions_map(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    queue = (await admin_client.get(links.queue_api_url(EMAIL))).json()
    assert "pause" in queue["actions"] and "resume" not in queue["actions"]
    assert (await post(admin_client, queue["actions"]["pause"])).status_code == 200
    assert await redis_client.hget("bull:email:meta", "paused") == b"1"
    queue = (await admin_client.get(links.queue_api_url(EMAIL))).json()
    assert queue["paused"] is True and "resume" in queue["actions"]
    assert (await post(admin_client, queue["actions"]["resume"])).status_code == 200
    assert await redis_client.hget("bull:email:meta", "paused") is None


async def test_clean_with_grace_and_limit(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}) for _ in range(5)])
    await fail_all(redis_url, 5)
    url = links.queue_action_url(EMAIL, "clean")
    assert (await post(admin_client, url, state="failed")).status_code == 400  # grace and limit are required
    young = await post(admin_client, url, state="failed", grace=3_600_000, limit=0)
    assert young.json()["done"] == 0
    some = await post(admin_client, url, state="failed", grace=0, limit=2)
    assert some.json()["done"] == 2
    assert await redis_client.zcard("bull:email:failed") == 3
    rest = await post(admin_client, url, state="failed", grace=0, limit=0)
    assert rest.json()["done"] == 3


async def test_retry_all_in_batches(admin_client: AsyncClient, redis_url: str, redis_client: Redis) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {}) for _ in range(2500)])
    await fail_all(redis_url, 2500)
    response = await post(admin_client, links.queue_action_url(EMAIL, "retry_all"), state="failed")
    assert response.status_code == 200, response.json()
    assert response.json()["done"] == 2500
    assert await redis_client.zcard("bull:email:failed") == 0
    assert await redis_client.llen("bull:email:wait") == 2500


async def test_promote_all_drain_and_obliterate(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(
        redis_url, "email", [("send", {}, {"delay": 600_000}) for _ in range(3)] + [("send", {}, {})]
    )
    promoted = await post(admin_client, links.queue_action_url(EMAIL, "promote_all"))
    assert promoted.json()["done"] == 3
    assert await redis_client.llen("bull:email:wait") == 4
    drained = await post(admin_client, links.queue_action_url(EMAIL, "drain"))
    assert drained.json()["done"] == 4
    assert await redis_client.llen("bull:email:wait") == 0

    obliterate = links.queue_action_url(EMAIL, "obliterate")
    unconfirmed = await post(admin_client, obliterate, confirm="wrong")
    assert unconfirmed.status_code == 400 and await redis_client.exists("bull:email:meta")
    assert (await post(admin_client, obliterate, confirm="email")).status_code == 200
    assert [key async for key in redis_client.scan_iter(match="bull:email:*")] == []


async def test_bulk_retry_counts_done_and_skipped(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": f"j{i}"}) for i in range(4)])
    await fail_all(redis_url, 4)
    await post(admin_client, links.job_action_url(EMAIL, "retry", "j0"))  # another operator was faster
    response = await admin_client.post(
        links.bulk_url(EMAIL), {"action": "retry", "ids": ["j0", "j1", "j2", "missing"], "state": "failed"}
    )
    assert response.status_code == 200
    assert (response.json()["done"], response.json()["skipped"]) == (2, 2)
    assert await redis_client.zrange("bull:email:failed", 0, -1) == [b"j3"]
    everything = await admin_client.post(
        links.bulk_url(EMAIL), {"action": "remove", "all": "1", "state": "failed"}
    )
    assert everything.json()["done"] == 1
    entry = await last_audit()
    assert entry.action == "bulk_remove" and entry.count == 1


async def test_htmx_actions_answer_with_a_toast_and_a_refresh_event(
    admin_client: AsyncClient, redis_url: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "x"})])
    response = await admin_client.post(
        links.job_action_url(EMAIL, "promote", "x"), headers={"HX-Request": "true"}
    )
    assert response.status_code == 409
    assert response["HX-Retarget"] == "#bullmq-toasts"
    assert b'class="toast toast-error"' in response.content
    ok = await admin_client.post(links.queue_action_url(EMAIL, "pause"), headers={"HX-Request": "true"})
    assert ok.status_code == 200 and "bullmq-dashboard:changed" in ok["HX-Trigger"]
    assert b"Queue email paused." in ok.content


async def test_audit_page_lists_actions(admin_client: AsyncClient, redis_url: str) -> None:
    await add_jobs(redis_url, "email", [("<b>hostile</b>", {}, {"jobId": "h"})])
    await post(admin_client, links.queue_action_url(EMAIL, "pause"))
    await post(admin_client, links.job_action_url(EMAIL, "retry", "h"))
    page = await admin_client.get(dashboard_url("audit/"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "pause" in html and "conflict" in html and "bull:email" in html
    filtered = await admin_client.get(dashboard_url("audit/?result=conflict"))
    assert "Queue email paused." not in filtered.content.decode()


@pytest.mark.parametrize("reason", ["read-only", "read-only-queue"])
async def test_read_only_hides_actions_and_refuses(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis, settings: Any, reason: str
) -> None:
    await add_jobs(redis_url, "email", [("send", {}, {})])
    if reason == "read-only":
        settings.BULLMQ_DASHBOARD = {**settings.BULLMQ_DASHBOARD, "READ_ONLY": True}
    else:
        settings.BULLMQ_DASHBOARD = {**settings.BULLMQ_DASHBOARD, "READ_ONLY_QUEUES": ["bull:email"]}
    assert (await admin_client.get(links.queue_api_url(EMAIL))).json()["actions"] == {}
    page = await admin_client.get(links.queue_url(EMAIL))
    assert b"queue-actions" not in page.content
    response = await post(admin_client, links.queue_action_url(EMAIL, "pause"))
    assert response.status_code == 403
    assert await redis_client.hget("bull:email:meta", "paused") is None
    assert (await last_audit()).result == "refused"


async def test_resume_moves_every_job_of_a_legacy_paused_list(
    admin_client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    """A queue paused by BullMQ < 5 (its jobs in `paused`) that also has a `wait` list: BullMQ's resume
    script moves 7,000 jobs a call and says how many are left; the action calls it until none are."""
    await add_jobs(redis_url, "email", [("send", {}, {"jobId": "w1"})])
    ids = [f"p{index}" for index in range(7500)]
    for start in range(0, len(ids), 1000):
        await redis_client.rpush("bull:email:paused", *ids[start : start + 1000])
    await redis_client.hset("bull:email:meta", "paused", "1")
    response = await post(admin_client, links.queue_action_url(EMAIL, "resume"))
    assert response.status_code == 200
    assert await redis_client.llen("bull:email:paused") == 0
    assert await redis_client.llen("bull:email:wait") == 7501
    assert not await redis_client.hexists("bull:email:meta", "paused")
