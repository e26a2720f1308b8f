"""Attacks on the Redis Cluster support, each against a real cluster started by the test and queues written by
real Node BullMQ over an ioredis Cluster (tests/interop/cluster_state.mjs):

- a queue whose prefix and name have no {hash tag} (another program wrote its keys): its keys lie in several
  slots, so redis-py refused the whole counts pipeline before sending it, and every queue of the cluster
  failed with it (overview and queue list 503 for everyone); an action queueing a script in a MULTI raised
  redis-py's RedisClusterException out of the action (answered 500);
- a master killed without a replica (cluster-require-full-coverage no: the other slots are served on):
  one node's connection error failed every queue's counts (the overview and queue list answered 503), the
  first script a page loaded went to every primary (503 on a queue of a live node), CLIENT LIST of every
  node failed the workers of all, and the live reader stopped following every stream of the cluster;
- a node's connection pool full: redis-py's cluster pools raise MaxConnectionsError at once (a
  ConnectionError, so overview rows said "unreachable"); a command now waits for a free connection up
  to the connect timeout, as the single-Redis pool does, then answers that the dashboard is busy;
- removals sent while a slot moves between nodes: a command redirected until redis-py gave up ("TTL
  exhausted", a bare ClusterError) was answered "Redis failed", as if it might have run; it never ran, and
  is now a TryAgainError, answered "nothing was changed" (once: the slot-moving sentence said it twice).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from django.test import AsyncClient, override_settings

from dashboard import links, registry
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

ORDERS = QueueRef("cluster", "{orders}", "email")
BILLING = QueueRef("cluster", "{billing}", "invoices")
# Keys under `bull:plain:` hash to as many slots as they have names: BullMQ could never run it on a cluster.
PLAIN = QueueRef("cluster", "bull", "plain")
LIVE = {"REFRESH_INTERVAL": 0.1, "RESYNC_INTERVAL": 120.0}
TIMEOUTS = {"CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 2.0}
# A killed master's slots stay failed; the others are served on (the default would stop the whole cluster
# NODE_TIMEOUT_MS after the kill, as Redis means it to).
PARTIAL = ("--cluster-require-full-coverage", "no")


def cross_slot_queue(cluster: ThrowawayCluster) -> None:
    """BullMQ's meta fingerprint and an events stream under a prefix without a hash tag (malformed data:
    written raw, as another program could)."""
    raw = redis.RedisCluster.from_url(cluster.url)
    try:
        raw.hset(f"{PLAIN.key_prefix}meta", mapping={"opts.maxLenEvents": "10000", "version": "bullmq:6.7.0"})
        raw.xadd(f"{PLAIN.key_prefix}events", {"event": "drained"})
    finally:
        raw.close()


def plain_keys(cluster: ThrowawayCluster) -> dict[str, Any]:
    raw = redis.RedisCluster.from_url(cluster.url)
    try:
        return {
            "meta": raw.hgetall(f"{PLAIN.key_prefix}meta"),
            "events": raw.xlen(f"{PLAIN.key_prefix}events"),
            "wait": raw.exists(f"{PLAIN.key_prefix}wait"),
        }
    finally:
        raw.close()


def pointed_at(cluster: ThrowawayCluster, **extra: Any) -> Any:
    connection = {"URL": cluster.url, "CLUSTER": True, **TIMEOUTS, **extra}
    settings = dashboard_settings(cluster.url, CONNECTIONS={"cluster": connection}, LIVE=LIVE)
    return override_settings(BULLMQ_DASHBOARD=settings, CHANNEL_LAYERS=IN_MEMORY)


@pytest.fixture(scope="module")
def shared() -> Iterator[ThrowawayCluster]:
    """A cluster the tests do not break: Node's queues and the queue without a hash tag."""
    with ThrowawayCluster() as started:
        run_node("cluster_state.mjs", ",".join(node.name for node in started.masters()))
        cross_slot_queue(started)
        yield started


@pytest.fixture
async def api(shared: ThrowawayCluster, admin_client: AsyncClient) -> AsyncIterator[AsyncClient]:
    with pointed_at(shared):
        reset_directories()
        try:
            yield admin_client
        finally:
            await wait_all()
            await close_dashboard()
    reset_directories()


