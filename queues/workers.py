"""Workers connected to queues: one `CLIENT LIST` per connection and request, read for BullMQ's names.

A BullMQ worker names its blocking connection with CLIENT SETNAME. Node BullMQ (createRedisBackend)
writes `<prefix>:<base64(queue name)>`, followed by `:w:<worker name>` when the worker was given a
name; the PyPI `bullmq` package writes the same with the plain queue name (`<prefix>:<queue name>`).
Node's and Python's `getWorkers` match a client name equal to that prefix or starting with it and
`:w:`; so does this module, for every queue of a page from the same one CLIENT LIST.

CLIENT LIST cannot be asked for part of its answer: on a Redis with 10k clients it is megabytes. What
is parsed and kept is capped (MAX_CLIENT_LIST_BYTES, MAX_WORKERS) and the result says so when a cap
was reached. Managed Redis services often disable the command and ACLs may deny it: that is reported
as a `problem`, not raised.

The jobs a worker holds are the queue's active jobs whose `pb` (processed by) field names it; at
most MAX_HELD_JOBS active jobs per queue are read, by a read-only script (queues/lua/worker_jobs.lua).
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoPermissionError, ResponseError

from queues.connections import UNREACHABLE_NODE, is_cluster
from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.parsing import identifier, integer, text
from queues.scripts import run_pipeline, script

WORKER_JOBS = script("worker_jobs")

# What one request parses of CLIENT LIST's answer, and how many worker connections it keeps.
MAX_CLIENT_LIST_BYTES = 4 * 1024 * 1024
MAX_WORKERS = 500
# Active jobs read per queue to find the jobs workers hold, and the bytes of their ids together.
MAX_HELD_JOBS = 100
HELD_ID_BUDGET = 256 * 1024
# Longer `pb` / `name` values are not read.
HELD_FIELD_BYTES = 1024
# The worker name part of a client name: `<queue client name>:w:<worker name>`.
WORKER_INFIX = ":w:"
NAME_FIELD = re.compile(rb"(?:^| )name=(\S*)")


@dataclass(frozen=True)
class HeldJob:
    """An active job and the worker name its `pb` field gives (empty when the worker had no name)."""

    id: str
    name: str
    processed_by: str
    processed_on: int | None
    # False when the id is not UTF-8 (it is shown, not linked).
    addressable: bool = True


@dataclass(frozen=True)
class Worker:
    """One worker connection of a queue, as CLIENT LIST shows it."""

    queue: QueueRef
    # The worker's name (after `:w:`), "" for a worker started without one.
    name: str
    client_name: str
    client_id: str
    address: str
    age_seconds: int | None
    idle_seconds: int | None
    library: str = ""
    # Active jobs whose `pb` names this worker (unnamed workers hold none that can be told apart).
    jobs: tuple[HeldJob, ...] = ()


@dataclass(frozen=True)
class QueueWorkers:
    """The workers of one queue and its active jobs that could not be matched to a listed worker."""

    queue: QueueRef
    workers: tuple[Worker, ...] = ()
    # Active jobs (of those read) not held by any listed worker: an unnamed worker's, or a worker's
    # whose connection is gone (the job will stall).
    other_jobs: tuple[HeldJob, ...] = ()
    active: int = 0
    # Active jobs that were not read (over MAX_HELD_JOBS or the id budget).
    active_not_read: int = 0
    problem: str = ""


@dataclass(frozen=True)
class WorkerReport:
    """What one connection's CLIENT LIST says about the workers of some of its queues."""

    queues: tuple[QueueWorkers, ...] = ()
    # Why workers could not be listed at all (CLIENT LIST refused), or "".
    problem: str = ""
    # True when CLIENT LIST's answer was larger than what is parsed, or more workers matched than kept.
    capped: bool = False
    clients_parsed: int = 0

    @property
    def worker_count(self) -> int:
        """Worker connections listed over all queues."""
        return sum(len(each.workers) for each in self.queues)

    def of(self, queue: QueueRef) -> QueueWorkers:
        """The workers of one queue (none when it was not asked for)."""
        return self._by_queue.get(queue) or QueueWorkers(queue)

    @cached_property
    def _by_queue(self) -> dict[QueueRef, QueueWorkers]:
        # A scrape asks for each of thousands of queues: a lookup, not a walk of the tuple each time.
        return {each.queue: each for each in self.queues}


@dataclass
class _Matched:
    workers: dict[QueueRef, list[Worker]] = field(default_factory=dict)
    capped: bool = False
    parsed: int = 0


