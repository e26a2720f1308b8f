"""Actions on Bull 3/4 queues (npm `bull`), through Bull's own scripts: the state real Bull 4 built, the
dashboard's POSTs, the exact change in Redis, and what Bull's own getters (and a Bull worker) say after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import AsyncClient, override_settings
from redis.client import NEVER_DECODE

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.registry import reset_directories
from queues.bull_writer import BULL_ACTIONS, BULL_LUA, BullWriter, bull_source
from queues.models import QueueRef
from queues.throwaway_redis import ThrowawayRedis
from tests.support.bull import BULL4, build_bull, bull_built_script, bull_view, bull_work
from tests.support.dashboard import dashboard_settings
from tests.support.snapshot import sync_content

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

MAIN = QueueRef("default", "bull", "legacy-main")
PAUSED = QueueRef("default", "bull", "legacy-paused")
ACTIVE = QueueRef("default", "bull", "legacy-active")
REPEAT = QueueRef("default", "bull", "legacy-repeat")
WEIRD = "weird/id with space#hash?q=1&x ü 🚀"
# legacy-main's waiting jobs as Bull takes them, next first: lifo 21, then priorities 1, 5, 10, then FIFO.
WAITING = ["21", "17", "16", "18", "14", "15", "19", "20", WEIRD, "repeat-like:123:456", "24", "25"]
SCRIPTS = (
    "reprocessJob-6",
    "retryJobs-5",
    "removeJob-11",
    "promote-5",
    "pause-5",
    "cleanJobsInSet-3",
    "obliterate-2",
    "updateData-1",
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """One throwaway Redis for the module; each test builds Bull's state in it anew."""
    with ThrowawayRedis() as redis_server:
        yield redis_server.url


@pytest.fixture
def bull(server: str) -> Iterator[list[dict[str, Any]]]:
    """The state tests/bull4/build_bull_state.mjs builds with real Bull 4 (rebuilt for each test), and the
    dashboard pointed at it; the queues it built."""
    queues = build_bull(server)
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(server)):
        reset_directories()
        yield queues
    reset_directories()


@pytest.fixture
def admin(bull: list[dict[str, Any]], superuser_client: AsyncClient) -> AsyncClient:
    """A superuser on the dashboard (its clients closed before the settings change back)."""
    return superuser_client


@pytest.fixture
def raw(server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server, decode_responses=True)
    yield client
    client.close()


def view(url: str, queues: list[dict[str, Any]], queue: QueueRef) -> dict[str, Any]:
    """What Bull's getters say of `queue` now."""
    return bull_view(url, queues)[queue.key]


def snapshot(url: str, queue: QueueRef) -> dict[bytes, Any]:
    """Every key of the queue and its content (but `stalled-check`, which expires on its own)."""
    client = redis.Redis.from_url(url)
    try:
        return {
            key: sync_content(client, key)
            for key in client.scan_iter(match=f"{queue.key_prefix}*", count=1000)
            if not key.endswith(b":stalled-check")
        }
    finally:
        client.close()


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


async def last_audit() -> AuditEntry:
    entry = await AuditEntry.objects.order_by("-id").afirst()
    assert entry is not None
    return entry


async def job_action(client: AsyncClient, queue: QueueRef, action: str, job_id: str, **params: Any) -> Any:
    """POST the job action at the URL the job's own API answer gives (so it must be offered)."""
    detail = (await client.get(links.job_api_url(queue, job_id))).json()
    assert action in detail["actions"], (job_id, detail["actions"])
    return await post(client, detail["actions"][action], **params)


def test_the_vendored_scripts_are_bulls_own() -> None:
    commands = BULL4 / "node_modules" / "bull" / "lib" / "commands"
    for path in [*BULL_LUA.glob("*.lua"), *BULL_LUA.glob("includes/*.lua")]:
        assert path.read_bytes() == (commands / path.relative_to(BULL_LUA)).read_bytes(), path
    license_text = (BULL4 / "node_modules" / "bull" / "LICENSE.md").read_bytes()
    assert (BULL_LUA / "LICENSE").read_bytes() == license_text
    assert "`bull` 4.16.5" in (BULL_LUA / "README.md").read_text()
    assert json.loads((BULL4 / "node_modules" / "bull" / "package.json").read_text())["version"] == "4.16.5"
    for name in SCRIPTS:
        # What Bull itself sends (its build drops the blank lines) is what is sent here.
        ours = [line for line in bull_source(name).splitlines() if line.strip()]
        bulls = [line for line in bull_built_script(name).splitlines() if line.strip()]
        assert ours == bulls, name
        assert Path(BULL_LUA / f"{name}.lua").exists()


