"""Job schedulers and legacy repeatables of a queue, a page at a time (queues/lua/schedulers.lua).

A scheduler (BullMQ >= 5.16, `queue.upsertJobScheduler`) is a member of the `<q>:repeat` zset, scored
by its next run in ms, and the hash `<q>:repeat:<id>`: name, pattern or every, tz, limit, ic
(iterations so far), startDate, endDate, offset, data (template data, JSON) and opts (template job
options, JSON). Repeatables of `queue.add(..., {repeat})` (BullMQ < 6): BullMQ 5 writes the md5 of
`name:jobId:endDate:tz:pattern-or-every` as the member and a hash (name, every or pattern, tz, endDate;
no ic, no template), listed like a scheduler, as Node's getJobSchedulers lists them; older versions
left that key itself as the member and no hash ("legacy"), shown as far as it parses; so does Bull 3/4
(whose key leaves out the time zone of a repeatable with `every`).
Fields are parsed as Node's JobScheduler.transformSchedulerData reads them; a value of the wrong type
is shown as stored, with a problem, and never breaks the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from queues.messages import gettext_lazy
from queues.models import JsonValue, QueueRef, Text
from queues.parsing import cut_text, identifier, integer, json_value, text
from queues.scripts import script

SCHEDULERS = script("schedulers")
# The hash fields read, in this order; data and opts last (they have their own, larger limit).
NUMBER_FIELDS = ("every", "limit", "ic", "startDate", "endDate", "offset")
TEXT_FIELDS = ("name", "pattern", "tz")
FIELDS = (*TEXT_FIELDS, *NUMBER_FIELDS, "data", "opts")
FIELD_BYTES = 1024
TEMPLATE_BYTES = 8 * 1024
ID_BUDGET = 256 * 1024
# List entries searched for the state of a scheduler's newest job (found in a zset, as most are, first).
STATE_SCAN = 1000
# Legacy members: `name:jobId:endDate:tz:pattern-or-every` (at least four colons).
LEGACY_SEGMENTS = 5


@dataclass(frozen=True)
class Scheduler:
    """One row of the `repeat` zset: a job scheduler, a legacy repeatable, or a broken entry."""

    id: str
    next_millis: int | None
    kind: str  # "scheduler", "legacy" or "broken"
    name: str = ""
    pattern: str = ""
    every: int | None = None
    tz: str = ""
    limit: int | None = None
    iterations: int | None = None
    start_date: int | None = None
    end_date: int | None = None
    offset: int | None = None
    data: JsonValue | None = None
    opts: JsonValue | None = None
    # The newest job this scheduler made (`repeat:<id>:<ms>`) and its state, when one exists.
    latest_job: str = ""
    latest_state: str = ""
    # The legacy repeatable's job id (second segment of its key).
    legacy_job_id: str = ""
    # False when the id is not UTF-8: shown, but not removable from here.
    addressable: bool = True
    problems: tuple[str, ...] = ()

    @property
    def problem(self) -> str:
        """What is wrong with this entry, in words, or ""."""
        return " ".join(self.problems)

    @property
    def removable(self) -> bool:
        """Whether the remove action can remove this entry: a job scheduler. A legacy repeatable's next
        run is `repeat:<md5 of its key>:<ms>`, which BullMQ's removeJobScheduler does not delete (Node's
        removeRepeatableByKey does; the PyPI package has no script for it), so it is not offered."""
        return self.kind == "scheduler" and self.addressable and bool(self.id)


@dataclass(frozen=True)
class SchedulerPage:
    """A page of a queue's schedulers, soonest next run first."""

    queue: QueueRef
    page: int
    per_page: int
    total: int
    schedulers: list[Scheduler] = field(default_factory=list)
    # Rows past the id budget were not read.
    cut: bool = False
    problem: str = ""

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, math.ceil(self.total / self.per_page))


def parse_legacy(scheduler_id: str, next_millis: int | None, addressable: bool) -> Scheduler:
    """A legacy repeatable from its key, as BullMQ's keyToData read it; "broken" when it has no hash
    and is not of that shape."""
    parts = scheduler_id.split(":")
    if len(parts) == LEGACY_SEGMENTS - 1 and parts[3].isdigit():
        # Bull 3/4 leaves out the time zone of a repeatable with `every`: `name:jobId:endDate:every`.
        parts = [*parts[:3], "", parts[3]]
    if len(parts) < LEGACY_SEGMENTS:
        problem = gettext_lazy("This entry has no settings hash; BullMQ cannot run it.")
        return Scheduler(scheduler_id, next_millis, "broken", addressable=addressable, problems=(problem,))
    suffix = ":".join(parts[4:])
    every = integer(suffix) if suffix.isdigit() else None
    return Scheduler(
        scheduler_id,
        next_millis,
        "legacy",
        name=parts[0],
        legacy_job_id=parts[1],
        end_date=integer(parts[2]),
        tz=parts[3],
        pattern="" if every is not None else suffix,
        every=every,
        addressable=addressable,
    )


