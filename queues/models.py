"""Typed values the read layer returns: queues, counts, job summaries, job details, logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from queues.keys import not_a_job
from queues.messages import gettext_lazy, joined
from queues.states import STATE_KEYS, STATES
from queues.traces import TraceGroup, group_traces


class NotAJob(LookupError):
    """The id names a key that is not a job (one of the queue's own keys, or not a job's hash)."""


class QueueRef(NamedTuple):
    """One BullMQ queue: the connection alias it lives on, its key prefix and its name.

    A named tuple, not a dataclass: the overview keys, sorts and compares every queue of the list on
    each view and each census step, and a tuple's hash and comparison run in C (10,000 queues: 0.7 ms
    of dict lookups instead of 2.3 ms, a sort 0.4 ms instead of 2.6 ms). Never mixed with plain tuples
    as keys: a QueueRef equals the tuple of its three fields."""

    connection: str
    prefix: str
    name: str

    @property
    def key(self) -> str:
        """`<prefix>:<name>`: the identity used in URLs and data-queue attributes."""
        return f"{self.prefix}:{self.name}"

    @property
    def key_prefix(self) -> str:
        """The prefix every key of this queue starts with, `<prefix>:<name>:`."""
        return f"{self.prefix}:{self.name}:"

    def job_key(self, job_id: str) -> str:
        """The Redis key of a job's hash; NotAJob when the id names one of the queue's own keys."""
        reason = not_a_job(job_id)
        if reason is not None:
            raise NotAJob(reason)
        return f"{self.key_prefix}{job_id}"

    @classmethod
    def from_key(cls, connection: str, key: str) -> QueueRef:
        """Parse `<prefix>:<name>`; the name is after the last colon since names never hold one."""
        prefix, sep, name = key.rpartition(":")
        if not sep or not prefix or not name:
            raise ValueError(f"not a queue key: {key!r}")
        return cls(connection, prefix, name)


@dataclass(frozen=True)
class QueueCounts:
    """A queue's job count per state and its paused flag."""

    queue: QueueRef
    counts: dict[str, int]
    paused: bool
    version: str = ""
    # Keys of the queue that are not of BullMQ's type, as (key suffix, type found); their states count 0.
    broken_keys: tuple[tuple[str, str], ...] = ()
    # Why the queue could not be read at all (an error reply for this queue alone), or "".
    error: str = ""
    # finishedOn (ms) of the newest job in the failed zset, and how many it holds that failed in the
    # hour before the read; None when not read (the zset is of the wrong type, or an older reply).
    # Jobs removed on failure (removeOnFail) are in neither.
    last_failed_at: int | None = None
    failed_last_hour: int | None = None
    # finishedOn (ms) of the newest job kept in `completed`; None when none is kept.
    last_completed_at: int | None = None

    @property
    def problem(self) -> str:
        """What is wrong with this queue's keys, in words, or ""."""
        if self.error:
            return self.error
        return joined(
            [
                gettext_lazy(
                    "%(key)s is a %(type)s, not what BullMQ keeps there",
                    key=f"{self.queue.key_prefix}{suffix}",
                    type=kind,
                )
                for suffix, kind in self.broken_keys
            ]
        )

    @property
    def broken_states(self) -> frozenset[str]:
        """States whose key is of the wrong type."""
        suffixes = {suffix for suffix, _kind in self.broken_keys}
        return frozenset(state.name for state in STATE_KEYS if state.suffix in suffixes)

    @property
    def total(self) -> int:
        """All jobs the queue holds in any state."""
        return sum(self.counts.values())

    @classmethod
    def empty(cls, queue: QueueRef) -> QueueCounts:
        """Counts of a queue with no jobs."""
        return cls(queue, {state: 0 for state in STATES}, paused=False)

    @classmethod
    def failed(cls, queue: QueueRef, error: str) -> QueueCounts:
        """A queue whose counts could not be read: zeros and the reason."""
        return cls(queue, {state: 0 for state in STATES}, paused=False, error=error)


@dataclass(frozen=True)
class Text:
    """A string value read from Redis, possibly cut inside Redis; `size` is its full length in bytes."""

    value: str
    size: int
    truncated: bool = False
    # Too long to be read for a page at all (Redis cannot read part of a value): only its size is known.
    unread: bool = False
    # False when the stored bytes are not UTF-8 (`value` then has U+FFFD in their place).
    utf8: bool = True

    @property
    def shown_size(self) -> int:
        """Bytes of the value as read (the part shown of a cut value)."""
        return len(self.value.encode("utf-8", "replace"))

    @classmethod
    def whole(cls, value: str) -> Text:
        """A value that was read in full."""
        return cls(value, len(value.encode("utf-8", "surrogatepass")), False)


