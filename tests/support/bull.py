"""The Node scripts of tests/bull4/: real npm `bull` 4 building queue state, and Bull's own getters."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

# tests/bull4/: the scripts and their node_modules (npm ci --prefix tests/bull4; `make bull4`).
BULL4 = Path(__file__).resolve().parents[1] / "bull4"


def run_bull(script: str, url: str, stdin: str = "") -> dict[str, Any]:
    """Run one of the Node scripts of tests/bull4/ and parse the JSON line it prints last."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the Bull tests need Node 20 (see README)")
    if not (BULL4 / "node_modules" / "bull").is_dir():
        pytest.fail("tests/bull4/node_modules is missing: run `npm ci --prefix tests/bull4` (make test does)")
    result = subprocess.run(
        [node, script, url], cwd=BULL4, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"node {script} exited {result.returncode}:\n{result.stderr}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def bull_state(url: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Build tests/bull4's Bull state in the Redis at `url`; its queues and what Bull's getters say."""
    built = run_bull("build_bull_state.mjs", url)
    return built["queues"], run_bull("bull_getters.mjs", url, stdin=json.dumps(built))
