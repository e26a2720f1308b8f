"""Reads of jobs: a state's page of summaries, one job's detail, its logs and a raw field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.counts import COUNTS, parse_counts
from queues.models import (
    ChildRef,
    JobDetail,
    JobPage,
    JobSummary,
    LogPage,
    ParentRef,
    QueueCounts,
    QueueRef,
    Text,
)
from queues.parsing import cut_text, first_line, integer, json_value, progress, text
from queues.scripts import run_pipeline, script
from queues.states import state_key

JOB_PAGE = script("job_page")
JOB_DETAIL = script("job_detail")
LOGS = script("logs")

SUMMARY_FIELDS = (
    "name",
    "timestamp",
    "processedOn",
    "finishedOn",
    "atm",
    "attemptsMade",
    "progress",
    "delay",
    "priority",
    "failedReason",
)
# Fields the job page shows in their own places; the rest are listed as they are.
KNOWN_FIELDS = frozenset(
    {
        "name",
        "data",
        "opts",
        "timestamp",
        "delay",
        "priority",
        "progress",
        "atm",
        "attemptsMade",
        "ats",
        "processedOn",
        "finishedOn",
        "returnvalue",
        "failedReason",
        "stacktrace",
        "parentKey",
        "parent",
        "pb",
        "id",
    }
)
# Back-fill bound for ids whose hash vanished between the range read and the fetch (as BullMQ).
MAX_BACKFILL = 3
# The wait list can hold millions; the job page looks up a job's position in at most this many.
MAX_STATE_SCAN = 100_000


@dataclass(frozen=True)
class ReadLimits:
    """How much of each value a read may bring over the wire."""

    display_bytes: int = 65536
    summary_bytes: int = 512
    log_page_size: int = 100
    max_children: int = 100


def _page_args(state: str, page: int, per_page: int, limits: ReadLimits) -> list[Any]:
    key = state_key(state)
    start = (page - 1) * per_page
    return [
        key.suffix,
        "1" if key.is_list else "0",
        start,
        start + per_page - 1,
        limits.summary_bytes,
        MAX_BACKFILL,
    ]


def _job_page(queue: QueueRef, state: str, page: int, per_page: int, reply: list[Any]) -> JobPage:
    total = integer(reply[0]) or 0
    return JobPage(queue, state, page, per_page, total, [parse_summary(row) for row in reply[1:]])


async def fetch_job_page(
    client: Redis, queue: QueueRef, state: str, page: int, per_page: int, limits: ReadLimits
) -> JobPage:
    """One page of a state's jobs, newest first, with only their summary fields (one round trip)."""
    reply = await JOB_PAGE.call(client, [queue.key_prefix], _page_args(state, page, per_page, limits))
    return _job_page(queue, state, page, per_page, reply)


async def fetch_queue_page(
    client: Redis, queue: QueueRef, state: str, page: int, per_page: int, limits: ReadLimits
) -> tuple[QueueCounts, JobPage]:
    """The queue's counts and one page of a state's jobs, together in one round trip."""

    def build(pipe: Pipeline) -> None:
        COUNTS.queue(pipe, [queue.key_prefix], [])
        JOB_PAGE.queue(pipe, [queue.key_prefix], _page_args(state, page, per_page, limits))

    counts_reply, page_reply = await run_pipeline(client, build, [COUNTS, JOB_PAGE])
    return parse_counts(queue, counts_reply), _job_page(queue, state, page, per_page, page_reply)


def parse_summary(row: list[Any]) -> JobSummary:
    """A JobSummary from one row of job_page.lua: id, summary values, opts.attempts."""
    job_id, values, attempts = row[0], row[1], row[2] if len(row) > 2 else None
    # In SUMMARY_FIELDS order; a short row (it should not happen) leaves the rest missing.
    padded = [*values[: len(SUMMARY_FIELDS)], *[None] * (len(SUMMARY_FIELDS) - len(values))]
    name, timestamp, processed_on, finished_on, atm, old_atm, job_progress, delay, priority, reason = padded
    attempts_made = integer(atm)
    if attempts_made is None:
        attempts_made = integer(old_atm) or 0
    return JobSummary(
        id=text(job_id),
        name=text(name),
        timestamp=integer(timestamp),
        processed_on=integer(processed_on),
        finished_on=integer(finished_on),
        attempts_made=attempts_made,
        attempts_allowed=integer(attempts),
        progress=progress(job_progress),
        delay=integer(delay) or 0,
        priority=integer(priority) or 0,
        failed_reason=first_line(text(reason)),
    )


async def fetch_job(
    client: Redis,
    queue: QueueRef,
    job_id: str,
    limits: ReadLimits,
    log_page: int = 1,
) -> JobDetail | None:
    """A job's detail, state, first logs page and children in one round trip; None if it is gone."""
    log_start = (log_page - 1) * limits.log_page_size
    reply = await JOB_DETAIL.call(
        client,
        [queue.key_prefix],
        [
            job_id,
            limits.display_bytes,
            log_start,
            log_start + limits.log_page_size - 1,
            limits.max_children,
            MAX_STATE_SCAN,
        ],
    )
    if reply is None:
        return None
    return parse_detail(queue, job_id, reply, limits, log_start)


