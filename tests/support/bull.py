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


def build_bull(url: str) -> list[dict[str, Any]]:
    """Build tests/bull4's Bull state in the Redis at `url` (its queues' keys are deleted first); the
    queues, as bull_getters.mjs takes them."""
    return list(run_bull("build_bull_state.mjs", url)["queues"])


def bull_view(url: str, queues: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What Bull's own getters say of `queues` now, by `<prefix>:<name>`."""
    seen = run_bull("bull_getters.mjs", url, stdin=json.dumps({"queues": queues}))
    return {f"{queue['prefix']}:{queue['name']}": queue for queue in seen["queues"]}


# A Bull 4 worker (`queue.process()`) that completes jobs of one queue until `count` have completed.
_WORKER = """
const Queue = require('bull');
const [url, prefix, name, count] = process.argv.slice(1);
setTimeout(() => { console.error('bull worker: timed out'); process.exit(3); }, 20000).unref();
(async () => {
  const queue = new Queue(name, url, { prefix });
  const done = [];
  const finished = new Promise(resolve => {
    queue.on('completed', job => {
      done.push(String(job.id));
      if (done.length >= Number(count)) resolve();
    });
  });
  queue.process('*', 1, async job => ({ worked: String(job.id) }));
  await finished;
  await queue.close();
  process.stdout.write(JSON.stringify({ completed: done }) + '\\n', () => process.exit(0));
})().catch(err => { console.error(err); process.exit(1); });
"""


def bull_work(url: str, prefix: str, name: str, count: int) -> list[str]:
    """Run a real Bull worker on `<prefix>:<name>` until `count` jobs completed; their ids in order."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the Bull tests need Node 20 (see README)")
    result = subprocess.run(
        [node, "-e", _WORKER, url, prefix, name, str(count)],
        cwd=BULL4,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"the Bull worker exited {result.returncode}:\n{result.stderr}")
    return list(json.loads(result.stdout.strip().splitlines()[-1])["completed"])


def bull_built_script(name: str) -> str:
    """The source Bull itself sends for its script `name` (lib/scripts/<name>.js, its includes in place)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the Bull tests need Node 20 (see README)")
    code = "process.stdout.write(require('bull/lib/scripts/' + process.argv[1]).content)"
    result = subprocess.run(
        [node, "-e", code, name], cwd=BULL4, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout
