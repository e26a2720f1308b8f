"""Find a job by its exact id in many queues of one connection: one pipelined EXISTS per queue, then the
state of the first matches (each a bounded script call, as the job page reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.jobs import JOB_STATE, MAX_STATE_SCAN
from queues.keys import not_a_job
from queues.models import QueueRef
from queues.parsing import integer, text
from queues.scripts import run_pipeline

# The states of at most this many matches are read; more matches are listed without a state.
MAX_STATES = 20


@dataclass(frozen=True)
class LookupMatch:
    """A queue holding a job with the id, and its state ("" when not read: over MAX_STATES)."""

    queue: QueueRef
    state: str


@dataclass(frozen=True)
class Lookup:
    """What the search of one connection found."""

    matches: list[LookupMatch]
    # Queues whose key for the id could not be checked (an error reply for that queue alone).
    errors: list[QueueRef]
    # More matches than states read.
    states_cut: bool


async def find_job_id(
    client: Redis, queues: list[QueueRef], job_id: str, max_states: int = MAX_STATES
) -> Lookup:
    """The queues (of one connection) that hold a job `job_id`: `<prefix>:<name>:<id>` exists and is a
    job's hash of that queue. Queues for which the id names one of their own keys are skipped."""
    candidates = [queue for queue in queues if not_a_job(job_id) is None]
    if not candidates:
        return Lookup([], [], states_cut=False)

    def exists(pipe: Pipeline) -> None:
        for queue in candidates:
            pipe.exists(queue.key_prefix + job_id)

    replies = await run_pipeline(client, exists, [], per_command_errors=True)
    errors = [queue for queue, reply in zip(candidates, replies, strict=True) if isinstance(reply, Exception)]
    found = [
        queue
        for queue, reply in zip(candidates, replies, strict=True)
        if not isinstance(reply, Exception) and integer(reply) == 1
    ]
    checked, unchecked = found[:max_states], found[max_states:]

    def states(pipe: Pipeline) -> None:
        for queue in checked:
            JOB_STATE.queue(pipe, [queue.key_prefix], [job_id, MAX_STATE_SCAN])

    state_replies: list[Any] = (
        await run_pipeline(client, states, [JOB_STATE], per_command_errors=True) if checked else []
    )
    matches: list[LookupMatch] = []
    for queue, reply in zip(checked, state_replies, strict=True):
        if isinstance(reply, Exception):
            errors.append(queue)
            continue
        state = text(reply)
        if state not in ("none", "not-a-job"):
            matches.append(LookupMatch(queue, state))
    matches.extend(LookupMatch(queue, "") for queue in unchecked)
    return Lookup(matches, errors, states_cut=bool(unchecked))
