"""The whole-flow tree of a job, on a flow written and processed by real Node BullMQ 6.7.

flow_state.mjs builds a three-level flow across `bull:flow-top` and `{shard-b}:flow-mid` with Node's
FlowProducer, and Node workers complete one leaf, fail one ignored leaf (ignoreDependencyOnFailure)
and one leaf that fails its parent (failParentOnFailure). The tree, opened from the root, a middle
job and a leaf, must show every job with the state Node's `job.getState()` reports and the child
counts of Node's `job.getDependenciesCount()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import AsyncClient
from redis.asyncio import Redis

from dashboard import links
from queues.models import QueueRef

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

TOP = QueueRef("default", "bull", "flow-top")
MID = QueueRef("default", "{shard-b}", "flow-mid")
QUEUES = {TOP.key: TOP, MID.key: MID}


def flatten(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node["children"]:
        yield from flatten(child)


def expected_nodes(built: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(queue key, id) -> name, state and child counts as Node reports them."""
    result = {}
    for where, job in built["jobs"].items():
        queue_key, job_id = where.split("|")
        deps = job["dependencies"]
        result[(queue_key, job_id)] = {
            "name": job["name"],
            "state": job["state"],
            "counts": {
                "pending": deps["unprocessed"],
                "processed": deps["processed"],
                "failed": deps["failed"],
                "ignored": deps["ignored"],
            },
        }
    return result


OPENED_FROM = [(TOP, "root-1"), (MID, "mid-1"), (TOP, "leaf-ok"), (TOP, "leaf-fatal"), (MID, "leaf-bad")]


@pytest.mark.parametrize(("queue", "job_id"), OPENED_FROM, ids=[job_id for _, job_id in OPENED_FROM])
async def test_the_tree_shows_every_job_with_the_state_node_reports(
    viewer: AsyncClient, node_flow: tuple[str, dict[str, Any]], queue: QueueRef, job_id: str
) -> None:
    response = await viewer.get(links.flow_api_url(queue, job_id))
    assert response.status_code == 200, response.content
    tree = response.json()
    root = tree["root"]
    assert (root["queueKey"], root["id"], root["relation"]) == ("bull:flow-top", "root-1", "root")
    nodes = list(flatten(root))
    shown = {
        (node["queueKey"], node["id"]): {
            "name": node["name"],
            "state": node["state"],
            "counts": node["counts"],
        }
        for node in nodes
    }
    assert len(nodes) == 7 == tree["nodes"]
    assert shown == expected_nodes(node_flow[1])
    current = [node for node in nodes if node["current"]]
    assert [(node["queueKey"], node["id"]) for node in current] == [(queue.key, job_id)]
    assert (tree["id"], tree["queueKey"]) == (job_id, queue.key)
    for node in nodes:
        node_queue = QUEUES[node["queueKey"]]
        assert node["html_url"] == links.job_url(node_queue, node["id"])
        assert node["api_url"] == links.job_api_url(node_queue, node["id"])
        assert node["flow_url"] == links.flow_api_url(node_queue, node["id"])
        assert node["more"] == 0 and node["problem"] is None
    assert not any(tree["truncated"].values())
    assert tree["rootParent"] is None


async def test_children_sit_under_their_parents_as_bullmq_holds_them(viewer: AsyncClient) -> None:
    tree = (await viewer.get(links.flow_api_url(TOP, "leaf-later"))).json()

    def shape(node: dict[str, Any]) -> tuple[str, str, list[Any]]:
        children = sorted(shape(child) for child in node["children"])
        return (node["id"], node["relation"], children)

    assert shape(tree["root"]) == (
        "root-1",
        "root",
        [
            (
                "mid-1",
                "pending",
                [("leaf-bad", "ignored", []), ("leaf-later", "pending", []), ("leaf-ok", "processed", [])],
            ),
            ("mid-2", "pending", [("leaf-fatal", "failed", [])]),
        ],
    )


async def test_the_page_renders_nested_lists_with_badges_and_the_job_highlighted(viewer: AsyncClient) -> None:
    response = await viewer.get(links.flow_url(MID, "mid-1"))
    assert response.status_code == 200
    page = response.content.decode()
    for queue, job_id in [
        (TOP, "root-1"),
        (MID, "mid-1"),
        (MID, "mid-2"),
        (TOP, "leaf-ok"),
        (MID, "leaf-bad"),
    ]:
        assert f'href="{links.job_url(queue, job_id)}"' in page.replace("&amp;", "&")
    assert page.count('class="badge state-failed"') == 3
    assert page.count('class="badge state-waiting-children"') == 2
    assert page.count('class="badge state-completed"') == 1
    assert page.count('class="badge state-delayed"') == 1
    current = re.search(r'<li class="flow-node flow-current" aria-current="true">(.*?)</div>', page, re.S)
    assert current is not None and "#mid-1" in current.group(1)
    # nested: the leaves' lists are inside the middle jobs' items, inside the root's
    assert page.count("<ul>") == 3


async def test_the_job_page_and_its_json_link_to_the_flow(viewer: AsyncClient) -> None:
    page = (await viewer.get(links.job_url(TOP, "leaf-ok"))).content.decode()
    assert f'href="{links.flow_url(TOP, "leaf-ok")}"' in page.replace("&amp;", "&")
    assert "View whole flow" in page
    detail = (await viewer.get(links.job_api_url(MID, "mid-2"))).json()
    assert detail["flow_url"] == links.flow_api_url(MID, "mid-2")


async def test_a_job_outside_any_flow_has_no_flow_link(
    viewer: AsyncClient, node_flow: tuple[str, dict[str, Any]]
) -> None:
    client = Redis.from_url(node_flow[0])
    try:
        # A job of the same queue without parent or children, as Node's Queue.add writes one.
        await client.hset(
            "bull:flow-top:solo", mapping={"name": "solo", "data": "{}", "opts": "{}", "timestamp": 1}
        )
        detail = (await viewer.get(links.job_api_url(TOP, "solo"))).json()
        page = (await viewer.get(links.job_url(TOP, "solo"))).content.decode()
        tree = (await viewer.get(links.flow_api_url(TOP, "solo"))).json()
    finally:
        await client.delete("bull:flow-top:solo")
        await client.aclose()
    assert detail["flow_url"] is None
    assert "View whole flow" not in page
    assert tree["nodes"] == 1 and tree["root"]["children"] == []


async def test_one_script_call_reads_the_whole_tree(
    viewer: AsyncClient, node_flow: tuple[str, dict[str, Any]]
) -> None:
    client = Redis.from_url(node_flow[0])
    try:
        await viewer.get(links.flow_api_url(TOP, "leaf-ok"))  # loads the script, discovers the queues
        before = await client.info("commandstats")
        response = await viewer.get(links.flow_api_url(TOP, "leaf-ok"))
        after = await client.info("commandstats")
    finally:
        await client.aclose()
    assert response.status_code == 200

    def calls(stats: dict[str, Any], name: str) -> int:
        return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))

    assert calls(after, "evalsha") - calls(before, "evalsha") == 1
    assert calls(after, "eval") == calls(before, "eval")
