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
        return gettext_lazy("Its queue is not one this dashboard shows.")
    return ""


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
    wanted = sorted({queue for queue, _ in resolved.values()} - {own})
    visible = {own, *await avisible(user, wanted)}
    by_node: dict[int, ShownNode] = {}
    for node in tree.nodes():
        target = resolved.get(node.key) if node.shape == "job" and node.utf8 else None
        seen_queue = target is not None and target[0] in visible
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
                problem=problem_of(node, visible=False),
            )
        by_node[id(node)] = shown
    for node in tree.nodes():
        by_node[id(node)].children = [by_node[id(child)] for child in node.children]
    return ShownTree(tree, by_node[id(tree.root)], by_node[id(tree.current)])
