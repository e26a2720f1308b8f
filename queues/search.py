"""Job search: text in name / data / failed reason, an exact name, a time range, in one or all states.

Bounded and resumable. One search request reads at most `SearchLimits.max_scan` jobs, in steps of
`batch` jobs per Lua call (`queues/lua/search.lua`), each step copying at most `step_bytes` inside
Redis and the request at most `budget_bytes`; a value over `max_field_bytes` is never read (the job is
counted as not fully searched). Each state is read newest first (the queue page's order); "all states"
reads them one after the other in SEARCH_ORDER. Matching is ASCII-case-insensitive substring search
inside Redis (so only matching jobs cross the wire): the stored text as it is, so data is searched as
its JSON (the query is also tried JSON-escaped, so `ü` finds data a producer stored as `\\u00fc`).

Where a request stops, its `SearchCursor` says where to go on: the state, the position reached and
the last job read there (with its score, for the zsets). A continued search goes on right after that
job wherever it is now, so jobs added to the state in between (newer ones, above the cursor) are not
read and jobs removed in between shift nothing. When that job itself has left the state:
- in a zset (completed and failed by finish time, delayed by due time, prioritized, waiting-children)
  the search goes on at the jobs ordered after it (lower scores, equal scores after its id): exact;
- in a list (waiting, active, the legacy paused) it goes on at the same position from the newest end,
  so a job can be read twice or missed when jobs were added and removed meanwhile.
A job that changes state between two requests can be found in both states, or in neither.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from queues.jobs import parse_summary
from queues.messages import gettext_lazy
from queues.models import JobSummary, QueueRef
from queues.parsing import integer, text
from queues.scripts import script
from queues.states import state_key

SEARCH = script("search")

# The order in which "all states" are searched: the short-lived states first, the long histories last.
SEARCH_ORDER: tuple[str, ...] = (
    "active",
    "waiting",
    "prioritized",
    "delayed",
    "waiting-children",
    "failed",
    "completed",
    "paused",
)
# The states whose zset is scored by the jobs' finish time (`finishedOn`).
FINISHED_STATES = frozenset({"completed", "failed"})
# Ids longer than this are not kept in a cursor (it goes into URLs): such a cursor goes on by position.
MAX_CURSOR_ID = 200


# Needle bytes a step's full step_bytes is meant for (see search()).
NEEDLE_BYTES_PER_STEP = 32


@dataclass(frozen=True)
class SearchLimits:
    """How much one search request may read (BULLMQ_DASHBOARD["SEARCH"], see docs/security.md)."""

    # Jobs read per request (the stated bound; "Continue searching" goes on from where it stopped).
    max_scan: int = 10_000
    # Jobs read per Lua call: each call is short, and a cancelled request stops between two calls.
    batch: int = 500
    # A name, data or failed reason longer than this is not read, so not searched (counted).
    max_field_bytes: int = 256 * 1024
    # Bytes copied inside Redis per Lua call and per request (ids and values read).
    step_bytes: int = 1024 * 1024
    budget_bytes: int = 64 * 1024 * 1024
    # Matches returned per request (a full page ends the request early, with a cursor).
    max_results: int = 100
    # Bytes kept of each summary field sent (as ReadLimits.summary_bytes).
    summary_bytes: int = 512

    @property
    def max_calls(self) -> int:
        """Lua calls per request: twice what max_scan needs (steps end early when their bytes run out)."""
        return 2 * max(1, math.ceil(self.max_scan / max(1, self.batch)))


@dataclass(frozen=True)
class SearchQuery:
    """What to look for. `states` holds one state or SEARCH_ORDER; `time_field` is "timestamp"
    (created) or "finishedOn" (finished; completed and failed only), "" without a time range."""

    states: tuple[str, ...]
    text: str = ""
    name: str | None = None
    time_field: str = ""
    since: int | None = None
    until: int | None = None

    @property
    def criteria(self) -> bool:
        """True when something narrows the search (a search for nothing is not run)."""
        return bool(self.text) or self.name is not None or self.since is not None or self.until is not None

    def fingerprint(self) -> str:
        """The query's parameters as one string, so that a cursor cannot be used for another search."""
        return json.dumps(
            [self.states, self.text, self.name, self.time_field, self.since, self.until],
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class SearchCursor:
    """Where a search stopped: the state, the position reached, the last job read (id, zset score)
    and how many jobs the search has read so far (over all its requests)."""

    state: str
    position: int = 0
    last_id: str = ""
    last_score: str = ""
    scanned_before: int = 0

    def as_list(self) -> list[Any]:
        """The cursor as a JSON-able list (the dashboard signs it)."""
        return [self.state, self.position, self.last_id, self.last_score, self.scanned_before]

    @classmethod
    def from_list(cls, value: object, states: tuple[str, ...]) -> SearchCursor:
        """A cursor from `as_list`'s shape; ValueError when it is not one for these states."""
        if not isinstance(value, list) or len(value) != 5:
            raise ValueError("not a cursor")
        state, position, last_id, last_score, scanned_before = value
        if state not in states or not isinstance(last_id, str) or not isinstance(last_score, str):
            raise ValueError("not a cursor of this search")
        for number in (position, scanned_before):
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise ValueError("not a cursor position")
        if last_score:
            float(last_score)  # ValueError for anything Redis would not take as a score
        if len(last_id) > MAX_CURSOR_ID:
            raise ValueError("cursor id too long")
        return cls(state, position, last_id, last_score, scanned_before)


@dataclass(frozen=True)
class FoundJob:
    """One match: the state it was found in and its summary."""

    state: str
    job: JobSummary


@dataclass
class SearchResult:
    """What one request found, how much it read, and where to go on (None when every state is done)."""

    query: SearchQuery
    jobs: list[FoundJob] = field(default_factory=list)
    scanned: int = 0
    scanned_before: int = 0
    # Jobs not matched whose name, data or failed reason was too long to read, so not searched.
    not_searched: int = 0
    # Keys in the states' lists that are not jobs (other types, hashes BullMQ did not write).
    not_jobs: int = 0
    # The read bound (jobs, calls or bytes) ended the request before the states were done.
    bound_hit: bool = False
    next_cursor: SearchCursor | None = None
    # States whose key is not a list or zset (another program wrote it): not searched.
    problems: list[str] = field(default_factory=list)
    # Where the last state read stands: its name, the position reached, its size.
    progress_state: str = ""
    progress_position: int = 0
    progress_total: int = 0
    # Bytes copied inside Redis by this request (ids and values read).
    copied: int = 0

    @property
    def scanned_total(self) -> int:
        """Jobs read by this search over all its requests."""
        return self.scanned_before + self.scanned


def needles(query_text: str) -> list[str]:
    """The text to look for, lowered as Redis's string.lower lowers (ASCII only), and JSON-escaped
    the two ways producers write it (data is stored as JSON text)."""
    lowered = "".join(ch.lower() if ch.isascii() else ch for ch in query_text)
    found = [lowered]
    for ensure_ascii in (True, False):
        escaped = json.dumps(lowered, ensure_ascii=ensure_ascii)[1:-1]
        if ensure_ascii:
            escaped = escaped.lower()  # \u00DC and \u00dc
        if escaped not in found:
            found.append(escaped)
    return found


async def search_jobs(
    client: Redis, queue: QueueRef, query: SearchQuery, cursor: SearchCursor | None, limits: SearchLimits
) -> SearchResult:
    """Read jobs newest first from where `cursor` stopped (the start without one) until the bound is
    reached, a page of matches is full, or every state of the query is done. One Lua call per step;
    a cancelled request stops between two steps."""
    result = SearchResult(query, scanned_before=cursor.scanned_before if cursor else 0)
    states = query.states
    index = states.index(cursor.state) if cursor else 0
    position = cursor.position if cursor else 0
    last_id = cursor.last_id if cursor else ""
    last_score = cursor.last_score if cursor else ""
    wanted = needles(query.text) if query.text else []
    # Lua's plain string.find compares the needle at each place its first byte matches: on values
    # made of near misses (a job author's `aaaa…` against a query `aaa…ab`) a step costs its bytes
    # times the needles' length, so a step reads fewer bytes the longer the needles are.
    step_bytes = limits.step_bytes // max(1, sum(len(needle) for needle in wanted) // NEEDLE_BYTES_PER_STEP)
    calls = copied = 0
    while index < len(states):
        if result.scanned >= limits.max_scan or calls >= limits.max_calls or copied >= limits.budget_bytes:
            result.bound_hit = True
            break
        if len(result.jobs) >= limits.max_results:
            break
        state = states[index]
        key = state_key(state)
        score_is_time = query.time_field == "finishedOn" and state in FINISHED_STATES
        reply = await SEARCH.call(
            client,
            [queue.key_prefix],
            [
                key.suffix,
                "1" if key.is_list else "0",
                position,
                last_id,
                last_score,
                min(limits.batch, limits.max_scan - result.scanned),
                limits.max_results - len(result.jobs),
                limits.max_field_bytes,
                min(step_bytes, limits.budget_bytes - copied),
                query.name or "",
                "1" if query.name is not None else "0",
                query.time_field,
                "" if query.since is None else query.since,
                "" if query.until is None else query.until,
                "1" if score_is_time else "0",
                limits.summary_bytes,
                *wanted,
            ],
        )
        calls += 1
        if reply[0] is None or reply[0] is False:
            result.problems.append(
                gettext_lazy(
                    "%(key)s is a %(type)s, not what BullMQ keeps there; its jobs were not searched.",
                    key=queue.key_prefix + key.suffix,
                    type=text(reply[1]),
                )
            )
            index, position, last_id, last_score = index + 1, 0, "", ""
            continue
        _ok, next_position, read_id, read_score, scanned, not_searched, not_jobs, total, done, rows, spent = (
            reply
        )
        result.scanned += integer(scanned) or 0
        result.not_searched += integer(not_searched) or 0
        result.not_jobs += integer(not_jobs) or 0
        copied += integer(spent) or 0
        result.copied = copied
        result.jobs.extend(FoundJob(state, parse_summary(row)) for row in rows)
        result.progress_state = state
        result.progress_position = integer(next_position) or 0
        result.progress_total = integer(total) or 0
        if integer(done):
            index, position, last_id, last_score = index + 1, 0, "", ""
        else:
            position = integer(next_position) or 0
            last_id = _cursor_id(read_id)
            last_score = text(read_score) if last_id else ""
    if index < len(states):
        result.next_cursor = SearchCursor(states[index], position, last_id, last_score, result.scanned_total)
    return result


def _cursor_id(raw: object) -> str:
    """The last id read, kept for the cursor only when it is short UTF-8 text ("" goes on by position)."""
    if isinstance(raw, bytes):
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            return ""
    else:
        decoded = text(raw)
    return decoded if len(decoded) <= MAX_CURSOR_ID else ""
