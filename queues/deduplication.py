"""Deduplication ids: which job holds one (Node BullMQ's `getDeduplicationJobId`), and releasing it.

BullMQ keeps a deduplication id as the string key `<prefix>:<name>:de:<id>` holding the id of the job
that was added with it; while it exists, every job added with the same id is dropped. The id is text
someone else chose, so it is checked before it becomes part of a key (not empty, bounded), and the key
is trusted only once a bounded read-only script (queues/lua/deduplication.lua) found it to be this
queue's: a string, not a key of another queue nested under this one, naming a job that was added with
this very id. Releasing it runs BullMQ's own removeDeduplicationKey script, which deletes the key only
while it still names that job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bullmq.redis_connection import loadScript
from redis.asyncio import Redis
from redis.client import NEVER_DECODE
from redis.exceptions import NoScriptError

from queues.jobs import MAX_STATE_SCAN
from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.parsing import identifier, integer, text
from queues.scripts import script

DEDUPLICATION = script("deduplication")
# Longer ids are not looked up here: every key of the id repeats it (BullMQ sets no bound).
MAX_DEDUP_ID_BYTES = 1024
# The most of the key's value (a job id) that is read.
MAX_HOLDER_ID_BYTES = 16 * 1024
# BullMQ's script (PyPI `bullmq`, as Node ships it): DEL the key only while it holds the given job id.
REMOVE_DEDUPLICATION_KEY = loadScript("removeDeduplicationKey-1.lua")


class DedupStatus(StrEnum):
    """What the key of a deduplication id was found to be."""

    NONE = "none"
    FOREIGN = "foreign"
    TOO_LONG = "too-long"
    HELD = "held"
    OTHER_JOB = "other-job"
    GONE = "gone"


@dataclass(frozen=True)
class DedupHolder:
    """Who holds a deduplication id of a queue: the job id as stored (raw bytes), its state when it is
    a job of the queue added with the id, and the key's time to live (-1: none, -2: no key)."""

    queue: QueueRef
    dedup_id: str
    status: DedupStatus
    raw_job_id: bytes | None = None
    ttl_ms: int = -2
    state: str = ""

    @property
    def job_id(self) -> str | None:
        """The holder's job id as text (invalid UTF-8 shown as U+FFFD), or None."""
        return None if self.raw_job_id is None else identifier(self.raw_job_id)[0]

    @property
    def linkable(self) -> bool:
        """The job id is valid UTF-8, so its text names the job (and may go into a link)."""
        return self.raw_job_id is not None and identifier(self.raw_job_id)[1]

    @property
    def releasable(self) -> bool:
        """The key is this queue's deduplication key of the id, so releasing it is what Node's
        removeDeduplicationKey would do: held by its job, or left by a job that is gone."""
        return self.status in (DedupStatus.HELD, DedupStatus.GONE)

    @property
    def key(self) -> str:
        """The Redis key of the id."""
        return dedup_key(self.queue, self.dedup_id)

    def explanation(self) -> str:
        """What was found, in a sentence for people."""
        if self.status is DedupStatus.NONE:
            return gettext_lazy(
                "No job holds deduplication id %(id)r in %(queue)s: jobs added with it are kept.",
                id=self.dedup_id,
                queue=self.queue.key,
            )
        if self.status is DedupStatus.FOREIGN:
            return gettext_lazy(
                "%(id)r does not name a deduplication key of %(queue)s (the key belongs to another queue"
                " or is not a string); it is left alone.",
                id=self.dedup_id,
                queue=self.queue.key,
            )
        if self.status is DedupStatus.TOO_LONG:
            return gettext_lazy(
                "The key of deduplication id %(id)r holds more than %(limit)d bytes, which is no job id;"
                " it is left alone.",
                id=self.dedup_id,
                limit=MAX_HOLDER_ID_BYTES,
            )
        if self.status is DedupStatus.OTHER_JOB:
            return gettext_lazy(
                "The key of deduplication id %(id)r names %(job)r, which is not a job of %(queue)s added"
                " with this id; it is left alone.",
                id=self.dedup_id,
                job=self.job_id,
                queue=self.queue.key,
            )
        if self.status is DedupStatus.GONE:
            return gettext_lazy(
                "Deduplication id %(id)r is held by job %(job)s, which no longer exists; jobs added with"
                " it are dropped until it is released or expires.",
                id=self.dedup_id,
                job=self.job_id,
            )
        return gettext_lazy(
            "Deduplication id %(id)r is held by job %(job)s; jobs added with it are dropped until that"
            " job finishes, the id expires or it is released.",
            id=self.dedup_id,
            job=self.job_id,
        )


def dedup_id_problem(dedup_id: str) -> str | None:
    """Why `dedup_id` is not looked up or released here, or None."""
    if not dedup_id:
        return gettext_lazy("Give the deduplication id.")
    if len(dedup_id.encode("utf-8", "surrogatepass")) > MAX_DEDUP_ID_BYTES:
        return gettext_lazy(
            "Deduplication ids longer than %(limit)d bytes are not looked up here.", limit=MAX_DEDUP_ID_BYTES
        )
    return None


def dedup_key(queue: QueueRef, dedup_id: str) -> str:
    """`<prefix>:<name>:de:<id>`, as BullMQ names it (the id must have passed dedup_id_problem)."""
    return f"{queue.key_prefix}de:{dedup_id}"


async def find_dedup_holder(client: Redis, queue: QueueRef, dedup_id: str) -> DedupHolder:
    """Who holds `dedup_id` in `queue`: one bounded script call; the id must have passed
    dedup_id_problem. Replies are read undecoded, so a job id that is not UTF-8 stays exact."""
    args: list[Any] = [queue.key_prefix, dedup_id, MAX_HOLDER_ID_BYTES, MAX_STATE_SCAN]
    try:
        reply = await _evalsha_undecoded(client, args)
    except NoScriptError:
        await DEDUPLICATION.load(client)
        reply = await _evalsha_undecoded(client, args)
    status, raw_job, raw_ttl, state = reply
    job = raw_job if isinstance(raw_job, bytes) else None
    ttl = integer(raw_ttl)
    return DedupHolder(
        queue, dedup_id, DedupStatus(text(status)), job, -2 if ttl is None else ttl, text(state)
    )


async def _evalsha_undecoded(client: Redis, args: list[Any]) -> Any:
    return await client.execute_command(  # type: ignore[no-untyped-call]
        "EVALSHA", DEDUPLICATION.sha, 1, *args, **{NEVER_DECODE: True}
    )


async def remove_dedup_key(client: Redis, holder: DedupHolder) -> bool:
    """Delete the id's key with BullMQ's removeDeduplicationKey script, only while it still names the
    holder's job; True when it was deleted."""
    if not holder.releasable or holder.raw_job_id is None:
        return False
    remove = client.register_script(REMOVE_DEDUPLICATION_KEY)
    return integer(await remove(keys=[holder.key], args=[holder.raw_job_id])) == 1
