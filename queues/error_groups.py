"""Failed jobs grouped by what went wrong: a fingerprint of the exception type, the message with its
variable parts (numbers, ids, hex, UUIDs, e-mail addresses, URLs, quoted values) normalised, and the
top stack frame (the first `at …` line of the newest stacktrace entry, line and column normalised).

Reading is bounded: only the newest `bound` failed jobs are scanned, in Lua batches of BATCH ids that
copy at most BATCH_BUDGET bytes each, reading only `failedReason` (up to REASON_CAP bytes) and
`stacktrace` (up to STACK_CAP bytes; a longer one is not copied and its job is grouped by failedReason
only). Results are cached per queue until its failed set changes (ZCARD and the newest member and
score), and for at most `ttl` seconds.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.jobs import parse_summary
from queues.keys import not_a_job
from queues.messages import gettext_lazy
from queues.models import JobSummary, QueueRef
from queues.parsing import first_line, identifier, integer, text
from queues.scripts import run_pipeline, script

SCAN = script("error_groups")
SAMPLES = script("error_samples")

# Ids per Lua call, calls per pipelined round trip, and the bytes one call may copy inside Redis.
BATCH = 250
PIPELINE_DEPTH = 4
BATCH_BUDGET = 256 * 1024
# Per-field caps: a longer value is not read at all (Redis cannot read part of a hash field).
REASON_CAP = 8 * 1024
STACK_CAP = 64 * 1024
# The newest stack entry is returned cut to this (the type, the message and the first frames).
ENTRY_CAP = 4 * 1024
MAX_ID = 1024
DEFAULT_BOUND = 10_000
# Groups kept per queue (most jobs first); the rest are counted, not listed.
MAX_GROUPS = 200
# Normalised messages and frames are cut to this before they are fingerprinted.
MAX_PATTERN = 1000
# What of a message or frame is normalised at all: every pattern below runs in linear time, but a scan
# normalises up to 10,000 failures; the rest of a longer message does not tell groups apart.
MAX_NORMALISED = 2 * MAX_PATTERN

# The message of a failure whose failedReason is too long to read and that has no readable stack.
UNREAD_REASON = "<failedReason too long to read>"

# ---- normalisation (pure) ----

_QUOTED = re.compile(
    r"""(?<![\w])'(?:[^'\\\n]|\\.){0,400}'(?![\w])"""
    r'''|"(?:[^"\\\n]|\\.){0,400}"'''
    r"""|`[^`\n]{0,400}`"""
    r"""|\u201c[^\u201d\n]{0,400}\u201d|\u2018[^\u2019\n]{0,400}\u2019"""
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^\s\"'<>()\[\]{}]+")
# Anchored at the start of a run of such characters: unanchored, each position of a long run without
# an `@` would scan to its end again (8 KB of digits took 0.2 s).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b")
_IP = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])")
_HEX_PREFIXED = re.compile(r"\b0[xX][0-9a-fA-F]+\b")
# Long hex words (hashes, ObjectIds): at least 8 hex digits, with a digit and a letter among them.
_HEX = re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b")
# Generated ids (Stripe's ch_3Mml…, ULIDs, nanoids): 16+ word characters with lower case and 2+ digits.
_ID = re.compile(r"(?<![\w-])(?=[\w-]*[a-z])(?=(?:[\w-]*\d){2})[\w-]{16,}(?![\w-])")
# Numbers: any not glued to a letter before it (3012ms, #42, 1.5), and runs of 3+ digits anywhere
# (order1234, E11000); short numbers inside words stay (utf8, base64, job2 handler names).
_NUMBER = re.compile(r"(?<![\w])\d+(?:[.,]\d+)*|\d{3,}")
_SPACE = re.compile(r"\s+")
# Stack frames: Node's `    at fn (/app/x.js:12:5)`, Python's `  File "/app/x.py", line 12, in fn`.
_LINE_COLUMN = re.compile(r":\d+(?::\d+)?")
_PY_LINE = re.compile(r", line \d+")
_EXCEPTION = re.compile(r"^([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(?: \[[^\]\n]{1,80}\])?(?::|$)")


@functools.lru_cache(maxsize=4096)
def normalize_message(message: str) -> str:
    """The message with what varies between occurrences replaced by placeholders: `"…"` for quoted
    values, `<url>`, `<email>`, `<uuid>`, `<date>`, `<ip>`, `<hex>`, `<id>` and `<n>`; whitespace
    collapsed."""
    result = _QUOTED.sub('"…"', message[:MAX_NORMALISED])
    result = _URL.sub("<url>", result)
    result = _EMAIL.sub("<email>", result)
    result = _UUID.sub("<uuid>", result)
    result = _DATE.sub("<date>", result)
    result = _IP.sub("<ip>", result)
    result = _HEX_PREFIXED.sub("<hex>", result)
    result = _HEX.sub("<hex>", result)
    result = _ID.sub("<id>", result)
    result = _NUMBER.sub("<n>", result)
    return _SPACE.sub(" ", result).strip()[:MAX_PATTERN]