def client_names(queue: QueueRef) -> tuple[str, str]:
    """The client names a worker of this queue sets: Node BullMQ's (base64 queue name) and the PyPI
    package's (plain queue name)."""
    encoded = base64.b64encode(queue.name.encode("utf-8", "surrogatepass")).decode("ascii")
    return f"{queue.prefix}:{encoded}", queue.key


def _wanted(queues: Iterable[QueueRef]) -> dict[str, list[QueueRef]]:
    wanted: dict[str, list[QueueRef]] = {}
    for queue in queues:
        for name in dict.fromkeys(client_names(queue)):
            wanted.setdefault(name, []).append(queue)
    return wanted


def match_client_name(name: str, wanted: dict[str, list[QueueRef]]) -> list[tuple[QueueRef, str]]:
    """The queues (and worker name) a client name belongs to, as BullMQ's getWorkers matches it."""
    exact = wanted.get(name)
    if exact:
        return [(queue, "") for queue in exact]
    start = 0
    while True:
        at = name.find(WORKER_INFIX, start)
        if at < 0:
            return []
        found = wanted.get(name[:at])
        if found:
            return [(queue, name[at + len(WORKER_INFIX) :]) for queue in found]
        start = at + 1


def _fields(line: bytes) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in line.split(b" "):
        key, sep, value = pair.partition(b"=")
        if sep:
            result[text(key)] = text(value)
    return result


def parse_client_list(raw: bytes, queues: Iterable[QueueRef], max_workers: int = MAX_WORKERS) -> _Matched:
    """The worker connections of `queues` in CLIENT LIST's answer, at most `max_workers` of them and
    from its first MAX_CLIENT_LIST_BYTES."""
    wanted = _wanted(queues)
    matched = _Matched()
    if len(raw) > MAX_CLIENT_LIST_BYTES:
        raw = raw[: raw.rfind(b"\n", 0, MAX_CLIENT_LIST_BYTES) + 1]
        matched.capped = True
    kept = 0
    for line in raw.splitlines():
        if not line:
            continue
        matched.parsed += 1
        found = NAME_FIELD.search(line)
        if found is None or not found[1]:
            continue
        name, _utf8 = identifier(found[1])
        owners = match_client_name(name, wanted)
        if not owners:
            continue
        fields = _fields(line)
        for queue, worker_name in owners:
            if kept >= max_workers:
                matched.capped = True
                return matched
            library = " ".join(
                part for part in (fields.get("lib-name", ""), fields.get("lib-ver", "")) if part
            )
            matched.workers.setdefault(queue, []).append(
                Worker(
                    queue=queue,
                    name=worker_name,
                    client_name=name,
                    client_id=fields.get("id", ""),
                    address=fields.get("addr", ""),
                    age_seconds=integer(fields.get("age")),
                    idle_seconds=integer(fields.get("idle")),
                    library=library,
                )
            )
            kept += 1
    return matched


def client_list_problem(exc: ResponseError) -> str:
    """Why CLIENT LIST was refused, in words."""
    message = str(exc)
    if isinstance(exc, NoPermissionError) or message.startswith("NOPERM") or "no permissions" in message:
        return gettext_lazy(
            "The Redis user of this connection may not run CLIENT LIST (its ACL denies it), so the "
            "workers cannot be listed. Allow the user +client|list to see them."
        )
    if "unknown command" in message.lower():
        return gettext_lazy(
            "This Redis does not offer CLIENT LIST (managed Redis services often disable it), so the "
            "workers cannot be listed."
        )
    return gettext_lazy(
        "Redis refused CLIENT LIST (%(error)s), so the workers cannot be listed.", error=message
    )


def _held_jobs(reply: object) -> tuple[int, int, list[HeldJob], str]:
    if not isinstance(reply, list) or not reply:
        return 0, 0, [], ""
    if reply[0] is None or reply[0] is False:
        return 0, 0, [], text(reply[1]) if len(reply) > 1 else ""
    active = integer(reply[0]) or 0
    jobs: list[HeldJob] = []
    rows = reply[1:]
    for index in range(0, len(rows) - 3, 4):
        job_id, utf8 = identifier(rows[index])
        jobs.append(
            HeldJob(
                id=job_id,
                processed_by=text(rows[index + 1]),
                name=text(rows[index + 2]),
                processed_on=integer(rows[index + 3]),
                addressable=utf8,
            )
        )
    return active, max(active - len(jobs), 0), jobs, ""


