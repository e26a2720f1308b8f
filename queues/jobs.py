"""Reads of jobs: a state's page of summaries, one job's detail, its logs and a raw field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.counts import COUNTS, now_ms, parse_counts
from queues.keys import not_a_job
from queues.messages import gettext_lazy
from queues.models import (
    ChildRef,
    JobDetail,
    JobPage,
    JobSummary,
    LogPage,
    NotAJob,
    ParentRef,
    QueueCounts,
    QueueRef,
    Text,
)
from queues.parsing import cut_text, first_line, identifier, integer, json_value, progress, text
from queues.scripts import run_pipeline, script
from queues.states import STATE_KEYS, state_key

JOB_PAGE = script("job_page")
QUEUE_PAGE = script("queue_page")
JOB_DETAIL = script("job_detail")
LOGS = script("logs")
LOG_MARK = script("log_mark")
RAW_FIELD = script("raw_field")
JOB_STATE = script("job_state")

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
# The known fields in the order a page view reads them (the copy budget goes to the first).
KNOWN_FIELDS_ORDER = (
    "name",
    "timestamp",
    "processedOn",
    "finishedOn",
    "delay",
    "priority",
    "atm",
    "attemptsMade",
    "ats",
    "progress",
    "failedReason",
    "opts",
    "parentKey",
    "parent",
    "pb",
    "id",
    "stacktrace",
    "returnvalue",
    "data",
)
# Fields the job page shows in their own places; the rest are listed as they are.
KNOWN_FIELDS = frozenset(KNOWN_FIELDS_ORDER)
# Back-fill bound for ids whose hash vanished between the range read and the fetch (as BullMQ).
MAX_BACKFILL = 3
# The wait list can hold millions; the job page looks up a job's position in at most this many.
MAX_STATE_SCAN = 100_000


@dataclass(frozen=True)
class ReadLimits:
    """How much one read may bring over the wire, whatever the keys hold (see docs/security.md)."""

    display_bytes: int = 65536
    summary_bytes: int = 512
    log_page_size: int = 100
    max_children: int = 100
    # A BullMQ job has about 20 fields; a hash with more is read by the known field names only.
    max_fields: int = 100
    # The "open the full value" link serves at most this many bytes of one field.
    raw_bytes: int = 16 * 1024 * 1024
    # Redis cannot read part of a value: a hash field longer than this is not read for a page at all,
    # and one page view copies at most `budget_bytes` inside Redis (values, log lines, child keys),
    # plus one list element or set member where an element cannot be measured before it is read.
    copy_bytes: int = 1024 * 1024
    budget_bytes: int = 8 * 1024 * 1024


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
        limits.budget_bytes,
    ]


def _job_page(queue: QueueRef, state: str, page: int, per_page: int, reply: list[Any]) -> JobPage:
    if reply[0] is None or reply[0] is False:
        key = queue.key_prefix + state_key(state).suffix
        problem = gettext_lazy(
            "%(key)s is a %(type)s, not what BullMQ keeps there; its jobs cannot be listed.",
            key=key,
            type=text(reply[1]),
        )
        return JobPage(queue, state, page, per_page, 0, [], problem=problem)
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
        COUNTS.queue(pipe, [queue.key_prefix], [now_ms()])
        JOB_PAGE.queue(pipe, [queue.key_prefix], _page_args(state, page, per_page, limits))

    counts_reply, page_reply = await run_pipeline(client, build, [COUNTS, JOB_PAGE])
    return parse_counts(queue, counts_reply), _job_page(queue, state, page, per_page, page_reply)


# Where a queue page without a chosen state opens: on its failures when it has any, else on the first
# state that holds jobs in this order, else on waiting.
OPENING_ORDER = (
    "failed",
    "waiting",
    "active",
    "prioritized",
    "delayed",
    "waiting-children",
    "completed",
    "paused",
)
_COUNT_INDEX = {state.name: index + 1 for index, state in enumerate(STATE_KEYS)}


async def fetch_queue_opening(
    client: Redis,
    queue: QueueRef,
    page: int,
    per_page: int,
    limits: ReadLimits,
    order: tuple[str, ...] = OPENING_ORDER,
    fallback: str = "waiting",
) -> tuple[QueueCounts, JobPage]:
    """The queue's counts and a page of the first state of `order` that holds jobs (`fallback` when
    none does), in one call: one Lua script reads the counts, picks the state and reads its page."""
    candidates = [*order, fallback]
    args: list[Any] = [now_ms(), *_page_args(fallback, page, per_page, limits)[2:]]
    for name in candidates:
        key = state_key(name)
        args += [_COUNT_INDEX[name], key.suffix, "1" if key.is_list else "0"]
    counts_reply, chosen, page_reply = await QUEUE_PAGE.call(client, [queue.key_prefix], args)
    number = integer(chosen) or len(candidates)
    state = candidates[min(max(number, 1), len(candidates)) - 1]
    return parse_counts(queue, counts_reply), _job_page(queue, state, page, per_page, page_reply)


def summary_problem(job_id: str, utf8: bool, values: object, key_type: object) -> str:
    """Why a row of a state's list is not a job that can be opened or acted on, or ""."""
    if text(key_type) == "ids-over-budget":
        return gettext_lazy(
            "The rest of this page is not read: its job ids are too long to copy (over 1 MB together)."
        )
    if text(key_type) == "long-id":
        return gettext_lazy("Its id is longer than 1 KB; it is shown cut and cannot be opened here.")
    if not utf8:
        return gettext_lazy("Its id is not valid UTF-8, so it cannot be addressed from here.")
    reason = not_a_job(job_id)
    if reason is not None:
        return reason
    if text(key_type) == "nested-queue":
        return gettext_lazy(
            "Its key belongs to a queue nested under this one (its prefix is this queue's key)."
        )
    if not isinstance(values, list):
        return gettext_lazy("Its key is a %(type)s, not a job's hash.", type=text(key_type))
    if key_type:
        return gettext_lazy("It cannot be read here (%(type)s).", type=text(key_type))
    if len(values) > 1 and values[1] in (None, False):
        return gettext_lazy("Its hash has no timestamp field: BullMQ did not write it as a job.")
    return ""


