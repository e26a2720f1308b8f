"""No job lost: real Node BullMQ 6 workers (tests/interop/torture.mjs) process 10,000 jobs with planned
failures, delays, priorities and retries (attempts + backoff), while two operators retry, promote,
remove, clean, pause/resume and bulk-act through the dashboard's HTTP API at the same time. Then every
job added is accounted for, once: in exactly one state in Redis, or removed by an audited action. Node's
getJobCounts agrees with the dashboard's counts, every action the operators made is one audit entry
with its outcome, and the events stream (every BullMQ script's record) agrees with the audit log.

The run is random with a printed seed; set NO_JOB_LOST_SEED to repeat one. Figures are printed (-s).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import audit, links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from queues.models import QueueRef
from queues.states import STATE_KEYS
from tests.support.dashboard import close_dashboard
from tests.support.node import INTEROP

pytestmark = [pytest.mark.interop]

QUEUE = "torture"
REF = QueueRef("default", "bull", QUEUE)
KEY = f"bull:{QUEUE}:"
JOBS = 10_000
BATCH = 100
BATCH_PAUSE_MS = 300
WORKERS = 2
CONCURRENCY = 25
# Delayed this long, a job is still delayed at the end unless an operator promotes it.
PARKED_MS = 3_600_000
# Kept under the dashboard's 120 actions a minute a user (dashboard.audit.ACTIONS_PER_MINUTE).
ACTIONS_PER_MINUTE = 100
HANG_GUARD = 150.0
EXPECTED_RESULT = {200: "done", 409: "conflict"}


def custom_id(rng: random.Random, i: int) -> str:
    """A custom id Node BullMQ accepts: no integer, and ':' only as two of them (three parts)."""
    return rng.choice([f"order {i}", f"tenant a:order:{i}", f"batch:{i}:retry me", f"report #{i} ü"])


def job_spec(rng: random.Random, i: int) -> list[Any]:
    """[name, data, opts] of one job: how it behaves is in its data (see torture.mjs)."""
    opts: dict[str, Any] = {}
    if rng.random() < 0.3:
        opts["jobId"] = custom_id(rng, i)
    when = rng.random()
    if when < 0.02:
        opts["delay"] = PARKED_MS
    elif when < 0.2:
        opts["delay"] = rng.randint(1, 1500)
    if rng.random() < 0.2:
        opts["priority"] = rng.randint(1, 10)
    attempts = rng.choice([1, 1, 2, 3, 4])
    if attempts > 1:
        # A backoff > 0 sends every automatic retry through `delayed`: only the dashboard's retries
        # move jobs from failed to wait, so the events stream can count them.
        kind = rng.choice(["fixed", "exponential"])
        opts |= {"attempts": attempts, "backoff": {"type": kind, "delay": rng.randint(1, 40)}}
    fail = rng.choices([0, 1, 2, 99], weights=[60, 15, 10, 15])[0]
    name = rng.choice(["send-email", "resize", "charge", "report"])
    return [name, {"i": i, "ms": rng.randint(0, 4), "fail": fail}, opts]


class NodeTorture:
    """torture.mjs running: its JSON lines in, its commands out."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.errors: list[str] = []
        self._stderr = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def start(cls, url: str, plan: dict[str, Any]) -> NodeTorture:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed; the interop tests need Node 20 (see README)")
        if not (INTEROP / "node_modules" / "bullmq").is_dir():
            pytest.fail("tests/interop/node_modules is missing: run `npm ci --prefix tests/interop`")
        process = await asyncio.create_subprocess_exec(
            node,
            "torture.mjs",
            url,
            QUEUE,
            cwd=INTEROP,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,  # the "produced" line holds 10,000 ids
        )
        torture = cls(process)
        await torture.send(json.dumps(plan))
        return torture

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.errors.append(line.decode(errors="replace").rstrip())

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def expect(self, step: str, within: float = HANG_GUARD) -> dict[str, Any]:
        """The next line Node prints, which must be `step`."""
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), within)
        if not raw:
            await self.process.wait()
            stderr = "\n".join(self.errors[-20:])
            pytest.fail(f"torture.mjs exited {self.process.returncode} before {step!r}:\n{stderr}")
        message = dict(json.loads(raw))
        assert message["step"] == step, message
        return message

    async def ask(self, command: str, step: str) -> dict[str, Any]:
        await self.send(command)
        return await self.expect(step)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._stderr.cancel()