def parse_detail(
    queue: QueueRef, job_id: str, reply: list[Any], limits: ReadLimits, log_start: int = 0
) -> JobDetail:
    """A JobDetail from the reply of job_detail.lua."""
    state, flat, log_count, lines, deps, processed, failed, child_counts = reply
    fields: dict[str, Text] = {}
    for index in range(0, len(flat) - 2, 3):
        fields[text(flat[index])] = cut_text(flat[index + 1], flat[index + 2])

    def number(name: str) -> int | None:
        value = fields.get(name)
        return integer(value.value) if value else None

    opts = json_value(fields.get("opts"))
    attempts_allowed = None
    if opts.is_valid and isinstance(opts.parsed, dict):
        attempts_allowed = integer(opts.parsed.get("attempts"))
    attempts_made = number("atm")
    if attempts_made is None:
        attempts_made = number("attemptsMade") or 0

    stacktrace, stacktrace_raw = parse_stacktrace(fields.get("stacktrace"))
    failed_reason = fields.get("failedReason")
    returnvalue = fields.get("returnvalue")
    counts = [integer(value) or 0 for value in child_counts]
    return JobDetail(
        queue=queue,
        id=job_id,
        state=text(state),
        fields=fields,
        name=fields["name"].value if "name" in fields else "",
        data=json_value(fields.get("data")),
        opts=opts,
        returnvalue=json_value(returnvalue) if returnvalue is not None else None,
        progress=progress(fields["progress"].value) if "progress" in fields else 0,
        timestamp=number("timestamp"),
        processed_on=number("processedOn"),
        finished_on=number("finishedOn"),
        attempts_made=attempts_made,
        attempts_started=number("ats") or 0,
        attempts_allowed=attempts_allowed,
        delay=number("delay") or 0,
        priority=number("priority") or 0,
        failed_reason=failed_reason if failed_reason and failed_reason.value else None,
        stacktrace=stacktrace,
        stacktrace_raw=stacktrace_raw,
        processed_by=fields["pb"].value if "pb" in fields else "",
        parent=parse_parent(fields),
        children=[ChildRef(text(key), processed=False) for key in deps]
        + [ChildRef(text(key), processed=True) for key in processed]
        + [ChildRef(text(key), processed=True, failed=True) for key in failed],
        children_counts=dict(zip(("pending", "processed", "failed", "ignored"), counts, strict=False)),
        logs=LogPage(
            count=integer(log_count) or 0,
            start=log_start,
            items=[text(line) for line in lines],
            per_page=limits.log_page_size,
        ),
        extra_fields={name: value for name, value in fields.items() if name not in KNOWN_FIELDS},
    )


def parse_stacktrace(value: Text | None) -> tuple[list[str], Text | None]:
    """Stack traces newest first; the raw text instead when it is cut or not a JSON list."""
    parsed = json_value(value)
    if value is None or not value.value:
        return [], None
    if parsed.is_valid and isinstance(parsed.parsed, list):
        traces = [entry if isinstance(entry, str) else repr(entry) for entry in parsed.parsed if entry]
        return list(reversed(traces)), None
    return [], value


def parse_parent(fields: dict[str, Text]) -> ParentRef | None:
    """The flow parent from `parent` (BullMQ ≥ 3) or `parentKey`."""
    parent = json_value(fields.get("parent"))
    if parent.is_valid and isinstance(parent.parsed, dict):
        queue_key, parent_id = parent.parsed.get("queueKey"), parent.parsed.get("id")
        if isinstance(queue_key, str) and parent_id is not None:
            return ParentRef(queue_key, str(parent_id))
    parent_key = fields.get("parentKey")
    if parent_key and parent_key.value.count(":") >= 2:
        head, _, tail = parent_key.value.rpartition(":")
        return ParentRef(head, tail)
    return None


def resolve_job_key(queues: list[QueueRef], job_key: str) -> tuple[QueueRef, str] | None:
    """The known queue and job id a full job key belongs to (the longest matching queue prefix)."""
    best: QueueRef | None = None
    for queue in queues:
        matches = job_key.startswith(queue.key_prefix) and len(job_key) > len(queue.key_prefix)
        if matches and (best is None or len(queue.key_prefix) > len(best.key_prefix)):
            best = queue
    if best is None:
        return None
    return best, job_key[len(best.key_prefix) :]


async def fetch_logs(client: Redis, queue: QueueRef, job_id: str, page: int, limits: ReadLimits) -> LogPage:
    """One page of a job's log lines, oldest first, each line cut to the display limit."""
    start = (page - 1) * limits.log_page_size
    count, lines = await LOGS.call(
        client,
        [f"{queue.job_key(job_id)}:logs"],
        [start, start + limits.log_page_size - 1, limits.display_bytes],
    )
    return LogPage(integer(count) or 0, start, [text(line) for line in lines], limits.log_page_size)


async def fetch_raw_field(client: Redis, queue: QueueRef, job_id: str, field: str) -> bytes | None:
    """The full stored bytes of one job field (only on explicit request, never for a page view)."""
    value = await client.hget(queue.job_key(job_id), field)
    return value if isinstance(value, bytes) else None