@functools.lru_cache(maxsize=4096)
def normalize_frame(frame: str) -> str:
    """A stack frame with line and column numbers, hashes and long numbers (build ids) normalised."""
    result = _PY_LINE.sub(", line <n>", frame.strip()[:MAX_NORMALISED])
    result = _LINE_COLUMN.sub(":<n>", result)
    result = _UUID.sub("<uuid>", result)
    result = _HEX.sub("<hex>", result)
    result = re.sub(r"\d{4,}", "<n>", result)
    return _SPACE.sub(" ", result)[:MAX_PATTERN]


@dataclass(frozen=True)
class ParsedTrace:
    """What a stack entry says: the exception type and the top frame (both may be "")."""

    exception: str
    frame: str


def parse_trace(entry: str) -> ParsedTrace:
    """The exception type and the top frame of one stacktrace entry: a Node `err.stack` (type on the
    first line, first `at …` line) or a Python traceback (type on the last line, innermost `File`)."""
    lines = [line for line in entry.splitlines() if line.strip()]
    if not lines:
        return ParsedTrace("", "")
    if lines[0].startswith("Traceback (most recent call last)"):
        files = [line for line in lines if line.lstrip().startswith("File ")]
        tail = [line for line in lines if not line.startswith((" ", "\t"))]
        match = _EXCEPTION.match(tail[-1]) if len(tail) > 1 else None
        return ParsedTrace(match[1] if match else "", normalize_frame(files[-1]) if files else "")
    match = _EXCEPTION.match(lines[0].strip())
    frame = next((line for line in lines if line.lstrip().startswith("at ")), "")
    return ParsedTrace(match[1] if match else "", normalize_frame(frame) if frame else "")