@dataclass
class Made:
    """One action request an operator made, and what the dashboard answered."""

    operator: str
    audit_action: str
    kind: str
    status: int
    body: dict[str, Any]
    ids: list[str] = field(default_factory=list)


class Operator:
    """A logged-in superuser acting on the queue through the dashboard's HTTP API, as an API client
    does: its session, and the CSRF token from a page in X-CSRFToken (README, "JSON API")."""

    def __init__(self, user: Any, rng: random.Random, log: list[Made]) -> None:
        self.user = user
        self.name = user.get_username()
        self.client = AsyncClient(enforce_csrf_checks=True)
        self.csrf = ""
        self.rng = rng
        self.log = log
        self.recent: deque[float] = deque()
        self.resume_at: float | None = None

    async def log_in(self) -> None:
        await self.client.aforce_login(self.user)
        page = await self.client.get(links.queue_url(REF))
        assert page.status_code == 200
        self.csrf = page.cookies["csrftoken"].value

    async def ids_of(self, state: str, most: int) -> list[str]:
        """Up to `most` random ids from the first page of a state, as the dashboard lists it."""
        response = await self.client.get(links.jobs_api_url(REF), {"state": state, "per_page": 100})
        assert response.status_code == 200, response.content
        ids = [job["id"] for job in response.json()["jobs"]]
        return self.rng.sample(ids, min(most, len(ids)))

    async def post(
        self, url: str, audit_action: str, kind: str, targets: list[str] | None = None, **params: Any
    ) -> None:
        """POST an action (at most ACTIONS_PER_MINUTE a minute), follow a 202 to its end, log it."""
        while len(self.recent) >= ACTIONS_PER_MINUTE:
            wait = 60.5 - (time.monotonic() - self.recent[0])
            if wait <= 0:
                self.recent.popleft()
                continue
            await asyncio.sleep(wait)
        self.recent.append(time.monotonic())
        response = await self.client.post(
            url, data=json.dumps(params), content_type="application/json", headers={"X-CSRFToken": self.csrf}
        )
        status, body = response.status_code, response.json()
        deadline = time.monotonic() + HANG_GUARD
        while status == 202 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            polled = await self.client.get(body["operation_url"])
            status, body = polled.status_code, polled.json()
        self.log.append(Made(self.name, audit_action, kind, status, body, list(targets or [])))

    async def job_action(self, action: str, state: str) -> None:
        for job_id in await self.ids_of(state, 1):
            await self.post(links.job_action_url(REF, action, job_id), action, action, [job_id])

    async def bulk_ids(self, action: str, states: list[str]) -> None:
        ids = await self.ids_of(self.rng.choice(states), self.rng.randint(1, 25))
        if ids:
            kind = f"bulk_{action} ids"
            await self.post(links.bulk_url(REF), f"bulk_{action}", kind, ids, action=action, ids=ids)

    async def bulk_all(self, action: str, state: str) -> None:
        kind = f"bulk_{action} all {state}"
        await self.post(links.bulk_url(REF), f"bulk_{action}", kind, action=action, all="1", state=state)

    async def clean(self) -> None:
        state = self.rng.choice(["completed", "completed", "failed", "waiting", "delayed", "prioritized"])
        grace, limit = self.rng.choice([0, 200, 1000]), self.rng.randint(1, 400)
        url = links.queue_action_url(REF, "clean")
        await self.post(url, "clean", f"clean {state}", state=state, grace=grace, limit=limit)

    async def queue_action(self, action: str) -> None:
        await self.post(links.queue_action_url(REF, action), action, action)

    async def pause(self) -> None:
        await self.queue_action("pause")
        self.resume_at = time.monotonic() + self.rng.uniform(0.3, 1.5)

    async def act_once(self) -> None:
        if self.resume_at is not None and time.monotonic() >= self.resume_at:
            self.resume_at = None
            await self.queue_action("resume")
            return
        moves: list[tuple[int, Callable[[], Awaitable[None]]]] = [
            (14, lambda: self.job_action("retry", "failed")),
            (14, lambda: self.job_action("promote", "delayed")),
            (6, lambda: self.job_action("remove", self.rng.choice(["waiting", "delayed", "failed"]))),
            (3, lambda: self.job_action("remove", self.rng.choice(["completed", "prioritized", "active"]))),
            (8, lambda: self.bulk_ids("retry", ["failed"])),
            (6, lambda: self.bulk_ids("promote", ["delayed"])),
            (
                8,
                lambda: self.bulk_ids("remove", ["waiting", "prioritized", "delayed", "completed", "failed"]),
            ),
            (4, lambda: self.bulk_all("retry", "failed")),
            (1, lambda: self.bulk_all("promote", "delayed")),
            (1, lambda: self.bulk_all("remove", self.rng.choice(["completed", "failed"]))),
            (10, self.clean),
            (5 if self.resume_at is None else 0, self.pause),
        ]
        weights = [weight for weight, _ in moves]
        move = self.rng.choices([move for _, move in moves], weights)[0]
        await move()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.act_once()
            await asyncio.sleep(self.rng.uniform(0.05, 0.4))
        if self.resume_at is not None:
            await self.queue_action("resume")


