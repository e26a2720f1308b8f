"""The whole flow a job belongs to: from its root down through every job's children, bounded.

One script call (`flow_tree.lua`) walks up `parentKey` to the root and down through the children
BullMQ keeps beside each parent: `<job key>:dependencies` (pending), `:processed` (completed),
`:failed` (failed but ignored: ignoreDependencyOnFailure / continueParentOnFailure, which Node's
`getDependenciesCount` calls `ignored`) and `:unsuccessful` (failed the parent: failParentOnFailure,
Node's `failed`). Children may live in other queues and under other prefixes; each node's queue is
found inside Redis by its `meta` key, and its state looked up there as BullMQ's getState does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from queues.jobs import not_a_job_hash
from queues.keys import JOB_KEY_SUFFIXES, QUEUE_KEY_HEADS, QUEUE_KEY_NAMES
from queues.models import NotAJob, QueueRef
from queues.parsing import identifier, integer, text
from queues.scripts import script

FLOW_TREE = script("flow_tree")

# The queue's own key names, as flow_tree.lua takes them (keys.py is where they are decided).
OWN_KEY_ARGS = (
    *(f"n:{name}" for name in sorted(QUEUE_KEY_NAMES)),
    *(f"h:{head}" for head in QUEUE_KEY_HEADS),
    *(f"s:{suffix}" for suffix in JOB_KEY_SUFFIXES),
)
COUNT_NAMES = ("pending", "processed", "failed", "ignored")


@dataclass(frozen=True)
class FlowLimits:
    """How much of a flow one page view reads (see docs/security.md)."""

    # Parents followed up from the job; a longer chain is cut (its top shown as the root).
    max_ancestors: int = 32
    # Levels expanded below the job's own depth.
    max_below: int = 10
    max_nodes: int = 200
    # Children listed per node, and for the job itself (the "more" link opens a node's own flow).
    max_children: int = 20
    max_children_self: int = 100
    # Longer keys (a parentKey, a child key) are shown cut and not followed.
    max_key_bytes: int = 1024
    # Child keys, parent keys and names copied inside Redis, in all (plus one member).
    budget_bytes: int = 512 * 1024
    # Entries of the active / wait / paused lists searched for the states of all nodes together.
    max_state_scan: int = 100_000
    max_name_bytes: int = 256


@dataclass
class FlowNode:
    """One job of a flow (or a key a flow names that is not a job), with its children read so far."""

    key: str
    # False when the key is not valid UTF-8: shown with U+FFFD, never linked.
    utf8: bool
    # How its parent holds it: "root", "pending", "processed", "failed", "ignored", or "unlisted" (a
    # parent named by its parentKey that does not list it).
    relation: str
    # "job", "missing", "not-a-job", "long-key" (cut, not followed), "seen" (already in the tree).
    shape: str
    # Its queue's key `<prefix>:<name>` as found in Redis ("" when no queue was found) and its id.
    queue_key: str
    job_id: str
    name: str
    name_size: int
    state: str
    counts: dict[str, int]
    # Whether its children were listed (False: the depth or node bound was reached first).
    expanded: bool
    depth: int
    current: bool
    children: list[FlowNode] = field(default_factory=list)

    @property
    def total_children(self) -> int:
        """Children of every kind its parent keys hold."""
        return sum(self.counts.values())

    @property
    def more(self) -> int:
        """Children counted but not listed here."""
        return max(0, self.total_children - len(self.children))

    @property
    def name_unread(self) -> bool:
        """Its name is too long to be read for the tree."""
        return self.name_size > 0 and not self.name


@dataclass(frozen=True)
class FlowTree:
    """A flow from its root, with the job it was opened from marked `current`."""

    root: FlowNode
    current: FlowNode
    node_count: int
    # More parents above the root than were followed.
    ancestors_cut: bool
    # A parentKey led back into the path.
    cycle: bool
    # The root's parentKey names this key, which is missing, not a job, or too long to read ("" then).
    dangling_shape: str
    dangling_key: str
    dangling_utf8: bool
    # The node bound was reached, the copy budget spent, or the list search for states used up.
    nodes_cut: bool
    budget_spent: bool
    scan_spent: bool

    @property
    def in_flow(self) -> bool:
        """The job has a parent or children (else the tree is the job alone)."""
        return self.root is not self.current or self.current.total_children > 0 or bool(self.dangling_shape)

    def nodes(self) -> Iterator[FlowNode]:
        """Every node, depth first from the root."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


