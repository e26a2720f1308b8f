"""A job's timeline: what its hash keeps (created, delay, last start, finish, counters) and, while the
queue's events stream still holds them, the times of each attempt.

BullMQ keeps in the job's hash only the last attempt's start (`processedOn`), the finish of the last
one (`finishedOn`), the attempts made (`atm`) and started (`ats`), and one stack trace per failed
attempt. Earlier attempts' times are only in the events stream, which BullMQ trims (about 10,000
entries by default): this module reads its newest entries, bounded, and says which window it read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from queues.models import JobDetail, QueueRef
from queues.parsing import integer, text
from queues.scripts import script

JOB_EVENTS = script("job_events")


@dataclass(frozen=True)
class EventLimits:
    """How much of the events stream one job page reads (see docs/security.md)."""

    # Entries searched, newest first, and events of the job returned.
    max_search: int = 2000
    max_matches: int = 100
    # Bytes copied inside Redis (entries are copied whole), and bytes returned of each value.
    # The whole stream must fit this to be read (an entry cannot be measured before it is copied).
    budget_bytes: int = 4 * 1024 * 1024
    value_bytes: int = 300


@dataclass(frozen=True)
class JobEvent:
    """One event of the job in the stream: its time (the stream id's milliseconds) and name."""

    stream_id: str
    at: int
    event: str
    prev: str
    # The failed reason of a `failed` event, the time of a `delayed` one, the attempts of
    # `retries-exhausted`; "" otherwise.
    detail: str


@dataclass(frozen=True)
class EventWindow:
    """The part of the events stream that was searched, and the job's events found there (oldest
    first)."""

    stream_length: int
    searched: int
    # Time of the oldest entry searched (None when the stream is empty).
    oldest: int | None
    # The copy budget ended the search before `max_search` entries.
    budget_spent: bool
    events: list[JobEvent] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        """Every entry of the stream was searched."""
        return self.searched >= self.stream_length


@dataclass(frozen=True)
class Attempt:
    """One attempt seen in the events stream: when it started and how it ended."""

    number: int | None
    started: int | None
    ended: int | None
    # "completed", "failed", "requeued" (back to waiting: a retry or a stall), "delayed" (a retry with
    # backoff, or the job delayed itself), "stalled", "waiting-children", or "running" (no end seen).
    outcome: str

    @property
    def duration_ms(self) -> int | None:
        """How long the attempt ran, when both ends are known."""
        if self.started is not None and self.ended is not None:
            return max(0, self.ended - self.started)
        return None


@dataclass(frozen=True)
class Timeline:
    """What the job page's timeline shows."""

    created: int | None
    delay_until: int | None
    last_started: int | None
    finished: int | None
    # Waiting time before the last start (after the delay) and run time of the last attempt.
    wait_ms: int | None
    run_ms: int | None
    attempts_made: int
    attempts_started: int
    failed: bool
    attempts: list[Attempt]
    window: EventWindow | None


def stream_ms(stream_id: str) -> int:
    """The milliseconds of a stream entry id `<ms>-<seq>` (0 when malformed)."""
    return integer(stream_id.partition("-")[0]) or 0


def parse_window(reply: list[Any]) -> EventWindow:
    """An EventWindow from the reply of job_events.lua (events oldest first)."""
    length, searched, oldest, budget_spent, flat = reply
    events = [
        JobEvent(
            stream_id=text(flat[index]),
            at=stream_ms(text(flat[index])),
            event=text(flat[index + 1]),
            prev=text(flat[index + 2]),
            detail=text(flat[index + 3]),
        )
        for index in range(0, len(flat) - 3, 4)
    ]
    oldest_id = text(oldest)
    return EventWindow(
        stream_length=integer(length) or 0,
        searched=integer(searched) or 0,
        oldest=stream_ms(oldest_id) if oldest_id else None,
        budget_spent=integer(budget_spent) == 1,
        events=list(reversed(events)),
    )


async def fetch_job_events(
    client: Redis, queue: QueueRef, job_id: str, limits: EventLimits | None = None
) -> EventWindow:
    """The job's events in the newest entries of its queue's events stream (one bounded script call)."""
    queue.job_key(job_id)  # NotAJob for the queue's own key names
    limits = limits or EventLimits()
    reply = await JOB_EVENTS.call(
        client,
        [f"{queue.key_prefix}events"],
        [job_id, limits.max_search, limits.max_matches, limits.budget_bytes, limits.value_bytes],
    )
    return parse_window(reply)


# How an open attempt ends, by event (and `prev` for `waiting`).
ENDINGS = {
    "completed": "completed",
    "failed": "failed",
    "delayed": "delayed",
    "stalled": "stalled",
    "waiting-children": "waiting-children",
}


def _ending(event: JobEvent) -> str | None:
    if event.event == "waiting" and event.prev in ("active", "failed"):
        # BullMQ's retryJob (a retry without backoff) and a stalled job moved back both say this.
        return "requeued"
    return ENDINGS.get(event.event)


def attempts_of(events: list[JobEvent], last_number: int) -> list[Attempt]:
    """Attempts from the job's events (oldest first): each `active` starts one, the next end event ends
    it; numbered back from `last_number` (the attempts started), None where that would go below 1."""
    found: list[tuple[int | None, int | None, str]] = []
    open_start: int | None = None
    is_open = False
    for event in events:
        if event.event == "active":
            if is_open:
                found.append((open_start, None, "stalled"))
            open_start, is_open = event.at, True
            continue
        ending = _ending(event)
        if ending is None:
            continue
        if is_open:
            found.append((open_start, event.at, ending))
            is_open = False
        elif ending in ("completed", "failed") and not found:
            # Its `active` event is older than the window searched.
            found.append((None, event.at, ending))
    if is_open:
        found.append((open_start, None, "running"))
    count = len(found)
    return [
        Attempt(
            number=last_number - (count - 1 - index) if last_number - (count - 1) >= 1 else None,
            started=started,
            ended=ended,
            outcome=outcome,
        )
        for index, (started, ended, outcome) in enumerate(found)
    ]


def build_timeline(job: JobDetail, window: EventWindow | None) -> Timeline:
    """The timeline of a job from its hash and, when read, the events window."""
    created = job.timestamp
    delay_until = created + job.delay if created is not None and job.delay else None
    last_number = job.attempts_started or job.attempts_made
    attempts = attempts_of(window.events, last_number) if window is not None else []
    return Timeline(
        created=created,
        delay_until=delay_until,
        last_started=job.processed_on,
        finished=job.finished_on,
        wait_ms=job.wait_ms,
        run_ms=job.duration_ms,
        attempts_made=job.attempts_made,
        attempts_started=job.attempts_started,
        failed=job.state == "failed",
        attempts=attempts,
        window=window,
    )
