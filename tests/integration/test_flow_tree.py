"""Attacks on the whole-flow tree: flow links written by hand. Cycles of parentKey fields, parent and
child keys that name a queue's own keys or keys of the wrong type, a 100,000-member dependencies set,
chains and trees larger than a page reads, keys that are not UTF-8, and nodes in a queue the user may
not view. Each page stays bounded (what Redis sent is counted) and shows no key as a job that is not
one."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard import links
from dashboard.registry import reset_directories
from queues.flow_tree import FlowLimits, fetch_flow_tree
from queues.models import QueueRef
from tests.support.builders import add_jobs
from tests.support.dashboard import dashboard_settings

pytestmark = pytest.mark.host_compatible

FLOW = QueueRef("default", "bull", "flowatk")
SECRET = QueueRef("default", "bull", "secret-flow")
LIMITS = FlowLimits()


def key(job_id: str, queue: QueueRef = FLOW) -> str:
    """`<prefix>:<name>:<job_id>`, also for names of the queue's own keys."""
    return queue.key_prefix + job_id


async def queue_with(redis_url: str, queue: QueueRef = FLOW) -> None:
    """The queue made by the Python `bullmq` package (its meta is BullMQ's), with one job `seed`."""
    await add_jobs(redis_url, queue.name, [("seed", {}, {"jobId": "seed"})], prefix=queue.prefix)


async def job(client: Redis, job_key: str | bytes, name: str = "hand", **fields: Any) -> None:
    """A job hash written by hand, with BullMQ's fields."""
    await client.hset(job_key, mapping={"name": name, "data": "{}", "opts": "{}", "timestamp": 1, **fields})


async def tree_json(client: AsyncClient, job_id: str, queue: QueueRef = FLOW) -> dict[str, Any]:
    response = await client.get(links.flow_api_url(queue, job_id))
    assert response.status_code == 200, response.content
    data: dict[str, Any] = response.json()
    return data