async def test_only_the_actions_of_bulls_scripts_are_offered(admin: AsyncClient) -> None:
    queue = (await admin.get(links.queue_api_url(MAIN))).json()
    assert queue["kind"] == "bull"
    assert set(queue["actions"]) == {
        "pause",
        "clean",
        "retry_all",
        "promote_all",
        "drain",
        "obliterate",
        "bulk",
    }
    paused = (await admin.get(links.queue_api_url(PAUSED))).json()
    assert set(paused["actions"]) == {"resume", "clean", "promote_all", "drain", "obliterate", "bulk"}
    offered = {
        "6": {"retry", "remove", "update_data"},  # failed
        "1": {"retry", "remove"},  # completed
        "10": {"remove", "promote", "update_data"},  # delayed
        "17": {"remove", "update_data"},  # waiting with a priority: no change_priority, no duplicate
        WEIRD: {"remove", "update_data"},
    }
    for job_id, actions in offered.items():
        detail = (await admin.get(links.job_api_url(MAIN, job_id))).json()
        assert set(detail["actions"]) == actions, job_id
        assert set(detail["actions"]) <= BULL_ACTIONS
    page = (await admin.get(links.queue_url(MAIN))).content.decode()
    assert links.queue_action_url(MAIN, "add") not in page
    assert links.queue_action_url(MAIN, "pause") in page


@pytest.mark.parametrize(
    ("scope", "action", "params"),
    [
        ("job", "change_priority", {"priority": 3}),
        ("job", "duplicate", {}),
        ("queue", "add", {"name": "send-email", "data": "{}"}),
        ("queue", "set_global_concurrency", {"concurrency": 5}),
        ("queue", "remove_rate_limit_key", {}),
        ("queue", "promote_oldest_delayed", {}),
        ("queue", "release_deduplication", {"dedup_id": "some-id"}),
        ("queue", "remove_scheduler", {"scheduler": "hourly-report::3600000"}),
    ],
)
async def test_actions_bull_has_no_script_for_are_refused_and_change_nothing(
    admin: AsyncClient, server: str, scope: str, action: str, params: dict[str, Any]
) -> None:
    before = {queue: snapshot(server, queue) for queue in (MAIN, REPEAT)}
    if scope == "job":
        url = links.job_action_url(MAIN, action, "14")
    else:
        url = links.queue_action_url(REPEAT if action == "remove_scheduler" else MAIN, action)

    response = await post(admin, url, **params)

    assert response.status_code == 400, response.content
    assert "Bull 3/4 queue" in response.json()["message"]
    assert {queue: snapshot(server, queue) for queue in (MAIN, REPEAT)} == before
    entry = await last_audit()
    assert (entry.action, entry.result) == (action, "invalid")


async def test_retry_a_failed_and_a_completed_job(
    admin: AsyncClient, server: str, raw: redis.Redis, bull: list[dict[str, Any]]
) -> None:
    before = raw.hgetall("bull:legacy-main:6")

    response = await job_action(admin, MAIN, "retry", "6")

    assert response.status_code == 200, response.content
    assert response.json()["message"] == "Job 6 moved from failed to waiting."
    assert raw.lindex("bull:legacy-main:wait", 0) == "6"  # Bull's LPUSH: the last to be taken
    assert raw.zscore("bull:legacy-main:failed", "6") is None
    after = raw.hgetall("bull:legacy-main:6")
    assert set(before) - set(after) == {"finishedOn", "processedOn", "failedReason"}
    assert set(after) - set(before) == {"retriedOn"}
    assert {name: after[name] for name in ("attemptsMade", "stacktrace", "data", "opts")} == {
        name: before[name] for name in ("attemptsMade", "stacktrace", "data", "opts")
    }
    entry = await last_audit()
    assert (entry.action, entry.result, entry.queue, entry.job_ids, entry.count) == (
        "retry",
        "done",
        "bull:legacy-main",
        ["6"],
        1,
    )
    assert (await job_action(admin, MAIN, "retry", "1")).status_code == 200

    bull_says = view(server, bull, MAIN)
    assert bull_says["ids"]["waiting"] == [*WAITING, "6", "1"]
    assert bull_says["ids"]["failed"] == ["9", "8", "7"]
    assert bull_says["ids"]["completed"] == ["5", "4", "3", "2"]
    assert bull_says["jobs"]["6"]["state"] == "waiting"
    assert bull_says["jobs"]["6"]["retriedOn"] is not None
    assert bull_says["jobs"]["1"]["returnvalue"] == {"delivered": True, "i": 1}

    again = await post(admin, links.job_action_url(MAIN, "retry", "6"))
    assert again.status_code == 409
    assert "waiting now" in again.json()["message"]
    assert (await last_audit()).result == "conflict"


