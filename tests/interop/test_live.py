"""Live pages follow a real Node BullMQ 6 worker: added, active, progress, logs, failed, completed."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from django.test import AsyncClient, override_settings

from dashboard import links
from dashboard.live.hub import get_hub
from queues.models import QueueRef
from tests.support.dashboard import dashboard_settings
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of, count_cell
from tests.support.node import INTEROP
from tests.support.urls import socket_path, ws_path

pytestmark = [pytest.mark.interop, pytest.mark.host_compatible]


class NodeWorker:
    """tests/interop/live_worker.mjs, driven step by step over stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, url: str, queue: str) -> NodeWorker:
        """Start the script; it adds its jobs right away."""
        node = shutil.which("node")
        if node is None or not (INTEROP / "node_modules" / "bullmq").is_dir():
            pytest.fail("node and tests/interop/node_modules are required: npm ci --prefix tests/interop")
        process = await asyncio.create_subprocess_exec(
            node,
            "live_worker.mjs",
            url,
            queue,
            cwd=INTEROP,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def step(self, name: str, within: float = 30.0) -> dict[str, Any]:
        """Wait for the script to report a step."""
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError(f"live_worker.mjs ended before {name!r}")
                message = json.loads(line)
                if message.get("step") == name:
                    return dict(message)

    async def send(self, word: str) -> None:
        """Give the script its next command."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{word}\n".encode())
        await self.process.stdin.drain()

    async def close(self) -> None:
        """Let the script end (or end it) and collect its pipes."""
        if self.process.returncode is None:
            try:
                async with asyncio.timeout(20):
                    _out, err = await self.process.communicate()
            except TimeoutError:
                self.process.kill()
                _out, err = await self.process.communicate()
            assert self.process.returncode == 0, err.decode()


@pytest.fixture
async def sockets(redis_url: str, client: AsyncClient) -> AsyncIterator[Callable[[str], LiveSocket]]:
    """Staff sockets on fast live settings; all closed (and the watcher stopped) afterwards."""
    opened: list[LiveSocket] = []

    def make(path: str) -> LiveSocket:
        socket = LiveSocket(path, cookie_of(client))
        opened.append(socket)
        return socket

    with override_settings(
        CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=dashboard_settings(redis_url, LIVE=FAST)
    ):
        yield make
        for socket in opened:
            await socket.close()
    assert get_hub().watcher is None


async def test_a_node_worker_moves_the_overview_and_job_pages(
    redis_url: str, sockets: Callable[[str], LiveSocket]
) -> None:
    queue = QueueRef("default", "bull", "live-node")
    worker = await NodeWorker.start(redis_url, queue.name)
    try:
        await worker.step("added")
        overview = sockets(socket_path())
        good = sockets(ws_path(links.job_url(queue, "ok-1")))
        bad = sockets(ws_path(links.job_url(queue, "bad-1")))
        for socket in (overview, good, bad):
            assert await socket.connect() == (True, None)
        await overview.wait_for(count_cell(queue, "waiting", 2))
        await good.wait_for('class="badge state-waiting"')

        await worker.send("go")
        await worker.step("halfway")
        await overview.wait_for(count_cell(queue, "failed", 1))
        await overview.wait_for(count_cell(queue, "active", 1))
        await good.wait_for('class="badge state-active"')
        await good.wait_for('<progress max="100" value="50">')
        await good.wait_for("<li>halfway there</li>")
        failure = await bad.wait_for('id="stacktraces"')
        assert "Error: card declined" in failure
        await bad.wait_for('class="badge state-failed"')

        await worker.send("release")
        done = await worker.step("done")
        assert done["states"] == {"bad-1": "failed", "ok-1": "completed"}
        await good.wait_for('class="badge state-completed"')
        await good.wait_for('<progress max="100" value="100">')
        await good.wait_for(lambda text: "<li>halfway there</li>" in text and "<li>all done</li>" in text)
        await overview.wait_for(count_cell(queue, "completed", 1))
        await overview.wait_for(count_cell(queue, "active", 0))
    finally:
        await worker.close()