def parse_summary(row: list[Any]) -> JobSummary:
    """A JobSummary from one row of job_page.lua: id, summary values, opts.attempts."""
    raw_id, raw_values = row[0], row[1]
    attempts = row[2] if len(row) > 2 else None
    job_id, utf8 = identifier(raw_id)
    problem = summary_problem(job_id, utf8, raw_values, row[3] if len(row) > 3 else "")
    values = raw_values if isinstance(raw_values, list) else []
    # In SUMMARY_FIELDS order; a short row (it should not happen) leaves the rest missing.
    padded = [*values[: len(SUMMARY_FIELDS)], *[None] * (len(SUMMARY_FIELDS) - len(values))]
    name, timestamp, processed_on, finished_on, atm, old_atm, job_progress, delay, priority, reason = padded
    attempts_made = integer(atm)
    if attempts_made is None:
        attempts_made = integer(old_atm) or 0
    return JobSummary(
        problem=problem,
        id=job_id,
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
    """A job's detail, state, first logs page and children in one round trip; None if it is gone.

    NotAJob when the id names one of the queue's own keys (decided before anything is read) or a key
    that is not a job's hash (decided inside Redis before its contents are read).
    """
    queue.job_key(job_id)  # NotAJob for the queue's own key names
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
            limits.max_fields,
            limits.copy_bytes,
            limits.budget_bytes,
            *KNOWN_FIELDS_ORDER,
        ],
    )
    if reply is None:
        return None
    if reply and text(reply[0]) == "not-a-job":
        raise NotAJob(not_a_job_hash(job_id, text(reply[1])))
    return parse_detail(queue, job_id, reply, limits, log_start)


def not_a_job_hash(job_id: str, key_type: str) -> str:
    """Why the key of `job_id` is no job: a hash without BullMQ's fields, or another type."""
    if key_type == "hash":
        what = gettext_lazy(
            "a hash that is not one of this queue's jobs (no BullMQ timestamp, or a nested queue's)"
        )
    else:
        what = gettext_lazy("a %(type)s, not a hash", type=key_type)
    return gettext_lazy("%(job)r names %(what)s, not a job.", job=job_id, what=what)


def parse_detail(
    queue: QueueRef, job_id: str, reply: list[Any], limits: ReadLimits, log_start: int = 0
) -> JobDetail:
    """A JobDetail from the reply of job_detail.lua."""
    state, flat, log_count, lines, deps, processed, ignored, child_counts = reply[:8]
    unsuccessful = reply[12] if len(reply) > 12 else []
    hidden = integer(reply[8]) if len(reply) > 8 else 0
    unread = frozenset(text(name) for name in reply[9]) if len(reply) > 9 else frozenset()
    lines_not_read = integer(reply[10]) if len(reply) > 10 else 0
    children_not_listed = integer(reply[11]) if len(reply) > 11 else 0
    fields: dict[str, Text] = {}
    for index in range(0, len(flat) - 2, 3):
        name = text(flat[index])
        fields[name] = cut_text(flat[index + 1], flat[index + 2], read=name not in unread)

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
        children=[child_ref(key, processed=False) for key in deps]
        + [child_ref(key, processed=True) for key in processed]
        + [child_ref(key, processed=True, ignored=True) for key in ignored]
        + [child_ref(key, processed=True, failed=True) for key in unsuccessful],
        # In job_detail.lua's order; named as Node's job.getDependenciesCount() names them.
        children_counts=dict(zip(("pending", "processed", "ignored", "failed"), counts, strict=False)),
        logs=LogPage(
            count=integer(log_count) or 0,
            start=log_start,
            items=[text(line) for line in lines],
            per_page=limits.log_page_size,
            not_read=lines_not_read or 0,
        ),
        extra_fields={name: value for name, value in fields.items() if name not in KNOWN_FIELDS},
        hidden_fields=max(0, hidden or 0),
        children_not_listed=children_not_listed or 0,
    )