async def members(redis: Redis) -> dict[str, list[str]]:
    """Every id in every state key, as Redis holds them (duplicates kept)."""
    found: dict[str, list[str]] = {}
    for state in STATE_KEYS:
        key = KEY + state.suffix
        raw = await (redis.lrange(key, 0, -1) if state.is_list else redis.zrange(key, 0, -1))
        found[state.name] = [value.decode() for value in raw]
    return found


async def settled(redis: Redis) -> bool:
    """Nothing waits, runs or is due within ten minutes (only parked jobs are delayed)."""
    soon = (int(time.time() * 1000) + 600_000) * 0x1000
    pipe = redis.pipeline(transaction=False)
    pipe.llen(KEY + "wait").llen(KEY + "active").zcard(KEY + "prioritized").zcount(KEY + "delayed", 0, soon)
    return not any(await pipe.execute())


async def events(redis: Redis) -> list[dict[str, str]]:
    """The queue's whole events stream."""
    entries: list[dict[str, str]] = []
    start = "-"
    while True:
        chunk = await redis.xrange(KEY + "events", start, "+", count=10_000)
        if not chunk:
            return entries
        entries.extend({k.decode(): v.decode() for k, v in fields.items()} for _, fields in chunk)
        start = "(" + chunk[-1][0].decode()


async def audited(log: list[Made], operators: list[str]) -> list[tuple[Made, AuditEntry]]:
    """Each action made is one audit entry with its outcome, in each operator's order; the pairs."""
    unclear = [made for made in log if made.status not in EXPECTED_RESULT]
    assert not unclear, [(made.kind, made.status, made.body["message"]) for made in unclear]
    entries = [entry async for entry in AuditEntry.objects.order_by("id")]
    assert len(entries) == len(log)
    pairs: list[tuple[Made, AuditEntry]] = []
    for operator in operators:
        made = [each for each in log if each.operator == operator]
        own = [entry for entry in entries if entry.username == operator]
        assert [(entry.action, entry.result, entry.count, entry.skipped) for entry in own] == [
            (each.audit_action, EXPECTED_RESULT[each.status], each.body["done"], each.body["skipped"])
            for each in made
        ]
        pairs.extend(zip(made, own, strict=True))
    for made, entry in pairs:
        if made.ids:  # job actions and bulk selections name what they did, out of what was asked
            done = entry.job_ids if entry.result == "done" else []
            assert len(done) == entry.count and set(done) <= set(made.ids), (made, entry.job_ids)
    return pairs