def _number(name: str, raw: Text | None, problems: list[str]) -> int | None:
    if raw is None:
        return None
    if raw.unread:
        problems.append(
            gettext_lazy("%(field)s is %(size)d bytes long, not shown.", field=name, size=raw.size)
        )
        return None
    if not raw.value:
        return None
    value = integer(raw.value)
    if value is None or raw.truncated:
        problems.append(
            gettext_lazy("%(field)s is %(value)r, not a number.", field=name, value=raw.value[:40])
        )
    return value


def _text(name: str, raw: Text | None, problems: list[str]) -> str:
    if raw is None:
        return ""
    if raw.unread:
        problems.append(
            gettext_lazy("%(field)s is %(size)d bytes long, not shown.", field=name, size=raw.size)
        )
        return ""
    if not raw.utf8:
        problems.append(gettext_lazy("%(field)s is not valid UTF-8.", field=name))
    return raw.value


def _json(name: str, raw: Text | None, problems: list[str]) -> JsonValue | None:
    if raw is None or (not raw.value and not raw.unread):
        return None
    if raw.unread:
        problems.append(
            gettext_lazy("%(field)s is %(size)d bytes long, not shown.", field=name, size=raw.size)
        )
        return None
    parsed = json_value(raw)
    if not parsed.is_valid:
        problems.append(gettext_lazy("%(field)s is not valid JSON.", field=name))
    return parsed


def parse_row(row: list[Any]) -> Scheduler | None:
    """One row of schedulers.lua's reply; None for the "over budget" marker."""
    if len(row) < 5:
        return None
    scheduler_id, utf8 = identifier(row[0])
    next_millis = integer(row[1])
    hash_type = text(row[2])
    latest_job, latest_ok = identifier(row[3]) if row[3] else ("", True)
    latest = {
        "latest_job": latest_job if latest_ok else "",
        "latest_state": text(row[4]) if latest_ok else "",
    }
    if not utf8:
        latest = {"latest_job": "", "latest_state": ""}
    if hash_type == "long-id":
        problem = gettext_lazy("Its id is longer than 1 KB; it is shown cut and cannot be removed here.")
        return Scheduler(scheduler_id, next_millis, "broken", addressable=False, problems=(problem,))
    if hash_type == "none":
        return parse_legacy(scheduler_id, next_millis, utf8)
    if hash_type != "hash":
        problem = gettext_lazy(
            "Its settings key is a %(type)s, not a hash; BullMQ cannot run it.", type=hash_type
        )
        return Scheduler(scheduler_id, next_millis, "broken", addressable=utf8, problems=(problem,))
    raw: dict[str, Text | None] = {}
    values = row[5:]
    for index, name in enumerate(FIELDS):
        if 2 * index + 1 >= len(values):
            break
        value, size = values[2 * index], integer(values[2 * index + 1]) or 0
        if value is None or value is False:
            raw[name] = cut_text(b"", size, read=False) if size else None
        else:
            raw[name] = cut_text(value, size)
    problems: list[str] = []
    if not (raw.get("pattern") or raw.get("every")):
        problems.append(gettext_lazy("It has neither a pattern nor an every interval."))
    return Scheduler(
        scheduler_id,
        next_millis,
        "scheduler",
        name=_text("name", raw.get("name"), problems),
        pattern=_text("pattern", raw.get("pattern"), problems),
        tz=_text("tz", raw.get("tz"), problems),
        every=_number("every", raw.get("every"), problems),
        limit=_number("limit", raw.get("limit"), problems),
        iterations=_number("ic", raw.get("ic"), problems),
        start_date=_number("startDate", raw.get("startDate"), problems),
        end_date=_number("endDate", raw.get("endDate"), problems),
        offset=_number("offset", raw.get("offset"), problems),
        data=_json("data", raw.get("data"), problems),
        opts=_json("opts", raw.get("opts"), problems),
        addressable=utf8,
        problems=tuple(problems),
        **latest,
    )


def parse_page(queue: QueueRef, page: int, per_page: int, reply: Any) -> SchedulerPage:
    """schedulers.lua's reply as a SchedulerPage."""
    if not isinstance(reply, list) or len(reply) < 2:
        return SchedulerPage(queue, page, per_page, 0, problem=gettext_lazy("Redis gave no answer."))
    if reply[0] is None or reply[0] is False:
        problem = gettext_lazy(
            "%(key)s is a %(type)s, not what BullMQ keeps there; its schedulers cannot be listed.",
            key=queue.key_prefix + "repeat",
            type=text(reply[1]),
        )
        return SchedulerPage(queue, page, per_page, 0, problem=problem)
    rows: list[Scheduler] = []
    cut = False
    for row in reply[1] if isinstance(reply[1], list) else []:
        parsed = parse_row(row) if isinstance(row, list) else None
        if parsed is None:
            cut = True
            break
        rows.append(parsed)
    return SchedulerPage(queue, page, per_page, integer(reply[0]) or 0, rows, cut)


async def fetch_schedulers(client: Redis, queue: QueueRef, page: int, per_page: int) -> SchedulerPage:
    """One page of the queue's schedulers, soonest next run first (one round trip)."""
    start = (page - 1) * per_page
    args = [start, per_page, FIELD_BYTES, TEMPLATE_BYTES, ID_BUDGET, STATE_SCAN, *FIELDS]
    reply = await SCHEDULERS.call(client, [queue.key_prefix], args)
    return parse_page(queue, page, per_page, reply)
