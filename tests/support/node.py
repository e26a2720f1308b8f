"""The Node BullMQ scripts of tests/interop/, run by the interop and browser tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

# tests/interop/: the scripts and their node_modules (npm ci --prefix tests/interop).
INTEROP = Path(__file__).resolve().parents[1] / "interop"


def run_node(script: str, url: str, stdin: str = "", env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run one of the Node scripts of tests/interop/ and parse its JSON output; `env` is added to this
    process's environment (BULLMQ_DIR: which BullMQ the script loads, see tests/support/bullmq_versions)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the interop tests need Node 20 (see README)")
    if not (INTEROP / "node_modules" / "bullmq").is_dir():
        pytest.fail(
            "tests/interop/node_modules is missing: run `npm ci --prefix tests/interop` (make test does)"
        )
    result = subprocess.run(
        [node, script, url],
        cwd=INTEROP,
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"node {script} exited {result.returncode}:\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


async def run_node_async(script: str, *args: str, stdin: str = "") -> dict[str, Any]:
    """Run a Node script of tests/interop/ without blocking the event loop; parse the JSON it prints last."""
    import asyncio

    executable = shutil.which("node")
    if executable is None:
        pytest.fail("node is not installed; the interop tests need Node 20 (see README)")
    process = await asyncio.create_subprocess_exec(
        executable,
        script,
        *args,
        cwd=INTEROP,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=90)
    if process.returncode != 0:
        pytest.fail(f"node {script} exited {process.returncode}:\n{err.decode()}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))