async def states_of(redis: Redis) -> dict[str, list[str]]:
    """Where each id is, read from every state key in Redis; an id in two places is a failure."""
    where: dict[str, list[str]] = {}
    for state, ids in (await members(redis)).items():
        for job_id in ids:
            where.setdefault(job_id, []).append(state)
    twice = {job_id: found for job_id, found in where.items() if len(found) > 1}
    assert not twice, f"{len(twice)} ids held twice: {list(twice.items())[:10]}"
    return where


def removes(made: Made) -> bool:
    """Whether an action removes jobs: remove, bulk remove (ids or all of a state), clean."""
    return "remove" in made.kind or made.kind.startswith("clean")


async def account(
    redis: Redis, added: list[str], where: dict[str, list[str]], pairs: list[tuple[Made, AuditEntry]]
) -> tuple[list[str], int]:
    """Every id added is in a state or removed by an audited action, once; the removed ids, and how
    many more were removed by entries that could only count them."""
    removed: list[str] = []
    unnamed = 0
    for made, entry in pairs:
        if entry.result == "done" and removes(made):
            removed.extend(entry.job_ids)
            if entry.count > len(entry.job_ids):
                # An entry keeps at most audit.MAX_IDS ids: a larger clean says how many, not which.
                assert len(entry.job_ids) == audit.MAX_IDS, (made, entry.count, len(entry.job_ids))
                unnamed += entry.count - len(entry.job_ids)
    assert len(removed) == len(set(removed)), "an id is in two removal entries"
    assert not set(removed) & set(where), "a removed id is still in a state"
    assert not (set(where) | set(removed)) - set(added), "ids nobody added"
    missing = set(added) - set(where) - set(removed)
    assert len(missing) == unnamed, f"{len(missing) - unnamed} jobs lost: {sorted(missing)[:10]}"
    pipe = redis.pipeline(transaction=False)
    for job_id in [*where, *removed]:
        pipe.exists(KEY + job_id)
    exists = await pipe.execute()
    assert all(exists[: len(where)]), "a state holds an id without its job hash"
    assert not any(exists[len(where) :]), "a removed job's hash is still there"
    return removed, unnamed


async def check_events(redis: Redis, added: list[str], pairs: list[tuple[Made, AuditEntry]]) -> int:
    """The events stream (each BullMQ script's own record) agrees with the audit log: the jobs removed
    one by one (removeJob), the counts cleaned (cleanJobsInSet) and retried (reprocessJob and
    moveJobsToWait, the only scripts here that move jobs from failed or completed to wait); returns
    the retried count."""
    stream = await events(redis)
    assert sum(event["event"] == "added" for event in stream) == len(added), "the stream was trimmed"
    done = [(made, entry) for made, entry in pairs if entry.result == "done"]
    one_by_one = {"remove", "bulk_remove ids"}
    assert sorted(event["jobId"] for event in stream if event["event"] == "removed") == sorted(
        job_id for made, entry in done if made.kind in one_by_one for job_id in entry.job_ids
    )
    cleaned = sum(int(event["count"]) for event in stream if event["event"] == "cleaned")
    assert cleaned == sum(
        entry.count for made, entry in done if removes(made) and made.kind not in one_by_one
    )
    retried = sum(
        event["event"] == "waiting" and event.get("prev") in ("failed", "completed") for event in stream
    )
    said = sum(entry.count for made, entry in done if "retry" in made.kind)
    assert retried == said, f"the events say {retried} jobs were retried, the audit log {said}"
    return retried


@pytest.fixture
async def operator_users(redis_url: str, superuser: Any, django_user_model: Any) -> AsyncIterator[list[Any]]:
    """Two superusers; the dashboard's background work and clients are stopped after the test."""
    second = await django_user_model.objects.acreate_superuser("root2", password="pw")
    yield [superuser, second]
    await wait_all()
    await close_dashboard()


