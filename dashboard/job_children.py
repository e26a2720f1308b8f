"""What a flow parent waits on: the names and states of its first children and a summary, read with the
flow tree's own bounded walk (queues/flow_tree.py) limited to the job and one level below it, and shown
as the flow tree page shows them (dashboard/flow_tree.py: nothing of a queue the user may not view)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from redis.asyncio import Redis

from dashboard.flow_tree import shown_tree
from dashboard.users import User
from queues.flow_tree import FlowLimits, fetch_flow_tree
from queues.models import JobDetail, NotAJob, QueueRef

# The job and at most 20 children, no parents, one level: one script call of a few hundred commands.
CHILDREN_READ = 20
CHILD_LIMITS = FlowLimits(
    max_ancestors=0,
    max_below=1,
    max_nodes=CHILDREN_READ + 1,
    max_children=CHILDREN_READ,
    max_children_self=CHILDREN_READ,
)
# The order states are summed up in: what blocks first.
STATE_ORDER = (
    "failed",
    "active",
    "waiting",
    "prioritized",
    "delayed",
    "waiting-children",
    "completed",
    "unknown",
)


@dataclass(frozen=True)
class ChildInfo:
    """A child's name and state, as read for the job page."""

    name: str
    state: str
    name_unread: bool = False


@dataclass(frozen=True)
class ChildrenOverview:
    """The summary line: how many children the parent still waits on, and the states of those read."""

    total: int
    pending: int
    # States of the pending children read (and visible to the user), most blocking first.
    pending_states: list[tuple[str, int]]
    pending_read: int
    # Child key -> name and state, for the children read in queues the user may view.
    info: dict[str, ChildInfo] = field(default_factory=dict)

    @property
    def pending_not_read(self) -> int:
        """Pending children whose state was not read (beyond the bound, or in queues not shown)."""
        return max(0, self.pending - self.pending_read)


def _ordered(states: Counter[str]) -> list[tuple[str, int]]:
    rank = {state: index for index, state in enumerate(STATE_ORDER)}
    return sorted(states.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


async def children_overview(
    client: Redis, job: JobDetail, known: list[QueueRef], user: User
) -> ChildrenOverview | None:
    """The children summary of a flow parent (None for a job without children, or gone meanwhile)."""
    counts = job.children_counts
    total = sum(counts.values())
    if total == 0:
        return None
    try:
        tree = await fetch_flow_tree(client, job.queue, job.id, CHILD_LIMITS)
    except NotAJob:
        return None
    if tree is None:
        return None
    shown = await shown_tree(tree, known, job.queue, user)
    info: dict[str, ChildInfo] = {}
    pending_states: Counter[str] = Counter()
    for child in shown.current.children:
        node = child.node
        if not child.visible or node.shape != "job":
            continue
        info[node.key] = ChildInfo(node.name, node.state, name_unread=node.name_unread)
        if node.relation == "pending":
            pending_states[node.state] += 1
    return ChildrenOverview(
        total=total,
        pending=counts.get("pending", 0),
        pending_states=_ordered(pending_states),
        pending_read=sum(pending_states.values()),
        info=info,
    )
