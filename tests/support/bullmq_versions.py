"""The Node BullMQ versions the interop tests build state with, and a Node script of tests/interop/ run
with one of them, driven line by line (tests/interop/health_causes.mjs)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.node import INTEROP

# Major version → the folder whose node_modules holds it (tests/interop/bullmq_of.mjs reads BULLMQ_DIR).
BULLMQ_DIRS = {"6": INTEROP, "5": INTEROP.parent / "interop5"}


def bullmq_dir(version: str) -> Path:
    """The folder holding Node BullMQ `version` (fails the test when it is not installed)."""
    folder = BULLMQ_DIRS[version]
    if not (folder / "node_modules" / "bullmq").is_dir():
        relative = folder.relative_to(INTEROP.parent.parent)
        pytest.fail(f"{relative}/node_modules is missing: run `npm ci --prefix {relative}` (make test does)")
    return folder


class NodeScript:
    """A Node script of tests/interop/ that prints one JSON line per step and reads commands on stdin."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: IO[bytes], script: str) -> None:
        self.process = process
        self.stderr = stderr
        self.script = script
        # What the script printed when it was ready (set by whoever waits for it).
        self.ready: dict[str, Any] = {}

    @classmethod
    async def start(cls, version: str, script: str, *args: str) -> NodeScript:
        """Start `script` with Node BullMQ `version`."""
        executable = shutil.which("node")
        if executable is None:
            pytest.fail("node is not installed; the interop tests need Node 20 (see README)")
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - open while the script runs; close() closes it
        process = await asyncio.create_subprocess_exec(
            executable,
            script,
            *args,
            cwd=INTEROP,
            env={**os.environ, "BULLMQ_DIR": str(bullmq_dir(version))},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
        return cls(process, stderr, script)

    def _errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-4000:]

    async def line(self, seconds: float = 40) -> dict[str, Any]:
        """The next JSON line; fails the test on an error step or when the script ended."""
        assert self.process.stdout is not None
        async with asyncio.timeout(seconds):
            raw = await self.process.stdout.readline()
        if not raw:
            await self.process.wait()
            pytest.fail(f"{self.script} ended ({self.process.returncode}):\n{self._errors()}")
        message: dict[str, Any] = json.loads(raw)
        if message.get("step") == "error":
            pytest.fail(f"{self.script}: {message.get('message')}\n{self._errors()}")
        return message

    async def send(self, command: str, seconds: float = 40) -> dict[str, Any]:
        """Send one command and return its answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.line(seconds)

    async def close(self) -> None:
        """Ask the script to close its connections; kill it when it does not end."""
        try:
            if self.process.returncode is None:
                await self.send("close", seconds=20)
                async with asyncio.timeout(20):
                    await self.process.wait()
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self.stderr.close()