async def test_a_job_another_operator_retried_meanwhile_is_a_409_and_its_hash_is_left_alone(
    admin: AsyncClient, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bull's reprocessJob clears a job's finishedOn and sets its retriedOn before it finds the job
    # missing from the failed set: the other operator's retry lands between this one's state check and
    # its script, which must then not run at all.
    read = BullWriter._opts
    seen: list[dict[Any, Any]] = []

    async def read_then_retried_by_another(self: BullWriter, job_id: str) -> dict[str, Any]:
        opts = await read(self, job_id)
        monkeypatch.setattr(BullWriter, "_opts", read)
        other = await post(admin, links.job_action_url(MAIN, "retry", job_id))
        assert other.status_code == 200
        seen.append(raw.hgetall(f"bull:legacy-main:{job_id}"))
        return opts

    monkeypatch.setattr(BullWriter, "_opts", read_then_retried_by_another)
    response = await post(admin, links.job_action_url(MAIN, "retry", "6"))

    assert response.status_code == 409, response.content
    assert "waiting now" in response.json()["message"]
    assert raw.hgetall("bull:legacy-main:6") == seen[0]
    assert raw.lrange("bull:legacy-main:wait", 0, -1).count("6") == 1
    entries = [(entry.result, entry.job_ids) async for entry in AuditEntry.objects.order_by("id")]
    assert entries == [("conflict", ["6"]), ("done", ["6"])]


async def test_bulk_retry_of_selected_jobs(admin: AsyncClient, raw: redis.Redis) -> None:
    response = await post(admin, links.bulk_url(MAIN), action="retry", ids=["7", "8", "14", "missing"])

    assert response.status_code == 200, response.content
    assert (response.json()["done"], response.json()["skipped"]) == (2, 2)
    assert raw.lrange("bull:legacy-main:wait", 0, 1) == ["8", "7"]
    assert raw.zrange("bull:legacy-main:failed", 0, -1) == ["6", "9"]


async def test_pause_retry_promote_and_resume_then_a_bull_worker_takes_the_jobs_in_order(
    admin: AsyncClient, server: str, raw: redis.Redis, bull: list[dict[str, Any]]
) -> None:
    wait = raw.lrange("bull:legacy-main:wait", 0, -1)

    paused = await post(admin, links.queue_action_url(MAIN, "pause"))

    assert paused.status_code == 200, paused.content
    assert not raw.exists("bull:legacy-main:wait")
    assert raw.lrange("bull:legacy-main:paused", 0, -1) == wait
    assert raw.get("bull:legacy-main:meta-paused") == "1"
    assert raw.hgetall("bull:legacy-main:meta") == {"paused": "1"}
    bull_says = view(server, bull, MAIN)
    assert bull_says["isPaused"] is True
    assert (bull_says["counts"]["waiting"], bull_says["counts"]["paused"]) == (0, 12)
    assert (await last_audit()).action == "pause"
    queue = (await admin.get(links.queue_api_url(MAIN))).json()
    assert "resume" in queue["actions"] and "pause" not in queue["actions"]

    # While paused, Bull's scripts put jobs into the paused list.
    assert (await job_action(admin, MAIN, "retry", "7")).status_code == 200
    assert (await job_action(admin, MAIN, "promote", "10")).status_code == 200
    assert raw.lrange("bull:legacy-main:paused", 0, 1) == ["10", "7"]
    assert not raw.exists("bull:legacy-main:wait")

    resumed = await post(admin, links.queue_action_url(MAIN, "resume"))

    assert resumed.status_code == 200, resumed.content
    assert not raw.exists("bull:legacy-main:paused")
    assert not raw.exists("bull:legacy-main:meta-paused")
    assert not raw.exists("bull:legacy-main:meta")
    bull_says = view(server, bull, MAIN)
    assert bull_says["isPaused"] is False
    expected = [*WAITING, "7", "10"]
    assert bull_says["ids"]["waiting"] == expected
    assert bull_work(server, "bull", "legacy-main", len(expected)) == expected
    bull_says = view(server, bull, MAIN)
    assert bull_says["counts"]["waiting"] == 0
    assert bull_says["jobs"]["7"]["returnvalue"] == {"worked": "7"}


async def test_pause_refuses_to_overwrite_a_paused_list_that_holds_jobs(
    admin: AsyncClient, server: str, raw: redis.Redis
) -> None:
    # A paused list beside a wait list (an old client pushed there): Bull's RENAME would lose one of them.
    raw.rpush("bull:legacy-main:paused", "14")
    before = snapshot(server, MAIN)

    response = await post(admin, links.queue_action_url(MAIN, "pause"))

    assert response.status_code == 409
    assert "overwrite" in response.json()["message"]
    assert snapshot(server, MAIN) == before


async def test_remove_hostile_ids_and_not_a_locked_active_job(
    admin: AsyncClient, server: str, raw: redis.Redis, bull: list[dict[str, Any]]
) -> None:
    for job_id in (WEIRD, "repeat-like:123:456", "17"):
        response = await job_action(admin, MAIN, "remove", job_id)
        assert response.status_code == 200, response.content
        assert response.json()["message"] == f"Job {job_id} removed."
        assert not raw.exists(f"bull:legacy-main:{job_id}")
    assert raw.zscore("bull:legacy-main:priority", "17") is None
    assert (await last_audit()).job_ids == ["17"]
    bull_says = view(server, bull, MAIN)
    assert bull_says["ids"]["waiting"] == [
        job_id for job_id in WAITING if job_id not in (WEIRD, "repeat-like:123:456", "17")
    ]
    assert bull_says["countsPerPriority"] == {"0": 7, "5": 1, "10": 1}

    before = snapshot(server, ACTIVE)
    locked = await job_action(admin, ACTIVE, "remove", "1")

    assert locked.status_code == 409
    assert locked.json()["message"] == "Job 1 is locked by a worker and was not removed."
    assert snapshot(server, ACTIVE) == before
    assert (await last_audit()).result == "conflict"
    assert view(server, bull, ACTIVE)["jobs"]["1"]["state"] == "active"

    gone = await post(admin, links.job_action_url(MAIN, "remove", WEIRD))
    assert gone.status_code == 409
    assert "no longer exists" in gone.json()["message"]


async def test_promote_a_delayed_job(
    admin: AsyncClient, server: str, raw: redis.Redis, bull: list[dict[str, Any]]
) -> None:
    response = await job_action(admin, MAIN, "promote", "11")

    assert response.status_code == 200, response.content
    assert raw.zscore("bull:legacy-main:delayed", "11") is None
    assert raw.lindex("bull:legacy-main:wait", 0) == "11"
    assert raw.hget("bull:legacy-main:11", "delay") == "0"
    bull_says = view(server, bull, MAIN)
    assert bull_says["ids"]["delayed"] == ["10", "12", "13"]
    assert bull_says["ids"]["waiting"] == [*WAITING, "11"]
    assert bull_says["jobs"]["11"]["delay"] == 0
    again = await post(admin, links.job_action_url(MAIN, "promote", "11"))
    assert again.status_code == 409
    assert "waiting now" in again.json()["message"]

    # A paused queue's delayed job goes into its paused list, with its priority (none here: at the head).
    assert (await job_action(admin, PAUSED, "promote", "6")).status_code == 200
    assert raw.lindex("bull:legacy-paused:paused", 0) == "6"
    assert view(server, bull, PAUSED)["jobs"]["6"]["state"] == "paused"


async def test_update_data(
    admin: AsyncClient, server: str, raw: redis.Redis, bull: list[dict[str, Any]]
) -> None:
    for job_id in (WEIRD, "6", "10"):
        response = await job_action(
            admin, MAIN, "update_data", job_id, data={"to": "ü@example.com", "n": [1]}
        )
        assert response.status_code == 200, response.content
        assert raw.hget(f"bull:legacy-main:{job_id}", "data") == '{"to":"ü@example.com","n":[1]}'
    jobs = view(server, bull, MAIN)["jobs"]
    assert all(jobs[job_id]["data"] == {"to": "ü@example.com", "n": [1]} for job_id in (WEIRD, "6", "10"))

    completed = await post(admin, links.job_action_url(MAIN, "update_data", "1"), data={"x": 1})
    assert completed.status_code == 409
    assert json.loads(str(raw.hget("bull:legacy-main:1", "data"))) == {"to": "user1@example.com", "i": 1}


async def test_clean_each_state(
    admin: AsyncClient, server: str, raw: redis.Redis, bull: list[dict[str, Any]]
) -> None:
    clean = links.queue_action_url(MAIN, "clean")

    oldest = await post(admin, clean, state="completed", grace=0, limit=2)

    assert oldest.status_code == 200, oldest.content
    assert oldest.json()["done"] == 2
    assert not raw.exists("bull:legacy-main:1", "bull:legacy-main:1:logs", "bull:legacy-main:2")
    entry = await last_audit()
    assert (entry.action, entry.result, entry.count, sorted(entry.job_ids)) == (
        "clean",
        "done",
        2,
        ["1", "2"],
    )
    assert entry.params == {"state": "completed", "grace": 0, "limit": 2}
    newer = await post(admin, clean, state="failed", grace=86_400_000, limit=0)
    assert newer.json()["done"] == 0 and "newer" in newer.json()["message"]
    failed = await post(admin, clean, state="failed", grace=0, limit=0)
    assert failed.json()["done"] == 4
    # The next 5 to be taken, from the tail of `wait` (Bull's limited clean of a list); their priorities go.
    waiting = await post(admin, clean, state="waiting", grace=0, limit=5)
    assert waiting.json()["done"] == 5
    assert raw.zcard("bull:legacy-main:priority") == 0

    # Bull's script finds no delayed job when given a limit (it takes the score for a time): a limit
    # below their number is refused rather than quietly removing none, or all.
    capped = await post(admin, clean, state="delayed", grace=0, limit=3)
    assert capped.status_code == 400
    assert "limit 0" in capped.json()["message"]
    assert raw.zcard("bull:legacy-main:delayed") == 4
    delayed = await post(admin, clean, state="delayed", grace=0, limit=1000)
    assert delayed.json()["done"] == 4
    prioritized = await post(admin, clean, state="prioritized", grace=0, limit=0)
    assert prioritized.status_code == 400

    bull_says = view(server, bull, MAIN)
    assert bull_says["ids"]["completed"] == ["5", "4", "3"]
    assert bull_says["ids"]["waiting"] == WAITING[5:]
    assert bull_says["counts"] == {
        "waiting": 7,
        "active": 0,
        "completed": 3,
        "failed": 0,
        "delayed": 0,
        "paused": 0,
    }

    # A paused queue's waiting jobs are in its paused list.
    paused = await post(admin, links.queue_action_url(PAUSED, "clean"), state="waiting", grace=0, limit=0)
    assert paused.json()["done"] == 5
    assert view(server, bull, PAUSED)["counts"]["paused"] == 0


async def test_retry_all_and_promote_all(
    admin: AsyncClient, server: str, raw: redis.Redis, bull: list[dict[str, Any]]
) -> None:
    # Members of the delayed set that no script may take: the name of a queue key, and bytes that are
    # not UTF-8 (written by another program). Bull's promote would ZREM them and then fail.
    raw.zadd("bull:legacy-main:delayed", {"wait": 1})
    raw.execute_command("ZADD", "bull:legacy-main:delayed", 2, b"\xff\xfe")

    retried = await post(admin, links.queue_action_url(MAIN, "retry_all"), state="failed")

    assert retried.status_code == 200, retried.content
    assert retried.json()["done"] == 4
    assert retried.json()["message"] == "Moved 4 failed jobs of legacy-main to waiting."
    entry = await last_audit()
    assert (entry.action, entry.count, entry.params) == ("retry_all", 4, {"state": "failed"})
    promoted = await post(admin, links.queue_action_url(MAIN, "promote_all"))
    assert promoted.status_code == 200, promoted.content
    assert (promoted.json()["done"], promoted.json()["skipped"]) == (4, 2)
    left = raw.execute_command("ZRANGE", "bull:legacy-main:delayed", 0, -1, **{NEVER_DECODE: True})
    assert left == [b"wait", b"\xff\xfe"]
    raw.delete("bull:legacy-main:delayed")  # Bull's getters would fail on them
    completed = await post(admin, links.queue_action_url(MAIN, "retry_all"), state="completed")
    assert completed.json()["done"] == 5

    bull_says = view(server, bull, MAIN)
    assert bull_says["counts"]["failed"] == bull_says["counts"]["completed"] == 0
    assert bull_says["counts"]["waiting"] == 12 + 4 + 4 + 5
    assert set(bull_says["ids"]["waiting"][12:]) == {str(number) for number in range(1, 14)}
    assert bull_says["jobs"]["10"]["delay"] == 0

    nothing = await post(admin, links.queue_action_url(MAIN, "retry_all"), state="failed")
    assert nothing.json()["done"] == 0 and "no failed jobs" in nothing.json()["message"]
    paused = await post(admin, links.queue_action_url(PAUSED, "promote_all"))
    assert paused.json()["done"] == 1
    assert raw.lindex("bull:legacy-paused:paused", 0) == "6"


async def test_drain(admin: AsyncClient, server: str, raw: redis.Redis, bull: list[dict[str, Any]]) -> None:
    kept = await post(admin, links.queue_action_url(MAIN, "drain"), keep_delayed=True)

    assert kept.status_code == 200, kept.content
    assert kept.json()["message"] == "Drained 12 jobs from legacy-main."
    assert not raw.exists("bull:legacy-main:wait", "bull:legacy-main:priority", f"bull:legacy-main:{WEIRD}")
    assert raw.zcard("bull:legacy-main:delayed") == 4
    everything = await post(admin, links.queue_action_url(MAIN, "drain"))
    assert everything.json()["done"] == 4
    bull_says = view(server, bull, MAIN)
    assert (bull_says["counts"]["waiting"], bull_says["counts"]["delayed"]) == (0, 0)
    assert (bull_says["counts"]["completed"], bull_says["counts"]["failed"]) == (5, 4)
    assert (await last_audit()).params == {"keep_delayed": False}

    paused = await post(admin, links.queue_action_url(PAUSED, "drain"))
    assert paused.json()["done"] == 6
    # The locked active job stays; the waiting one goes.
    active = await post(admin, links.queue_action_url(ACTIVE, "drain"))
    assert active.json()["done"] == 1
    bull_says = bull_view(server, bull)
    assert bull_says[PAUSED.key]["counts"]["paused"] == bull_says[PAUSED.key]["counts"]["delayed"] == 0
    assert bull_says[PAUSED.key]["isPaused"] is True
    assert bull_says[ACTIVE.key]["ids"]["active"] == ["1"]


async def test_obliterate(
    admin: AsyncClient, server: str, raw: redis.Redis, bull: list[dict[str, Any]]
) -> None:
    before = snapshot(server, ACTIVE)
    refused = await post(admin, links.queue_action_url(ACTIVE, "obliterate"), confirm="legacy-active")

    assert refused.status_code == 409
    assert "active jobs" in refused.json()["message"]
    assert snapshot(server, ACTIVE) == before  # not even paused

    forced = await post(
        admin, links.queue_action_url(ACTIVE, "obliterate"), confirm="legacy-active", force=True
    )
    assert forced.status_code == 200, forced.content
    assert snapshot(server, ACTIVE) == {}
    main = await post(admin, links.queue_action_url(MAIN, "obliterate"), confirm="legacy-main")
    assert main.status_code == 200, main.content
    assert main.json()["message"] == "Queue legacy-main obliterated."
    assert snapshot(server, MAIN) == {}
    entry = await last_audit()
    assert (entry.action, entry.result, entry.params) == ("obliterate", "done", {"force": False})

    bull_says = view(server, bull, MAIN)
    assert bull_says["isPaused"] is False
    assert set(bull_says["counts"].values()) == {0}
    assert view(server, bull, PAUSED)["counts"]["paused"] == 5  # another queue is untouched
