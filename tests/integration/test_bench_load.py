"""bench/load.py runs end to end: a short load on a small busy Redis gives results with no errors, live
sockets that received pushes and answered requests (the full run is `make bench-load`, not a test)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import load

INTEROP = Path(__file__).resolve().parents[1] / "interop"


def test_a_short_load_run_has_no_errors_and_its_sockets_receive(tmp_path: Path) -> None:
    result = load.main(
        [
            "--seconds=10",
            "--ramp=2",
            "--viewers=3",
            "--api-clients=2",
            "--api-interval=1",
            "--queues=10",
            "--rate=20",
            "--every=2",
            f"--out={tmp_path}",
            "--name=smoke",
            f"--bullmq-dir={INTEROP}",  # the tests' BullMQ 6.7.0 (bench/node_modules may not be installed)
        ]
    )

    clients = result["clients"]
    assert result["errors_total"] == 0, (clients["error_examples"], result["server_log"])
    assert clients["sockets"]["opened"] == 3
    assert clients["sockets"]["messages_per_socket"]["min"] > 0
    assert clients["latency"]["overview page (opening)"]["n"] == 3
    assert clients["latency"]["api queue list"]["n"] > 0
    assert set(clients["statuses"]) == {"200"}
    assert result["traffic"]["produced"] > 10  # the Node workers and producer ran
    assert len(result["samples"]) >= 5
    assert all(row["rss_kib"] > 0 and row["fds"] > 0 for row in result["samples"])
    assert result["samples"][-1]["tasks"] is not None  # the in-process sampler answered
    written = json.loads((tmp_path / next(p.name for p in tmp_path.glob("*-smoke.json"))).read_text())
    assert written["scenario"] == "load"
    assert (tmp_path / next(p.name for p in tmp_path.glob("*-smoke.md"))).read_text().startswith("# Load")
