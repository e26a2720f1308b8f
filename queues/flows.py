"""Where an action's effects can reach outside its queue through BullMQ flows (parents and children).

BullMQ's scripts change a job's parent when they retry or remove the job (`reprocessJob`,
`moveJobsToWait`, `removeJob`, `cleanJobsInSet`, `drain`, `obliterate`), remove a flow parent's
descendants with it (`removeJob` unless told to keep them), and, removing a parent that sits in the
same queue, go on to its own parent. These reads find those job keys, bounded, so that the dashboard
can refuse an action that would change a queue it must not change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from queues.models import QueueRef
from queues.parsing import integer, text
from queues.scripts import script
from queues.states import state_key

FLOW_LINKS = script("flow_links")
# Jobs whose parents one script call reads; a call stays around a millisecond.
BATCH = 1000
# Flow nodes followed before the answer is "too large to tell".
MAX_NODES = 10_000


@dataclass(frozen=True)
class FlowReach:
    """Job keys outside the action's own jobs that it may change: ancestors and descendants."""

    ancestors: frozenset[str] = frozenset()
    descendants: frozenset[str] = frozenset()
    # False when a bound was hit: there may be more than these.
    complete: bool = True

    @property
    def job_keys(self) -> frozenset[str]:
        """Every job key reached."""
        return self.ancestors | self.descendants

    def merged(self, other: FlowReach) -> FlowReach:
        """Both reaches together."""
        return FlowReach(
            self.ancestors | other.ancestors,
            self.descendants | other.descendants,
            self.complete and other.complete,
        )


def _reach(reply: list[object]) -> tuple[FlowReach, int]:
    ancestors, descendants, complete, read = reply
    return (
        FlowReach(
            frozenset(text(key) for key in ancestors or []),  # type: ignore[attr-defined]
            frozenset(text(key) for key in descendants or []),  # type: ignore[attr-defined]
            integer(complete) == 1,
        ),
        integer(read) or 0,
    )


async def job_reach(
    client: Redis, queue: QueueRef, job_id: str, *, descendants: bool, max_nodes: int = MAX_NODES
) -> FlowReach:
    """The parent chain of one job and, with `descendants`, every job below it (one script call)."""
    queue.job_key(job_id)  # NotAJob for the queue's own key names
    reply = await FLOW_LINKS.call(
        client, [queue.key_prefix], ["job", job_id, "1" if descendants else "0", max_nodes]
    )
    return _reach(reply)[0]


async def states_reach(
    client: Redis, queue: QueueRef, states: Iterable[str], *, max_nodes: int = MAX_NODES
) -> FlowReach:
    """The parent chains of every job in some states of a queue, read BATCH jobs per script call."""
    total = FlowReach()
    for state in states:
        key = state_key(state)
        start = 0
        while True:
            reply = await FLOW_LINKS.call(
                client,
                [queue.key_prefix],
                ["range", key.suffix, "1" if key.is_list else "0", start, start + BATCH - 1, max_nodes],
            )
            reach, read = _reach(reply)
            total = total.merged(reach)
            if not total.complete or len(total.ancestors) > max_nodes:
                return FlowReach(total.ancestors, total.descendants, complete=False)
            if read < BATCH:
                break
            start += BATCH
    return total