def child_ref(raw_key: object, *, processed: bool, failed: bool = False, ignored: bool = False) -> ChildRef:
    """A flow child from a member of the parent's dependencies / processed / failed / unsuccessful keys."""
    key, utf8 = identifier(raw_key)
    return ChildRef(key, processed=processed, failed=failed, ignored=ignored, addressable=utf8)


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
    """The flow parent: `parentKey`, which BullMQ's scripts follow; the `parent` JSON (BullMQ ≥ 3,
    `{id, queueKey}`) only when there is no `parentKey`."""
    parent_key = fields.get("parentKey")
    if parent_key is not None and parent_key.value:
        return ParentRef(parent_key.value, addressable=parent_key.utf8 and not parent_key.truncated)
    parent = json_value(fields.get("parent"))
    if parent.is_valid and isinstance(parent.parsed, dict):
        queue_key, parent_id = parent.parsed.get("queueKey"), parent.parsed.get("id")
        if (
            isinstance(queue_key, str)
            and isinstance(parent_id, str | int)
            and not isinstance(parent_id, bool)
        ):
            return ParentRef(f"{queue_key}:{parent_id}")
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
    job_id = job_key[len(best.key_prefix) :]
    if not_a_job(job_id) is not None:
        return None
    return best, job_id


async def fetch_logs(client: Redis, queue: QueueRef, job_id: str, page: int, limits: ReadLimits) -> LogPage:
    """One page of a job's log lines, oldest first, each line cut to the display limit."""
    start = (page - 1) * limits.log_page_size
    count, lines, not_read = await LOGS.call(
        client,
        [f"{queue.job_key(job_id)}:logs"],
        [
            start,
            start + limits.log_page_size - 1,
            limits.display_bytes,
            limits.copy_bytes,
            limits.budget_bytes,
        ],
    )
    return LogPage(
        integer(count) or 0,
        start,
        [text(line) for line in lines],
        limits.log_page_size,
        integer(not_read) or 0,
    )


async def fetch_job_state(client: Redis, queue: QueueRef, job_id: str) -> str:
    """ "none" (no such key), "not-a-job" (a key that is not a job's hash) or the job's state, bounded.

    NotAJob before any read when the id names one of the queue's own keys.
    """
    queue.job_key(job_id)  # NotAJob for the queue's own key names
    reply = await JOB_STATE.call(client, [queue.key_prefix], [job_id, MAX_STATE_SCAN])
    return text(reply)


@dataclass(frozen=True)
class RawValue:
    """A job field's stored bytes and its full size; `value` is None when the value is over the raw
    bound (Redis cannot read part of a hash value, so a longer one is not read at all)."""

    value: bytes | None
    size: int


async def fetch_raw_field(
    client: Redis, queue: QueueRef, job_id: str, field: str, limits: ReadLimits
) -> RawValue | None:
    """The stored bytes of one job field up to `limits.raw_bytes` (only on explicit request)."""
    queue.job_key(job_id)  # NotAJob for the queue's own key names
    reply = await RAW_FIELD.call(client, [queue.key_prefix], [job_id, field, limits.raw_bytes])
    if not reply:
        return None
    raw, size = reply
    value = None if raw is None else raw if isinstance(raw, bytes) else text(raw).encode()
    return RawValue(value, integer(size) or 0)


async def fetch_log_tail(
    client: Redis, queue: QueueRef, job_id: str, count: int, lines: int, limits: ReadLimits
) -> LogPage:
    """The last `lines` of a log of `count` lines (oldest first), bounded like a log page."""
    start = max(0, count - lines)
    total, read, not_read = await LOGS.call(
        client,
        [f"{queue.job_key(job_id)}:logs"],
        [start, max(start, count - 1), limits.display_bytes, limits.copy_bytes, limits.budget_bytes],
    )
    return LogPage(integer(total) or 0, start, [text(line) for line in read], lines, integer(not_read) or 0)