def _queue_workers(queue: QueueRef, workers: list[Worker], reply: object) -> QueueWorkers:
    if isinstance(reply, Exception):
        problem = gettext_lazy("Its active jobs could not be read: %(error)s", error=str(reply))
        return QueueWorkers(queue, tuple(workers), problem=problem)
    active, not_read, jobs, wrong_type = _held_jobs(reply)
    if wrong_type:
        problem = gettext_lazy(
            "%(key)s is a %(type)s, not what BullMQ keeps there; held jobs cannot be shown.",
            key=queue.key_prefix + "active",
            type=wrong_type,
        )
        return QueueWorkers(queue, tuple(workers), problem=problem)
    names = {worker.name for worker in workers if worker.name}
    by_name: dict[str, list[HeldJob]] = {}
    other: list[HeldJob] = []
    for job in jobs:
        if job.processed_by and job.processed_by in names:
            by_name.setdefault(job.processed_by, []).append(job)
        else:
            other.append(job)
    listed = tuple(
        replace(worker, jobs=tuple(by_name.get(worker.name, ()))) if worker.name else worker
        for worker in workers
    )
    return QueueWorkers(queue, listed, tuple(other), active, not_read)


def _raw_bytes(raw: object) -> bytes:
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return raw if isinstance(raw, bytes) else b""


async def _cluster_client_lists(client: Redis, queues: list[QueueRef], max_workers: int) -> _Matched:
    """CLIENT LIST of every node of a Redis Cluster. A worker's connections are named on whichever nodes
    its client talks to (not only the one serving its queue's slot), each on several: a queue's workers
    are those of the node that shows most of them (a worker seen on two nodes is one worker). Each node is
    asked on its own: one that is down (its workers' connections went with it) leaves out only itself;
    when none answers, the error is raised."""
    cluster = cast(Any, client)
    nodes = cluster.get_nodes()
    if not nodes:  # not initialized yet: redis-py finds the nodes first
        replies = await cluster.execute_command("CLIENT", "LIST", target_nodes="all")
        per_node = list(replies.values()) if isinstance(replies, dict) else [replies]
    else:
        answers = await asyncio.gather(
            *(cluster.execute_command("CLIENT", "LIST", target_nodes=node) for node in nodes),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, UNREACHABLE_NODE):
                raise answer
        per_node = [answer for answer in answers if not isinstance(answer, BaseException)]
        if not per_node:
            raise cast(BaseException, answers[0])
    merged = _Matched()
    for raw in per_node:
        matched = parse_client_list(_raw_bytes(raw), queues, max_workers)
        merged.parsed += matched.parsed
        merged.capped |= matched.capped
        for queue, workers in matched.workers.items():
            if len(workers) > len(merged.workers.get(queue, [])):
                merged.workers[queue] = workers
    return merged


async def fetch_workers(
    client: Redis, queues: list[QueueRef], *, held_jobs: bool = True, max_workers: int = MAX_WORKERS
) -> WorkerReport:
    """The workers of `queues` (all on the connection of `client`) from one CLIENT LIST, and the active
    jobs each holds (one pipelined script per queue that has workers)."""
    try:
        if is_cluster(client):
            matched = await _cluster_client_lists(client, queues, max_workers)
        else:
            raw = await client.execute_command("CLIENT", "LIST")  # type: ignore[no-untyped-call]
            matched = parse_client_list(_raw_bytes(raw), queues, max_workers)
    except ResponseError as exc:
        return WorkerReport(tuple(QueueWorkers(queue) for queue in queues), problem=client_list_problem(exc))
    readers = [queue for queue in queues if matched.workers.get(queue)] if held_jobs else []
    replies: list[object] = []
    if readers:

        def build(pipe: Pipeline) -> None:
            for queue in readers:
                WORKER_JOBS.queue(pipe, [queue.key_prefix], [MAX_HELD_JOBS, HELD_ID_BUDGET, HELD_FIELD_BYTES])

        replies = await run_pipeline(client, build, [WORKER_JOBS], per_command_errors=True)
    by_queue = dict(zip(readers, replies, strict=True))
    result = []
    for queue in queues:
        workers = matched.workers.get(queue, [])
        if queue in by_queue:
            result.append(_queue_workers(queue, workers, by_queue[queue]))
        else:
            result.append(QueueWorkers(queue, tuple(workers)))
    return WorkerReport(tuple(result), capped=matched.capped, clients_parsed=matched.parsed)