async def listed(client: AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get(dashboard_url("api/queues/"))
    assert response.status_code == 200, response.content
    return {row["key"]: row for row in response.json()["queues"]}


async def until_listed(client: AsyncClient, check: Any, within: float = 20.0) -> dict[str, dict[str, Any]]:
    """The queue list once `check(rows)` holds (a hang guard, not a timing)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        rows = await listed(client)
        if check(rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the queue list did not come to hold: {rows}")
        await asyncio.sleep(0.1)


async def post(client: AsyncClient, url: str, **params: Any) -> Any:
    return await client.post(url, data=json.dumps(params), content_type="application/json")


async def test_a_queue_without_a_hash_tag_fails_only_its_own_row(
    api: AsyncClient, shared: ThrowawayCluster
) -> None:
    rows = await listed(api)
    assert rows[ORDERS.key]["counts"]["failed"] == 2 and rows[ORDERS.key]["problem"] is None
    assert rows[BILLING.key]["counts"]["waiting"] == 4
    assert rows[PLAIN.key]["counts"] is None
    assert "hash to the same slot" in rows[PLAIN.key]["problem"]
    overview = await api.get(dashboard_url())
    assert overview.status_code == 200
    assert links.queue_url(ORDERS) in overview.content.decode()

    # Its own pages say why, in words, and are no 500.
    for url in (links.queue_url(PLAIN), links.jobs_api_url(PLAIN), links.job_url(PLAIN, "1")):
        response = await api.get(url)
        assert response.status_code == 502, (url, response.status_code)
        assert "no {hash tag}" in response.content.decode()

    # Actions are refused before anything is sent (drain queues BullMQ's script in a MULTI: redis-py raised
    # its own exception from the queueing, answered 500); audited, and nothing was written.
    before = plain_keys(shared)
    for url in (links.queue_action_url(PLAIN, "drain"), links.job_action_url(PLAIN, "remove", "1")):
        response = await post(api, url)
        assert response.status_code == 409, (url, response.content)
        message = response.json()["message"]
        assert "no {hash tag}" in message and "Nothing was changed" in message, message
    assert plain_keys(shared) == before
    results = [entry.result async for entry in AuditEntry.objects.filter(queue=PLAIN.key)]
    assert results and "done" not in results


async def test_a_full_node_pool_is_waited_for_then_answered_busy(
    shared: ThrowawayCluster, admin_client: AsyncClient
) -> None:
    for wait, given_back in ((5.0, True), (0.3, False)):
        with pointed_at(shared, MAX_CONNECTIONS=1, CONNECT_TIMEOUT=wait):
            reset_directories()
            try:
                assert (await admin_client.get(links.queue_api_url(ORDERS))).status_code == 200
                client: Any = registry.client("cluster")
                node = client.get_node_from_key(f"{ORDERS.key_prefix}meta")
                taken = node.acquire_connection()  # the node's only connection, held by "another request"
                if given_back:
                    # Given back while the request waits: it is answered as usual.
                    asyncio.get_running_loop().call_later(0.2, node.release, taken)
                    response = await admin_client.get(links.queue_api_url(ORDERS))
                    assert response.status_code == 200, response.content
                else:
                    try:
                        response = await admin_client.get(links.queue_api_url(ORDERS))
                    finally:
                        node.release(taken)
                    assert response.status_code == 503
                    assert "connections to this Redis are in use" in response.json()["error"]
                    assert "unreachable" not in response.json()["error"]
            finally:
                await close_dashboard()
            reset_directories()


async def test_removals_racing_a_slot_move_are_exact(api: AsyncClient, shared: ThrowawayCluster) -> None:
    """Each removal sent while ORDERS' slot moves between nodes either removed its job (once) or says it
    changed nothing and did not: a MULTI refused for the move (ASK, TRYAGAIN) ran nothing, so it is sent
    again, and never one that may have run."""
    jobs_url = links.jobs_api_url(ORDERS)
    completed = [job["id"] for job in (await api.get(jobs_url, {"state": "completed"})).json()["jobs"]]
    assert len(completed) == 3
    slot = shared.keyslot(f"{ORDERS.key_prefix}meta")
    target = next(node for node in shared.masters() if node != shared.owner(slot))
    loop = asyncio.get_running_loop()
    answers: list[tuple[str, int, str]] = []

    async def remove(job_id: str) -> None:
        response = await post(api, links.job_action_url(ORDERS, "remove", job_id))
        answers.append((job_id, response.status_code, response.json().get("message", "")))

    def between(moved: int) -> None:
        if len(answers) < len(completed):
            asyncio.run_coroutine_threadsafe(remove(completed[len(answers)]), loop).result(timeout=30)

    await asyncio.to_thread(shared.migrate_slot, slot, target, batch=5, between_batches=between)
    assert answers
    raw = redis.RedisCluster.from_url(shared.url)
    try:
        for job_id, status, message in answers:
            gone = not raw.exists(f"{ORDERS.key_prefix}{job_id}")
            assert status != 500, message
            if status == 200:
                assert gone, (job_id, message)
            else:
                assert message.lower().count("nothing was changed") == 1, message
                assert not gone, (job_id, message)
    finally:
        raw.close()
    audited = [entry.result async for entry in AuditEntry.objects.filter(queue=ORDERS.key, action="remove")]
    assert [result == "done" for result in audited] == [status == 200 for _, status, _ in answers]
    print(f"[cluster] removals during the slot's move: {answers}")


@pytest.fixture
def breakable() -> Iterator[ThrowawayCluster]:
    """A cluster of the test's own (it kills a master), serving the slots of the masters left."""
    with ThrowawayCluster(extra_args=PARTIAL) as started:
        run_node("cluster_state.mjs", ",".join(node.name for node in started.masters()))
        yield started


async def test_a_dead_master_fails_only_its_own_queues(
    breakable: ThrowawayCluster, admin_client: AsyncClient
) -> None:
    slot = breakable.keyslot(f"{BILLING.key_prefix}meta")
    victim = breakable.owner(slot)
    assert breakable.owner(breakable.keyslot(f"{ORDERS.key_prefix}meta")) != victim
    with pointed_at(breakable):
        reset_directories()
        try:
            before = await listed(admin_client)
            socket = LiveSocket(socket_path(), cookie_of(admin_client))
            assert (await socket.connect())[0]
            try:
                await socket.wait_for(count_cell(ORDERS, "failed", 2))
                process = breakable._processes[victim]
                process.kill()
                process.wait()
                # The scripts are gone from the nodes left: the next read loads them again, on the
                # nodes that answer (SCRIPT LOAD went to every primary, the dead one too: 503).
                for node in breakable.live_nodes():
                    breakable.command(node, "SCRIPT", "FLUSH")
                page = await admin_client.get(links.queue_api_url(ORDERS))
                assert page.status_code == 200, page.content
                assert page.json()["counts"] == before[ORDERS.key]["counts"]

                # Its counts are no longer served from what the watcher read before (its stream cannot be
                # followed): the row says why, once the live reader has found the node gone.
                rows = await until_listed(admin_client, lambda rows: rows[BILLING.key]["counts"] is None)
                for key, row in rows.items():
                    if breakable.owner(breakable.keyslot(f"{key}:meta")) == victim:
                        assert row["counts"] is None and "connecting to" in row["problem"], key
                    else:
                        assert row["counts"] == before[key]["counts"], key
                overview = await admin_client.get(dashboard_url())
                assert overview.status_code == 200
                assert (await admin_client.get(links.queue_url(ORDERS))).status_code == 200
                assert (await admin_client.get(dashboard_url("workers/"))).status_code == 200
                assert (await admin_client.get(links.workers_api_url(ORDERS))).status_code == 200

                # Live updates of the nodes left go on: a retry on ORDERS reaches the socket.
                jobs_url = links.jobs_api_url(ORDERS)
                failed = (await admin_client.get(jobs_url, {"state": "failed"})).json()["jobs"][0]["id"]
                retried = await post(admin_client, links.job_action_url(ORDERS, "retry", failed))
                assert retried.status_code == 200, retried.content
                await socket.wait_for(count_cell(ORDERS, "failed", 1))
                # The cluster was never said to be unreachable: only one master is.
                assert not any(
                    'id="live-redis"' in text and "unreachable" in text for text in socket.received
                )

                # Then every node: each page answers in words (503), none with a traceback (500).
                for node in breakable.live_nodes():
                    breakable._processes[node].kill()
                    breakable._processes[node].wait()
                for url in (
                    dashboard_url(),
                    dashboard_url("api/queues/"),
                    links.queue_url(ORDERS),
                    links.queue_api_url(ORDERS),
                    links.job_url(ORDERS, failed),
                    dashboard_url("workers/"),
                ):
                    response = await admin_client.get(url)
                    assert response.status_code in (200, 503), (url, response.status_code)
                paused = await post(admin_client, links.queue_action_url(ORDERS, "pause"))
                assert paused.status_code == 503, paused.content
            finally:
                await socket.close()
        finally:
            await wait_all()
            await close_dashboard()
        reset_directories()