def fingerprint(exception: str, message: str, frame: str) -> str:
    """A short stable id of a failure pattern (the same in every process and release)."""
    digest = hashlib.sha1(f"{exception}\0{message}\0{frame}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Failure:
    """One failed job as the scan read it."""

    job_id: str
    finished_on: int | None
    reason: str
    trace: str
    exception: str
    message: str
    frame: str
    # Why it is grouped less precisely: "" or "stack-big", "stack-unreadable", "reason-big".
    partial: str = ""
    # Its id can be put in a link or an action (valid UTF-8, not cut, not one of the queue's keys).
    addressable: bool = True
    # Its index in the failed set, newest first (as scanned).
    position: int = 0

    @property
    def fingerprint(self) -> str:
        """The group it belongs to."""
        return fingerprint(self.exception, self.message, self.frame)


def failure_of(row: list[Any]) -> Failure | None:
    """A Failure from one row of error_groups.lua; None for a member whose key is not a job hash."""
    raw_id, score, raw_reason, reason_size, kind, stack, flag, index = (row + [None] * 8)[:8]
    if text(flag) == "not-a-hash":
        return None
    job_id, utf8 = identifier(raw_id)
    addressable = utf8 and text(flag) != "long-id" and not_a_job(job_id) is None
    kind = text(kind)
    partial = ""
    reason = text(raw_reason)
    if raw_reason in (None, False) and (integer(reason_size) or 0) > 0:
        partial = "reason-big"
        reason = ""
    trace = ParsedTrace("", "")
    entry = ""
    if kind == "ok":
        entry = text(stack)
        trace = parse_trace(entry)
    elif kind == "big":
        partial = "stack-big"
    elif kind in ("not-json", "not-list", "not-text"):
        partial = "stack-unreadable"
    message = normalize_message(reason) if reason else ""
    if partial == "reason-big" and not entry:
        message = UNREAD_REASON
    if not message and entry:
        # No failedReason (missing or too long to read): the stack's first line says it.
        first = entry.splitlines()[0] if entry.splitlines() else ""
        message = normalize_message(first.partition(": ")[2] if ": " in first else first)
    return Failure(
        job_id=job_id,
        finished_on=integer(score),
        reason=first_line(reason, 500),
        trace=entry,
        exception=trace.exception,
        message=message,
        frame=trace.frame,
        partial=partial,
        addressable=addressable,
        position=integer(index) or 0,
    )


@dataclass
class ErrorGroup:
    """Failed jobs sharing a fingerprint: how many, when first and last seen, and a sample."""

    fingerprint: str
    exception: str
    message: str
    frame: str
    count: int = 0
    first_seen: int | None = None
    last_seen: int | None = None
    # The newest addressable job of the group, its failedReason (first line) and newest trace entry.
    sample_id: str = ""
    sample_reason: str = ""
    sample_trace: str = ""
    sample: JobSummary | None = None
    sample_position: int = -1
    # Jobs grouped by failedReason alone (their stacktrace too large or unreadable).
    partial: int = 0
    # Jobs whose ids cannot be acted on from here (not UTF-8, cut, or naming a queue key).
    unaddressable: int = 0

    def add(self, failure: Failure) -> None:
        """Count one more failure."""
        self.count += 1
        seen = failure.finished_on
        if seen is not None:
            self.first_seen = seen if self.first_seen is None else min(self.first_seen, seen)
            self.last_seen = seen if self.last_seen is None else max(self.last_seen, seen)
        if failure.partial:
            self.partial += 1
        if not failure.addressable:
            self.unaddressable += 1
        elif self.sample_position < 0 or failure.position < self.sample_position:
            # The newest, whatever order the batches came back in.
            self.sample_position = failure.position
            self.sample_id = failure.job_id
            self.sample_reason = failure.reason
            self.sample_trace = failure.trace


@dataclass(frozen=True)
class ErrorGroups:
    """A queue's failures grouped: the groups (most jobs first), how many failed jobs were scanned of
    how many there are, and whether the scan bound was hit."""

    queue: QueueRef
    groups: list[ErrorGroup]
    scanned: int
    total: int
    bound: int
    computed_at: float = 0.0
    # Groups beyond MAX_GROUPS, and the jobs they hold.
    more_groups: int = 0
    more_jobs: int = 0
    problem: str = ""
    # The ids of one group, when the scan was asked to collect them (for a group action).
    job_ids: tuple[str, ...] = field(default=(), compare=False)

    @property
    def bound_hit(self) -> bool:
        """More failed jobs than the scan reads."""
        return self.total > self.bound

    def group(self, fingerprint_: str) -> ErrorGroup | None:
        """The group with this fingerprint, if listed."""
        return next((group for group in self.groups if group.fingerprint == fingerprint_), None)


# ---- the scan ----

# What changes when the failed set changes: its size, its newest member and that member's score.
Signature = tuple[int, bytes | None, int | None]


class _Tally:
    """Failures counted into groups as the batches come in, each job once."""

    def __init__(self, collect: str | None) -> None:
        self.collect = collect
        self.groups: dict[str, ErrorGroup] = {}
        self.seen: set[bytes] = set()
        self.collected: list[str] = []
        self.scanned = 0

    def absorb(self, reply: list[Any], last: int, pending: list[tuple[int, int]]) -> None:
        """Count one batch's rows; when the call stopped early (its byte budget spent), queue the rest."""
        if reply[0] is None or reply[0] is False:
            return  # the key changed type meanwhile: the rest is not read
        for row in reply[4:]:
            raw_id = row[0] if isinstance(row[0], bytes) else text(row[0]).encode()
            if raw_id in self.seen:
                continue  # a failure arriving meanwhile shifted the indexes
            self.seen.add(raw_id)
            self.scanned += 1
            failure = failure_of(list(row))
            if failure is None:
                continue
            key = failure.fingerprint
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = ErrorGroup(key, failure.exception, failure.message, failure.frame)
            group.add(failure)
            if key == self.collect and failure.addressable:
                self.collected.append(failure.job_id)
        next_index = integer(reply[1]) or 0
        if next_index <= last and len(reply) > 4:
            pending.append((next_index, last))


def _args(first: int, last: int) -> list[Any]:
    return [first, last, REASON_CAP, STACK_CAP, BATCH_BUDGET, ENTRY_CAP, MAX_ID]


async def scan_failures(
    client: Redis, queue: QueueRef, bound: int, collect: str | None = None
) -> tuple[ErrorGroups, Signature]:
    """Group the newest `bound` failed jobs of a queue; with `collect`, also the ids of the group of that
    fingerprint. Returns the groups and the failed set's signature as read before the scan."""
    keys = [queue.key_prefix]
    head_last = min(BATCH, bound) - 1
    (head,) = await run_pipeline(client, lambda pipe: SCAN.queue(pipe, keys, _args(0, head_last)), [SCAN])
    if head[0] is None or head[0] is False:
        problem = gettext_lazy(
            "%(key)s is a %(type)s, not what BullMQ keeps there; its failures cannot be grouped.",
            key=queue.key_prefix + "failed",
            type=text(head[1]),
        )
        return ErrorGroups(queue, [], 0, 0, bound, time.monotonic(), problem=problem), (0, None, None)
    total = integer(head[0]) or 0
    signature: Signature = (total, head[2] or None, integer(head[3]))
    end = min(total, bound)
    pending = [(start, min(start + BATCH, end) - 1) for start in range(BATCH, end, BATCH)]
    tally = _Tally(collect)
    # Parsing and normalising thousands of failures is CPU work: off the event loop, so that the
    # process's other requests and sockets go on meanwhile.
    await asyncio.to_thread(tally.absorb, head, head_last, pending)
    while pending:
        round_, pending = pending[:PIPELINE_DEPTH], pending[PIPELINE_DEPTH:]

        def build(pipe: Pipeline, batch: list[tuple[int, int]] = round_) -> None:
            for first, last in batch:
                SCAN.queue(pipe, keys, _args(first, last))

        replies = await run_pipeline(client, build, [SCAN])
        for (_first, last), reply in zip(round_, replies, strict=True):
            await asyncio.to_thread(tally.absorb, reply, last, pending)
    groups, scanned, collected = tally.groups, tally.scanned, tally.collected
    ordered = sorted(
        groups.values(), key=lambda group: (-group.count, -(group.last_seen or 0), group.fingerprint)
    )
    kept, rest = ordered[:MAX_GROUPS], ordered[MAX_GROUPS:]
    await _add_samples(client, queue, kept)
    result = ErrorGroups(
        queue,
        kept,
        scanned,
        total,
        bound,
        time.monotonic(),
        more_groups=len(rest),
        more_jobs=sum(group.count for group in rest),
        job_ids=tuple(collected),
    )
    return result, signature


async def _add_samples(client: Redis, queue: QueueRef, groups: list[ErrorGroup]) -> None:
    """Read the sample job of each group as a list row (one call)."""
    ids = [group.sample_id for group in groups if group.sample_id]
    if not ids:
        return
    reply = await SAMPLES.call(client, [queue.key_prefix], [512, *ids])
    by_id: dict[str, JobSummary] = {}
    for row in reply:
        if len(row) > 3 and text(row[3]) == "gone":
            continue
        summary = parse_summary(list(row))
        by_id[summary.id] = summary
    for group in groups:
        group.sample = by_id.get(group.sample_id)


async def failed_signature(client: Redis, queue: QueueRef) -> Signature:
    """What changes when the failed set changes: its size and its newest member and score."""
    key = queue.key_prefix + "failed"

    def build(pipe: Pipeline) -> None:
        pipe.zcard(key)
        pipe.zrevrange(key, 0, 0, withscores=True)

    size, newest = await run_pipeline(client, build, [], per_command_errors=True)
    if isinstance(size, Exception) or isinstance(newest, Exception):
        return (-1, None, None)
    member, score = newest[0] if newest else (None, None)
    return (int(size), member, integer(score))


# ---- the cache ----


@dataclass(frozen=True)
class _Cached:
    signature: Signature
    groups: ErrorGroups


class GroupCache:
    """Computed groups per (queue, bound), kept until the failed set changes or `ttl` seconds pass;
    at most `size` queues (least recently used dropped)."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[QueueRef, int], _Cached] = OrderedDict()

    def fresh(self, queue: QueueRef, bound: int, max_age: float) -> ErrorGroups | None:
        """Cached groups younger than `max_age`, without asking Redis whether they changed."""
        entry = self._entries.get((queue, bound))
        if entry is None or time.monotonic() - entry.groups.computed_at > max_age:
            return None
        return entry.groups

    def get(self, queue: QueueRef, bound: int, signature: Signature, ttl: float) -> ErrorGroups | None:
        """Cached groups when the failed set still has this signature and they are younger than `ttl`."""
        entry = self._entries.get((queue, bound))
        if entry is None or entry.signature != signature or signature[0] < 0:
            return None
        if time.monotonic() - entry.groups.computed_at > ttl:
            return None
        self._entries.move_to_end((queue, bound))
        return entry.groups

    def put(self, queue: QueueRef, bound: int, signature: Signature, groups: ErrorGroups) -> None:
        """Remember groups computed under `signature` (without any collected ids)."""
        self._entries[(queue, bound)] = _Cached(signature, replace(groups, job_ids=()))
        self._entries.move_to_end((queue, bound))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (tests)."""
        self._entries.clear()


CACHE = GroupCache()


async def error_groups(
    client: Redis, queue: QueueRef, bound: int = DEFAULT_BOUND, ttl: float = 30.0
) -> ErrorGroups:
    """The queue's error groups: cached while its failed set is unchanged (one round trip to check),
    else computed and cached."""
    signature = await failed_signature(client, queue)
    cached = CACHE.get(queue, bound, signature, ttl)
    if cached is not None:
        return cached
    groups, read_signature = await scan_failures(client, queue, bound)
    CACHE.put(queue, bound, read_signature, groups)
    return groups


async def group_job_ids(client: Redis, queue: QueueRef, fingerprint_: str, bound: int) -> ErrorGroups:
    """A fresh scan that also collects the ids of one group (what a group action acts on)."""
    groups, signature = await scan_failures(client, queue, bound, collect=fingerprint_)
    CACHE.put(queue, bound, signature, groups)
    return groups
