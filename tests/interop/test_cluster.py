"""A Redis Cluster of 3 masters and 3 replicas started by the test, BullMQ queues with {hash tag} prefixes
written there by real Node BullMQ over an ioredis Cluster: discovery on every master, reads, actions and
live updates through the dashboard, and a resharding and a failover while it reads (MOVED/ASK followed;
a read during a slot's move is right or an honest error, never wrong numbers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from redis.asyncio.cluster import RedisCluster

from dashboard import links
from dashboard.models import AuditEntry
from dashboard.operations import wait_all
from dashboard.registry import reset_directories
from queues.models import QueueRef
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.live import IN_MEMORY, LiveSocket, cookie_of, count_cell
from tests.support.node import run_node
from tests.support.redis_cluster import ThrowawayCluster
from tests.support.urls import dashboard_url, socket_path

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]

BUILT = {"completed": 3, "failed": 2, "delayed": 2, "waiting": 4}
ORDERS = QueueRef("cluster", "{orders}", "email")
BILLING = QueueRef("cluster", "{billing}", "invoices")
# Counts come from events only: a resync would otherwise heal what the stream reader missed.
LIVE = {"REFRESH_INTERVAL": 0.1, "RESYNC_INTERVAL": 120.0}


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[ThrowawayCluster, list[dict[str, Any]]]]:
    with ThrowawayCluster(replicas=True) as started:
        seeds = ",".join(node.name for node in started.masters())
        built = run_node("cluster_state.mjs", seeds)
        yield started, built["queues"]


@pytest.fixture
async def api(
    cluster: tuple[ThrowawayCluster, list[dict[str, Any]]], admin_client: AsyncClient
) -> AsyncIterator[AsyncClient]:
    """The admin's client of the dashboard pointed at the cluster (after admin_client's own settings)."""
    started, _ = cluster
    connections = {"cluster": {"URL": started.url, "CLUSTER": True}}
    settings = dashboard_settings(started.url, CONNECTIONS=connections, LIVE=LIVE)
    with override_settings(BULLMQ_DASHBOARD=settings, CHANNEL_LAYERS=IN_MEMORY):
        reset_directories()
        try:
            yield admin_client
        finally:
            await wait_all()
            await close_dashboard()
    reset_directories()


async def counts_of(api: AsyncClient) -> dict[str, dict[str, int]]:
    listed = (await api.get(dashboard_url("api/queues/"))).json()
    return {row["key"]: row["counts"] for row in listed["queues"]}


async def settled(api: AsyncClient, queue: QueueRef, **wanted: int) -> None:
    """Wait until the queue list says these counts (an action's effect reaches the counts the list
    serves with the queue's next events, polled a few times a second on a cluster)."""
    for _ in range(100):
        counts = (await counts_of(api))[queue.key]
        if all(counts[state] == value for state, value in wanted.items()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{queue.key}: {counts} is not {wanted}")


async def post(api: AsyncClient, url: str) -> Any:
    return await api.post(url, data=json.dumps({}), content_type="application/json")


async def first_failed(api: AsyncClient, queue: QueueRef) -> str:
    jobs_url = (await api.get(links.queue_api_url(queue))).json()["jobs_url"]
    return str((await api.get(jobs_url, {"state": "failed"})).json()["jobs"][0]["id"])


async def test_discovery_finds_every_masters_queues_with_node_counts(
    api: AsyncClient, cluster: tuple[ThrowawayCluster, list[dict[str, Any]]]
) -> None:
    _, built = cluster
    assert len({queue["node"] for queue in built}) == 3  # the queues live on all three masters
    counts = await counts_of(api)
    assert set(counts) == {f"{queue['prefix']}:{queue['name']}" for queue in built}
    for queue in built:
        ours = counts[f"{queue['prefix']}:{queue['name']}"]
        assert {state: ours[state] for state in queue["counts"]} == queue["counts"]
        assert {state: ours[state] for state in BUILT} == BUILT
    overview = await api.get(dashboard_url())
    assert overview.status_code == 200
    assert links.queue_url(BILLING) in overview.content.decode()
    page = await api.get(links.queue_url(ORDERS), {"state": "failed"})
    assert page.status_code == 200
    job = (await api.get(links.job_api_url(ORDERS, await first_failed(api, ORDERS)))).json()
    assert job["failedReason"] and job["state"] == "failed"
    workers = await api.get(dashboard_url("workers/"))
    assert workers.status_code == 200


async def test_actions_run_bullmqs_scripts_on_the_slots_node(
    api: AsyncClient, cluster: tuple[ThrowawayCluster, list[dict[str, Any]]]
) -> None:
    started, _ = cluster
    job_id = await first_failed(api, BILLING)
    retried = await post(api, (await api.get(links.job_api_url(BILLING, job_id))).json()["actions"]["retry"])
    assert retried.status_code == 200, retried.content
    await settled(api, BILLING, failed=1, waiting=5)
    assert (await post(api, links.queue_action_url(BILLING, "pause"))).status_code == 200
    assert (await counts_of(api)) and (await api.get(links.queue_api_url(BILLING))).json()["paused"] is True
    assert (await post(api, links.queue_action_url(BILLING, "resume"))).status_code == 200
    # A SCRIPT FLUSH on every node: the next remove (a MULTI, which never loads scripts by itself on a
    # cluster) loads BullMQ's scripts again and removes exactly one job.
    for node in started.masters():
        started.command(node, "SCRIPT FLUSH")
    removed = await post(api, (await api.get(links.job_api_url(BILLING, job_id))).json()["actions"]["remove"])
    assert removed.status_code == 200, removed.content
    await settled(api, BILLING, failed=1, waiting=4)
    entries = [(e.connection, e.queue, e.action, e.result) async for e in AuditEntry.objects.order_by("id")]
    assert entries == [
        ("cluster", BILLING.key, "retry", "done"),
        ("cluster", BILLING.key, "pause", "done"),
        ("cluster", BILLING.key, "resume", "done"),
        ("cluster", BILLING.key, "remove", "done"),
    ]


async def test_live_counts_follow_events_of_streams_on_several_nodes(
    api: AsyncClient, cluster: tuple[ThrowawayCluster, list[dict[str, Any]]]
) -> None:
    before = await counts_of(api)
    socket = LiveSocket(socket_path(), cookie_of(api))
    assert (await socket.connect())[0]
    try:
        for queue in (ORDERS, BILLING):
            await socket.wait_for(count_cell(queue, "failed", before[queue.key]["failed"]))
        # Retrying a failed job of each queue (two slots on two masters) writes to both events streams;
        # with resyncs two minutes apart, the pushed counts come from reading those events.
        for queue in (ORDERS, BILLING):
            job_id = await first_failed(api, queue)
            actions = (await api.get(links.job_api_url(queue, job_id))).json()["actions"]
            assert (await post(api, actions["retry"])).status_code == 200
        for queue in (ORDERS, BILLING):
            await socket.wait_for(count_cell(queue, "failed", before[queue.key]["failed"] - 1))
            await socket.wait_for(count_cell(queue, "waiting", before[queue.key]["waiting"] + 1))
    finally:
        await socket.close()


async def test_a_resharding_while_reading_is_right_or_an_honest_error(
    api: AsyncClient, cluster: tuple[ThrowawayCluster, list[dict[str, Any]]]
) -> None:
    started, built = cluster
    expected = await counts_of(api)
    orders = next(queue for queue in built if queue["prefix"] == "{orders}")
    source = started.owner(orders["slot"])
    target = next(node for node in started.masters() if node != source)
    loop = asyncio.get_running_loop()
    during: list[tuple[int, Any]] = []

    async def read() -> None:
        response = await api.get(links.queue_api_url(ORDERS))
        during.append((response.status_code, response.json()))

    def between(moved: int) -> None:
        # Mid-migration (some of the slot's keys on each node): a read through the dashboard.
        asyncio.run_coroutine_threadsafe(read(), loop).result(timeout=30)

    moved = await asyncio.to_thread(
        started.migrate_slot, orders["slot"], target, batch=5, between_batches=between
    )
    assert moved > 10 and len(during) >= 3
    for status, body in during:
        if status == 200 and body["counts"] is not None:
            assert body["counts"] == expected[ORDERS.key], body  # never partial numbers
        elif status == 200:
            assert "Redis Cluster is moving this queue's slot" in body["problem"], body
        else:
            assert status == 503 and "Redis Cluster" in body["error"], body
    # After the move: MOVED followed, right numbers, and actions work on the new node.
    assert started.owner(orders["slot"]) == target
    assert (await counts_of(api))[ORDERS.key] == expected[ORDERS.key]
    assert (await post(api, links.queue_action_url(ORDERS, "pause"))).status_code == 200
    assert (await post(api, links.queue_action_url(ORDERS, "resume"))).status_code == 200


async def test_a_failover_is_survived(
    api: AsyncClient, cluster: tuple[ThrowawayCluster, list[dict[str, Any]]]
) -> None:
    started, built = cluster
    expected = await counts_of(api)
    billing = next(queue for queue in built if queue["prefix"] == "{billing}")
    old = started.owner(billing["slot"])
    promoted = await asyncio.to_thread(started.failover, old)
    assert started.owner(billing["slot"]) == promoted != old
    answered = None
    for _ in range(50):  # the client learns the new master from MOVED (or a refreshed slot map)
        response = await api.get(links.queue_api_url(BILLING))
        if response.status_code == 200:
            answered = response.json()
            break
        await asyncio.sleep(0.1)
    assert answered is not None and answered["counts"] == expected[BILLING.key]
    assert (await post(api, links.queue_action_url(BILLING, "pause"))).status_code == 200
    assert (await post(api, links.queue_action_url(BILLING, "resume"))).status_code == 200
    raw = RedisCluster.from_url(started.url)
    try:
        assert await raw.hget(f"{BILLING.key_prefix}meta", "paused") is None
    finally:
        await raw.aclose()