def flatten(node: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [node]
    for child in node["children"]:
        nodes.extend(flatten(child))
    return nodes


async def sent_by_redis(redis_client: Redis) -> int:
    return int((await redis_client.info("stats"))["total_net_output_bytes"])


async def test_a_cycle_of_parent_keys_is_walked_once(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await queue_with(redis_url)
    for job_id, parent in [("a", "b"), ("b", "c"), ("c", "a")]:
        await job(redis_client, key(job_id), name=f"name-{job_id}", parentKey=key(parent))
        await redis_client.sadd(f"{key(parent)}:dependencies", key(job_id))
    await job(redis_client, key("self"), parentKey=key("self"))
    await redis_client.sadd(f"{key('self')}:dependencies", key("self"))

    tree = await tree_json(client, "a")
    nodes = flatten(tree["root"])
    assert tree["truncated"]["cycle"] is True
    assert [(node["id"], node["current"]) for node in nodes[:3]] == [("c", False), ("b", False), ("a", True)]
    # a lists c, which is already on the path: shown once more by its key, not walked again
    assert len(nodes) == 4 and nodes[3]["key"] == key("c") and nodes[3]["id"] is None
    assert "cycle" in nodes[3]["problem"]

    selfish = await tree_json(client, "self")
    assert selfish["truncated"]["cycle"] is True and selfish["nodes"] == 2
    page = await client.get(links.flow_url(FLOW, "a"))
    assert page.status_code == 200 and b"form a cycle" in page.content


async def test_keys_that_are_not_jobs_are_never_read_as_jobs(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await queue_with(redis_url)
    # A hash with BullMQ's fields at a name of the queue's own keys (a deduplication key's place).
    await job(redis_client, key("de:evil"), name="EVIL-DEDUP")
    await redis_client.set(key("plain"), "not a hash")
    await job(redis_client, key("x"), name="x", parentKey=key("meta"))
    await redis_client.sadd(
        f"{key('x')}:dependencies", key("meta"), key("wait"), key("de:evil"), key("plain"), key("gone")
    )
    await job(redis_client, key("y"), parentKey=key("de:evil"))
    await job(redis_client, key("z"), parentKey=key("plain"))

    tree = await tree_json(client, "x")
    assert tree["rootParent"] == {"key": key("meta"), "shape": "not-a-job"}
    assert tree["root"]["id"] == "x"
    children = {child["key"]: child for child in tree["root"]["children"]}
    assert set(children) == {key("meta"), key("wait"), key("de:evil"), key("plain"), key("gone")}
    for child in children.values():
        assert child["id"] is None and child["name"] is None and child["state"] is None
        assert child["html_url"] is None and child["children"] == []
    assert "removed" in children[key("gone")]["problem"]
    assert "not a job" in children[key("de:evil")]["problem"]
    assert (await tree_json(client, "y"))["rootParent"] == {"key": key("de:evil"), "shape": "not-a-job"}
    assert (await tree_json(client, "z"))["rootParent"] == {"key": key("plain"), "shape": "not-a-job"}
    page = await client.get(links.flow_url(FLOW, "x"))
    assert page.status_code == 200 and b"EVIL-DEDUP" not in page.content

    for job_id in ["meta", "wait", "x:dependencies", "de:evil", "plain", "nothing-here"]:
        for url in [links.flow_url(FLOW, job_id), links.flow_api_url(FLOW, job_id)]:
            response = await client.get(url)
            assert response.status_code == 404, (job_id, url)


async def test_a_100k_member_dependencies_set_keeps_the_page_bounded(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await queue_with(redis_url)
    await job(redis_client, key("big"), name="big")
    members = [key(f"child-{n:06d}") for n in range(100_000)]
    for start in range(0, len(members), 10_000):
        await redis_client.sadd(f"{key('big')}:dependencies", *members[start : start + 10_000])
    await job(redis_client, key("child-000005"), name="five", parentKey=key("big"))
    set_bytes = sum(len(member) for member in members)

    await client.get(links.flow_api_url(FLOW, "big"))  # loads the script, discovers the queue
    stats = await redis_client.info("commandstats")
    before = await sent_by_redis(redis_client)
    tree = await tree_json(client, "big")
    page = await client.get(links.flow_url(FLOW, "big"))
    sent = await sent_by_redis(redis_client) - before
    # Inside the script too, the set is read a few buckets at a time, never whole.
    after = await redis_client.info("commandstats")
    for whole in ["smembers", "sort", "sunion", "sinter", "sdiff"]:
        assert after.get(f"cmdstat_{whole}") == stats.get(f"cmdstat_{whole}"), whole
    sscans = int(after["cmdstat_sscan"]["calls"]) - int(stats.get("cmdstat_sscan", {}).get("calls", 0))
    assert 0 < sscans <= 2 * 4 * LIMITS.max_children_self
    assert page.status_code == 200
    assert len(tree["root"]["children"]) == LIMITS.max_children_self
    assert tree["root"]["counts"]["pending"] == 100_000
    assert tree["root"]["more"] == 100_000 - LIMITS.max_children_self
    assert b"more children not shown" in page.content
    assert sent < 60_000 < set_bytes  # two views, plus the two INFO replies

    before = await sent_by_redis(redis_client)
    child_tree = await tree_json(client, "child-000005")
    sent = await sent_by_redis(redis_client) - before
    root = child_tree["root"]
    assert root["id"] == "big" and len(root["children"]) == LIMITS.max_children
    # the path to the job is always shown, first, whichever members the scan met
    assert root["children"][0]["id"] == "child-000005" and root["children"][0]["current"] is True
    assert root["more"] == 100_000 - LIMITS.max_children
    assert root["flow_url"] == links.flow_api_url(FLOW, "big")
    assert sent < 20_000


async def test_long_chains_and_wide_trees_stop_at_their_bounds(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await queue_with(redis_url)
    for n in range(60):
        await job(redis_client, key(f"link-{n}"), parentKey=key(f"link-{n + 1}"))
        await redis_client.sadd(f"{key(f'link-{n + 1}')}:dependencies", key(f"link-{n}"))
    await job(redis_client, key("link-60"))
    chain = await tree_json(client, "link-0")
    assert chain["truncated"]["ancestors"] is True
    assert chain["root"]["id"] == f"link-{LIMITS.max_ancestors}"
    assert chain["nodes"] == LIMITS.max_ancestors + 1

    pipe = redis_client.pipeline(transaction=False)
    pipe.hset(key("wide"), mapping={"name": "wide", "timestamp": 1})
    for i in range(30):
        middle = key(f"w{i}")
        pipe.hset(middle, mapping={"name": "mid", "timestamp": 1, "parentKey": key("wide")})
        pipe.sadd(f"{key('wide')}:dependencies", middle)
        for j in range(30):
            leaf = key(f"w{i}-{j}")
            pipe.hset(leaf, mapping={"name": "leaf", "timestamp": 1, "parentKey": middle})
            pipe.sadd(f"{middle}:dependencies", leaf)
    await pipe.execute()
    wide = await tree_json(client, "wide")
    nodes = flatten(wide["root"])
    assert len(nodes) == wide["nodes"] == LIMITS.max_nodes
    assert wide["truncated"]["nodes"] is True
    cut = [node for node in nodes if node["more"]]
    assert cut and all(node["flow_url"] for node in cut)
    assert sum(node["more"] for node in nodes) + len(nodes) == 1 + 30 + 900
    page = await client.get(links.flow_url(FLOW, "wide"))
    assert page.status_code == 200 and b"Open its flow" in page.content


async def test_keys_that_are_not_utf8_are_shown_but_never_linked(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await queue_with(redis_url)
    odd_child = FLOW.key_prefix.encode() + b"\xff\xfeodd"
    await job(redis_client, key("u1"), name="u1", parentKey=FLOW.key_prefix.encode() + b"\xfa")
    await job(redis_client, odd_child, name="odd", parentKey=key("u1"))
    await redis_client.sadd(f"{key('u1')}:dependencies", odd_child)

    tree = await tree_json(client, "u1")
    assert tree["rootParent"]["shape"] == "missing" and "\ufffd" in tree["rootParent"]["key"]
    (child,) = tree["root"]["children"]
    assert "\ufffd" in child["key"] and child["html_url"] is None and child["id"] is None
    assert "UTF-8" in child["problem"]
    page = await client.get(links.flow_url(FLOW, "u1"))
    assert page.status_code == 200
    response = await client.get(links.flow_url(FLOW, "u1").split("?")[0] + "?id=%FF%FEodd")
    assert response.status_code == 400


def only_flowatk(user: Any, action: str, queue: QueueRef | None) -> bool:
    """A per-queue view restriction: this user sees bull:flowatk only."""
    from dashboard.permissions import default_permission

    if queue is not None and queue.key != FLOW.key:
        return False
    return default_permission(user, action, queue)


async def test_nodes_in_queues_the_user_may_not_view_show_their_key_alone(
    client: AsyncClient, redis_url: str, redis_client: Redis
) -> None:
    await queue_with(redis_url)
    await queue_with(redis_url, SECRET)
    await job(redis_client, key("open-parent"), name="open-parent")
    await job(redis_client, key("hidden", SECRET), name="TOP-SECRET-NAME", parentKey=key("open-parent"))
    await redis_client.sadd(f"{key('open-parent')}:dependencies", key("hidden", SECRET))
    await redis_client.sadd(f"{key('hidden', SECRET)}:dependencies", key("x", SECRET))
    await job(redis_client, key("x", SECRET), name="hidden-child", parentKey=key("hidden", SECRET))
    await redis_client.sadd(f"{key('open-parent')}:dependencies", key("ghost", SECRET))  # removed

    children = (await tree_json(client, "open-parent"))["root"]["children"]
    (seen_all,) = [node for node in children if node["key"] == key("hidden", SECRET)]
    assert seen_all["name"] == "TOP-SECRET-NAME" and seen_all["queueKey"] == SECRET.key

    setting = "tests.integration.test_flow_tree.only_flowatk"
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, PERMISSION=setting)):
        reset_directories()
        tree = await tree_json(client, "open-parent")
        page = await client.get(links.flow_url(FLOW, "open-parent"))
        hidden_page = await client.get(links.flow_url(SECRET, "hidden"))
    reset_directories()
    hidden, ghost = sorted(tree["root"]["children"], key=lambda node: node["key"] != key("hidden", SECRET))
    assert hidden["key"] == key("hidden", SECRET)
    assert hidden["name"] is None and hidden["state"] is None and hidden["counts"] is None
    assert hidden["html_url"] is None and hidden["more"] == 0
    # Nothing below it, and a removed job of that queue reads the same: what is there is not told.
    assert hidden["children"] == [] and ghost["problem"] == hidden["problem"]
    assert b"TOP-SECRET-NAME" not in page.content and key("x", SECRET).encode() not in page.content
    assert hidden_page.status_code == 404


async def test_a_flow_of_one_job_is_one_script_call(redis_url: str, redis_client: Redis) -> None:
    await queue_with(redis_url)
    tree = await fetch_flow_tree(redis_client, FLOW, "seed")
    assert tree is not None and tree.node_count == 1 and not tree.in_flow
    assert await fetch_flow_tree(redis_client, FLOW, "not-there") is None


async def test_states_are_searched_in_lists_only_within_the_page_bound(
    redis_url: str, redis_client: Redis
) -> None:
    await queue_with(redis_url)
    await job(redis_client, key("waits-parent"))
    await job(redis_client, key("deep-in-wait"), parentKey=key("waits-parent"))
    await redis_client.sadd(f"{key('waits-parent')}:dependencies", key("deep-in-wait"))
    await redis_client.lpush(key("wait"), "deep-in-wait", *[f"filler-{n}" for n in range(500)])

    found = await fetch_flow_tree(redis_client, FLOW, "waits-parent")
    assert found is not None and found.root.children[0].state == "waiting" and not found.scan_spent
    bounded = await fetch_flow_tree(redis_client, FLOW, "waits-parent", FlowLimits(max_state_scan=100))
    assert bounded is not None and bounded.root.children[0].state == "unknown" and bounded.scan_spent
