"""Queue state written by real Node BullMQ (6 and 5), and what Node's own getters say about it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import AsyncClient, override_settings

from dashboard.registry import reset_directories
from queues.throwaway_redis import ThrowawayRedis
from tests.support.bullmq_versions import BULLMQ_DIRS, bullmq_dir
from tests.support.dashboard import close_dashboard, dashboard_settings
from tests.support.node import run_node


@dataclass(frozen=True)
class NodeState:
    """A Redis that Node BullMQ filled, and Node's view of every queue in it."""

    url: str
    queues: list[dict[str, Any]]
    node: dict[str, Any]
    # The major version of Node BullMQ whose getters read the state ("6" or "5"); build_state.mjs built
    # it with the same one.
    version: str

    def node_queue(self, key: str) -> dict[str, Any]:
        """Node's getters output for `<prefix>:<name>`."""
        for queue in self.node["queues"]:
            if f"{queue['prefix']}:{queue['name']}" == key:
                return queue
        raise KeyError(key)


@pytest.fixture(
    scope="session", params=sorted(BULLMQ_DIRS, reverse=True), ids=lambda version: f"bullmq{version}"
)
def node_state(request: pytest.FixtureRequest) -> Iterator[NodeState]:
    """A throwaway Redis holding the state build_state.mjs makes with one Node BullMQ version, and that
    version's getters' view of it (built once per version for the session)."""
    version = str(request.param)
    env = {"BULLMQ_DIR": str(bullmq_dir(version))}
    with ThrowawayRedis() as server:
        built = run_node("build_state.mjs", server.url, env=env)
        node = run_node("node_getters.mjs", server.url, stdin=json.dumps(built), env=env)
        # A wrong BULLMQ_DIR would quietly test one version twice.
        assert built["version"].split(".")[0] == node["version"].split(".")[0] == version, (
            built["version"],
            node["version"],
        )
        yield NodeState(server.url, built["queues"], node, version)


@pytest.fixture
def node_redis(node_state: NodeState) -> Iterator[NodeState]:
    """The dashboard pointed at the Node-built Redis for one test."""
    with override_settings(BULLMQ_DASHBOARD={"CONNECTIONS": {"default": {"URL": node_state.url}}}):
        reset_directories()
        yield node_state
    reset_directories()


@pytest.fixture(scope="module")
def node_flow() -> Iterator[tuple[str, dict[str, Any]]]:
    """A throwaway Redis holding the flow tests/interop/flow_state.mjs built, and what Node says of each
    of its jobs."""
    with ThrowawayRedis() as server:
        yield server.url, run_node("flow_state.mjs", server.url)


@pytest.fixture
async def viewer(node_flow: tuple[str, dict[str, Any]], staff_user: Any) -> AsyncIterator[AsyncClient]:
    """A logged-in staff user of the dashboard pointed at the Node-built flow's Redis."""
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(node_flow[0])):
        reset_directories()
        client = AsyncClient()
        await client.aforce_login(staff_user)
        yield client
        await close_dashboard()
    reset_directories()