@dataclass(frozen=True)
class JsonValue:
    """A JSON field: the parsed value when the stored text was complete and valid JSON."""

    raw: Text
    parsed: Any = None
    is_valid: bool = False

    @property
    def cut(self) -> bool:
        """The stored value is longer than what was read: shown cut (or not read), never "not valid"."""
        return self.raw.truncated

    @property
    def pretty(self) -> str:
        """Indented JSON when parsed, otherwise the stored text as it is."""
        import json

        if self.is_valid:
            return json.dumps(self.parsed, indent=2, ensure_ascii=False, sort_keys=False)
        return self.raw.value


@dataclass(frozen=True)
class JobSummary:
    """The fields a job list row shows, read without the job's data or opts payloads."""

    id: str
    name: str
    timestamp: int | None
    processed_on: int | None
    finished_on: int | None
    attempts_made: int
    attempts_allowed: int | None
    progress: Any
    delay: int
    priority: int
    failed_reason: str
    # Why this entry of the state's list is not a job that can be opened or acted on ("" when it is):
    # its id names one of the queue's own keys, its key is not a job's hash, or the id is not UTF-8.
    problem: str = ""

    @property
    def duration_ms(self) -> int | None:
        """Processing time, when the job has both started and finished."""
        if self.processed_on is not None and self.finished_on is not None:
            return max(0, self.finished_on - self.processed_on)
        return None


@dataclass(frozen=True)
class JobPage:
    """One page of a state's job list, newest first, and the state's total."""

    queue: QueueRef
    state: str
    page: int
    per_page: int
    total: int
    jobs: list[JobSummary]
    # Why the state's own key could not be read (it is not of BullMQ's type), or "".
    problem: str = ""

    @property
    def pages(self) -> int:
        """Number of pages; at least one so an empty state still has page 1."""
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class LogPage:
    """A page of a job's log lines in the order they were written."""

    count: int
    start: int
    items: list[str]
    per_page: int
    # Lines of this page not read because they are too long to copy within a page view's bound.
    not_read: int = 0

    @property
    def page(self) -> int:
        """One-based page number of this slice."""
        return self.start // self.per_page + 1

    @property
    def pages(self) -> int:
        """Number of log pages; at least one."""
        return max(1, -(-self.count // self.per_page))


@dataclass(frozen=True)
class ParentRef:
    """The parent of a flow child: its job key, as BullMQ's scripts follow it (`parentKey`)."""

    job_key: str
    # False when the key is not valid UTF-8 or was cut: shown, never linked (its text names another key).
    addressable: bool = True


@dataclass(frozen=True)
class ChildRef:
    """A child of a flow parent, and whether it has been processed yet: `failed` when its failure
    failed the parent (failParentOnFailure), `ignored` when the parent went on without it
    (ignoreDependencyOnFailure)."""

    job_key: str
    processed: bool
    failed: bool = False
    ignored: bool = False
    # False when the key is not valid UTF-8: shown, never linked (its text names another key).
    addressable: bool = True

    @property
    def queue_key(self) -> str:
        """The child's `<prefix>:<name>`."""
        return self.job_key.rsplit(":", 1)[0] if ":" in self.job_key else ""


@dataclass(frozen=True)
class JobDetail:
    """Everything the job page shows; long fields are cut inside Redis and carry their full size."""

    queue: QueueRef
    id: str
    state: str
    fields: dict[str, Text]
    name: str
    data: JsonValue
    opts: JsonValue
    returnvalue: JsonValue | None
    progress: Any
    timestamp: int | None
    processed_on: int | None
    finished_on: int | None
    attempts_made: int
    attempts_started: int
    attempts_allowed: int | None
    delay: int
    priority: int
    failed_reason: Text | None
    stacktrace: list[str]
    stacktrace_raw: Text | None
    processed_by: str
    parent: ParentRef | None
    children: list[ChildRef]
    children_counts: dict[str, int]
    logs: LogPage
    extra_fields: dict[str, Text] = field(default_factory=dict)
    # Fields of the hash that were not read: a hash with more fields than the read bound.
    hidden_fields: int = 0
    # Children counted but not listed: their keys are too long to copy within the read bound.
    children_not_listed: int = 0

    @property
    def wait_ms(self) -> int | None:
        """Time from creation (plus delay) until a worker took it."""
        if self.timestamp is not None and self.processed_on is not None:
            return max(0, self.processed_on - self.timestamp - self.delay)
        return None

    @property
    def trace_groups(self) -> list[TraceGroup]:
        """The stack traces, identical ones shown once with the attempts that ended with them."""
        return group_traces(self.stacktrace, self.attempts_made, self.state)

    @property
    def duration_ms(self) -> int | None:
        """Processing time of the last attempt."""
        if self.processed_on is not None and self.finished_on is not None:
            return max(0, self.finished_on - self.processed_on)
        return None