def _node(row: list[Any]) -> tuple[FlowNode, int]:
    raw_key, parent_index, relation, shape, queue_length, name, name_size, state = row[:8]
    pending, processed, ignored, failed, expanded, depth, current = (
        integer(value) or 0 for value in row[8:15]
    )
    key, utf8 = identifier(raw_key)
    raw = raw_key if isinstance(raw_key, bytes) else key.encode()
    # The queue key's length is in bytes: split the bytes, then decode each part.
    length = integer(queue_length) or 0
    queue_key, job_id = (text(raw[:length]), text(raw[length + 1 :])) if length > 0 else ("", "")
    node = FlowNode(
        key=key,
        utf8=utf8,
        relation=text(relation),
        shape=text(shape),
        queue_key=queue_key,
        job_id=job_id,
        name=text(name),
        name_size=integer(name_size) or 0,
        state=text(state),
        counts=dict(zip(COUNT_NAMES, (pending, processed, failed, ignored), strict=True)),
        expanded=expanded == 1,
        depth=depth,
        current=current == 1,
    )
    return node, integer(parent_index) or 0


def parse_tree(reply: list[Any]) -> FlowTree:
    """A FlowTree from the reply of flow_tree.lua."""
    meta, rows = reply
    ancestors_cut, cycle, dangling_shape, dangling_key, nodes_cut, budget_spent, scan_spent = meta
    nodes: list[FlowNode] = []
    current: FlowNode | None = None
    for row in rows:
        node, parent_index = _node(row)
        if parent_index > 0:
            nodes[parent_index - 1].children.append(node)
        nodes.append(node)
        if node.current:
            current = node
    dangling, dangling_utf8 = identifier(dangling_key)
    return FlowTree(
        root=nodes[0],
        current=current or nodes[0],
        node_count=len(nodes),
        ancestors_cut=integer(ancestors_cut) == 1,
        cycle=integer(cycle) == 1,
        dangling_shape=text(dangling_shape),
        dangling_key=dangling,
        dangling_utf8=dangling_utf8,
        nodes_cut=integer(nodes_cut) == 1,
        budget_spent=integer(budget_spent) == 1,
        scan_spent=integer(scan_spent) == 1,
    )


async def fetch_flow_tree(
    client: Redis, queue: QueueRef, job_id: str, limits: FlowLimits | None = None
) -> FlowTree | None:
    """The flow of a job from its root (one script call); None when the job is gone.

    NotAJob when the id names one of the queue's own keys (decided before anything is read) or a key
    that is not a job's hash (decided inside Redis before its contents are read).
    """
    queue.job_key(job_id)  # NotAJob for the queue's own key names
    limits = limits or FlowLimits()
    reply = await FLOW_TREE.call(
        client,
        [queue.key_prefix],
        [
            job_id,
            limits.max_ancestors,
            limits.max_below,
            limits.max_nodes,
            limits.max_children,
            limits.max_children_self,
            limits.max_key_bytes,
            limits.budget_bytes,
            limits.max_state_scan,
            limits.max_name_bytes,
            *OWN_KEY_ARGS,
        ],
    )
    if reply is None or reply is False:
        return None
    if reply and not isinstance(reply[0], list) and text(reply[0]) == "not-a-job":
        raise NotAJob(not_a_job_hash(job_id, text(reply[1])))
    return parse_tree(reply)
