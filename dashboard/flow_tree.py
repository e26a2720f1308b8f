"""A flow tree as one user may see it: nodes in queues they may view are named and linked, the others
are shown by their key alone (exactly like a key of a queue the dashboard does not know)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from dashboard import links
from dashboard.permissions import avisible
from dashboard.users import User
from queues.flow_tree import FlowNode, FlowTree
from queues.jobs import resolve_job_key
from queues.messages import gettext_lazy
from queues.models import JobDetail, QueueRef


@dataclass
class ShownNode:
    """A flow node with what this user may see of it and its URLs (None where it cannot be opened)."""

    node: FlowNode
    # Its queue is one the dashboard knows and this user may view: name, state and counts are shown.
    visible: bool
    queue: QueueRef | None
    job_id: str
    html_url: str | None
    api_url: str | None
    flow_url: str | None
    flow_api_url: str | None
    # Why it is shown by its key alone ("" when it is not).
    problem: str
    children: list[ShownNode] = field(default_factory=list)

    @property
    def more(self) -> int:
        """Children counted but not listed (0 for a node this user may not see)."""
        return self.node.more if self.visible else 0


@dataclass(frozen=True)
class ShownTree:
    """The tree as shown, the node it was opened from, and the bounds it hit."""

    tree: FlowTree
    root: ShownNode
    current: ShownNode

    def steps(self) -> Iterator[tuple[str, ShownNode]]:
        """("enter", node) and ("leave", node) depth first: nested lists rendered without recursion."""
        stack: list[tuple[str, ShownNode]] = [("enter", self.root)]
        while stack:
            step, shown = stack.pop()
            yield step, shown
            if step == "enter":
                stack.append(("leave", shown))
                stack.extend(("enter", child) for child in reversed(shown.children))


def in_flow(job: JobDetail) -> bool:
    """The job has a flow parent or children (of any kind): its page links to its whole flow."""
    return job.parent is not None or bool(job.children) or any(job.children_counts.values())


def problem_of(node: FlowNode, visible: bool) -> str:
    """Why a node is shown by its key alone, or ""."""
    if node.shape == "missing":
        return gettext_lazy("No such key: the job was removed.")
    if node.shape == "not-a-job":
        return gettext_lazy("This key is not a job's hash.")
    if node.shape == "long-key":
        return gettext_lazy("Its key is longer than can be read here; it is shown cut.")
    if node.shape == "seen":
        return gettext_lazy("Already shown above: the flow's links form a cycle.")
    if not node.utf8:
        return gettext_lazy("Its key is not valid UTF-8, so it cannot be addressed from here.")
    if not visible:
        return HIDDEN
    return ""


# The one answer for every node outside the queues this user may view, whatever its key holds (a
# removed job, another program's key): what is there is not told.
HIDDEN = gettext_lazy("Not shown: its queue is not one you may view here.")


def queue_of_key(queues: list[QueueRef], key: str) -> QueueRef | None:
    """The known queue whose key prefix a key starts with (the longest), whatever the key is."""
    matching = [
        queue for queue in queues if key.startswith(queue.key_prefix) and len(key) > len(queue.key_prefix)
    ]
    return max(matching, key=lambda queue: len(queue.key_prefix), default=None)


def on_path(tree: FlowTree) -> set[int]:
    """The nodes from the root down to the node the tree was opened from."""
    parents: dict[int, FlowNode] = {}
    for parent in tree.nodes():
        for child in parent.children:
            parents[id(child)] = parent
    path: set[int] = set()
    step: FlowNode | None = tree.current
    while step is not None and id(step) not in path:
        path.add(id(step))
        step = parents.get(id(step))
    return path


async def shown_tree(tree: FlowTree, known: list[QueueRef], own: QueueRef, user: User) -> ShownTree:
    """The tree as `user` may see it: `known` are the connection's queues, `own` the URL's queue."""
    queues = known if own in known else [*known, own]
    resolved: dict[str, tuple[QueueRef, str]] = {}
    for node in tree.nodes():
        if node.shape != "job" or not node.utf8:
            continue
        found = resolve_job_key(queues, node.key)
        # Only where the dashboard and Redis (the queue whose meta was found) agree on the queue.
        if found is not None and found[0].key == node.queue_key:
            resolved[node.key] = found
    key_queues = {id(node): queue_of_key(queues, node.key) for node in tree.nodes()}
    candidates = {queue for queue, _ in resolved.values()} | {q for q in key_queues.values() if q is not None}
    visible = {own, *await avisible(user, sorted(candidates - {own}))}
    by_node: dict[int, ShownNode] = {}
    for node in tree.nodes():
        target = resolved.get(node.key) if node.shape == "job" and node.utf8 else None
        seen_queue = target is not None and target[0] in visible
        in_view = key_queues.get(id(node)) in visible
        if target is not None and seen_queue:
            queue, job_id = target
            shown = ShownNode(
                node,
                visible=True,
                queue=queue,
                job_id=job_id,
                html_url=links.job_url(queue, job_id),
                api_url=links.job_api_url(queue, job_id),
                flow_url=links.flow_url(queue, job_id),
                flow_api_url=links.flow_api_url(queue, job_id),
                problem="",
            )
        else:
            shown = ShownNode(
                node,
                visible=False,
                queue=None,
                job_id="",
                html_url=None,
                api_url=None,
                flow_url=None,
                flow_api_url=None,
                problem=problem_of(node, visible=False) if in_view else HIDDEN,
            )
        by_node[id(node)] = shown
    path = on_path(tree)
    for node in tree.nodes():
        shown = by_node[id(node)]
        children = node.children
        if not shown.visible:
            # What a node outside the user's queues holds is not listed, only the way to the job the
            # tree was opened from (its parent's key is on that job's own page).
            children = [child for child in children if id(child) in path]
        shown.children = [by_node[id(child)] for child in children]
    return ShownTree(tree, by_node[id(tree.root)], by_node[id(tree.current)])