async def test_no_job_is_lost_while_node_workers_run_and_operators_act(
    redis_url: str, redis_client: Redis, operator_users: list[Any]
) -> None:
    seed = int(os.environ.get("NO_JOB_LOST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nno-job-lost seed {seed} (NO_JOB_LOST_SEED={seed} repeats it)")
    rng = random.Random(seed)
    specs = [job_spec(rng, i) for i in range(JOBS)]
    plan = {
        "workers": WORKERS,
        "concurrency": CONCURRENCY,
        "pauseMs": BATCH_PAUSE_MS,
        "batches": [specs[start : start + BATCH] for start in range(0, JOBS, BATCH)],
    }
    log: list[Made] = []
    operators = [Operator(user, random.Random(seed + n), log) for n, user in enumerate(operator_users, 1)]

    started = time.monotonic()
    node = await NodeTorture.start(redis_url, plan)
    try:
        await node.expect("ready", within=30)
        for _ in range(100):  # the dashboard finds the queue by its meta key
            if await redis_client.exists(KEY + "meta"):
                break
            await asyncio.sleep(0.1)
        for operator in operators:
            await operator.log_in()
        stop = asyncio.Event()
        acting = [asyncio.create_task(operator.run(stop)) for operator in operators]
        produced = (await node.expect("produced"))["ids"]
        await asyncio.sleep(2)  # a little more acting while the last batches are processed
        stop.set()
        await asyncio.gather(*acting)
        acted = time.monotonic()

        boss = operators[0]
        await boss.queue_action("resume")
        deadline = time.monotonic() + HANG_GUARD
        while not await settled(redis_client):
            assert time.monotonic() < deadline, "the queue did not settle"
            await asyncio.sleep(0.25)
        await asyncio.sleep(0.5)
        assert await settled(redis_client)
        drained = time.monotonic()

        # A paused tail: jobs that stay waiting and prioritized, so every count is compared.
        await boss.queue_action("pause")
        tail_specs = [
            ["tail", {"i": JOBS + n}, {"jobId": f"tail:{n}:x y"} if n % 2 else {}] for n in range(30)
        ] + [["tail", {"i": JOBS + 30 + n}, {"priority": 1 + n % 5}] for n in range(20)]
        tail = (await node.ask("add " + json.dumps(tail_specs), "added"))["ids"]
        node_view = await node.ask("counts", "counts")
        ours = (await boss.client.get(links.queue_api_url(REF))).json()
        closed = await node.ask("close", "closed")
    finally:
        await node.stop()
    finished = time.monotonic()

    added = produced + tail
    assert len(added) == len(set(added)) == JOBS + len(tail_specs)
    assert node_view["isPaused"] is True and ours["paused"] is True
    assert node_view["counts"] == {key: ours["counts"][key] for key in node_view["counts"]}
    assert node_view["counts"]["waiting"] >= 30 and node_view["counts"]["prioritized"] >= 20

    pairs = await audited(log, [operator.name for operator in operators])
    where = await states_of(redis_client)
    removed, unnamed = await account(redis_client, added, where, pairs)
    retried = await check_events(redis_client, added, pairs)
    assert removed and retried, "a run that removed or retried nothing tests little"

    kinds = Counter(f"{made.kind} → {EXPECTED_RESULT[made.status]}" for made in log)
    final = Counter(found[0] for found in where.values())
    print(
        f"jobs {len(added)} ({JOBS} + {len(tail)} tail), {WORKERS} workers of concurrency {CONCURRENCY}, "
        f"processed by Node: {closed['processed']}\n"
        f"actions {len(log)} ({len(operators)} operators): "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        + f"\nremoved by audited actions: {len(removed)} named + {unnamed} counted only; "
        f"final states: {dict(final)}\n"
        f"time: acting {acted - started:.1f} s, settling {drained - acted:.1f} s, "
        f"total {finished - started:.1f} s"
    )
