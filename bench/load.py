"""Load: many viewers with live sockets and API clients on a busy Redis, for a bounded time.

    .venv/bin/python -m bench.load [--seconds 180] [--viewers 50] [--api-clients 10]

Our site (config.asgi on daphne, DEBUG off, the default in-memory channel layer) over its own Redis, where
Node BullMQ (bench/traffic.mjs) keeps 200 queues busy. Each viewer is a tab: it loads the overview
(`GET /queues/`, timed), opens the page's live socket (`/queues/ws/`) with the session cookie and counts
what it receives; every ~`--reload-every` seconds it reloads (socket closed, page loaded again, a new
socket), as an operator's tab does now and then. Viewers are spread over staff users, 10 each (the live
layer allows 30 sockets per user and process). The API clients poll the JSON API every `--api-interval`
seconds, in turn: the queue list (checked to list every queue), a queue, and its completed, failed and
waiting jobs. Every `--every` seconds the run samples the dashboard process (VmRSS and open fds from
/proc, asyncio tasks and the channel layer from inside, bench/sampled_daphne.py) and Redis's
connected_clients.

Errors: answers >= 500, sockets the server closed, exceptions in the clients, and tracebacks in the
site's log. Writes bench/results/<date>-load.json and <date>-load.md. Not a test; `make test` does not
run it. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.busy import (
    Busy,
    Record,
    Viewer,
    cpu_share,
    jitter,
    queue_names,
    server_errors,
    thirds,
    viewer_client,
)
from bench.client import HttpClient

ROOT = Path(__file__).resolve().parent.parent
GROWTH = (
    "rss_kib",
    "fds",
    "redis_clients",
    "dashboard_redis_clients",
    "tasks",
    "daphne_connections",
    "threads",
)
# A figure "grows" when its last third's mean is above the first third's by more than this share and
# by more than a couple of units (a count moving from 20 to 21 is not growth).
GROWTH_SHARE = 0.05
GROWTH_UNITS = 2


def view(index: int, busy: Busy, opened_by: float, end: float, reload_every: float, record: Record) -> None:
    """One tab: opened by `opened_by` (spread over the ramp), reloaded now and then, closed at `end`."""
    time.sleep(max(0.0, opened_by - time.monotonic()) * random.random())
    viewer = Viewer(viewer_client(busy.clients, index), record)
    kind = "overview page (opening)"
    while (now := time.monotonic()) < end - 1:
        stay = end if reload_every <= 0 else min(end, max(now, opened_by) + jitter(reload_every))
        if viewer.load(kind, "/queues/"):
            viewer.hold("/queues/ws/", stay)
        else:
            time.sleep(1)
        kind = "overview page"
    viewer.client.close()


def api_targets(queues: list[str], rng: random.Random) -> list[tuple[str, str]]:
    """One round of an API client's requests: (kind, path)."""
    base = f"/queues/api/queues/default/bull:{rng.choice(queues)}/"
    return [
        ("api queue list", "/queues/api/queues/"),
        ("api queue", base),
        ("api jobs", base + "jobs/?state=completed&per_page=25"),
        ("api jobs", base + "jobs/?state=failed&per_page=25"),
        ("api jobs", base + "jobs/?state=waiting&per_page=25"),
    ]


def poll_api(
    index: int, client: HttpClient, queues: list[str], start: float, end: float, every: float, record: Record
) -> None:
    """Poll the API every `every` seconds (a request still running when the next is due skips that one)."""
    rng = random.Random(index)
    due = start + every * rng.random()
    targets: list[tuple[str, str]] = []
    while due < end:
        if due > (now := time.monotonic()):
            time.sleep(due - now)
        if not targets:
            targets = api_targets(queues, rng)
        kind, path = targets.pop(0)
        try:
            response = client.get(path)
        except Exception as exc:  # a client counts failures instead of stopping the run
            record.fail("exception", f"{kind} GET {path}: {type(exc).__name__}: {exc}")
            client.close()
        else:
            record.timed(kind, response.status, response.seconds)
            if kind == "api queue list" and response.status == 200:
                listed = len(json.loads(response.body)["queues"])
                if listed != len(queues):
                    record.fail("wrong answer", f"the queue list had {listed} queues, not {len(queues)}")
        now = time.monotonic()
        while due <= now:
            due += every
    client.close()


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start everything, load, sample, stop."""
    users = max(1, -(-args.viewers // 10))
    load_before = os.getloadavg()
    with Busy(workdir, args.queues, args.rate, users, args.every, args.bullmq_dir) as busy:
        record = Record()
        names = queue_names(args.queues)
        ramp_end = time.monotonic() + args.ramp
        end = ramp_end + args.seconds
        viewers = [
            threading.Thread(
                target=view, args=(index, busy, ramp_end, end, args.reload_every, record), daemon=True
            )
            for index in range(args.viewers)
        ]
        for thread in viewers:
            thread.start()
        time.sleep(max(0.0, ramp_end - time.monotonic()))
        sampler = busy.sampler()
        pollers = [
            threading.Thread(
                target=poll_api,
                args=(index, busy.clients[0].clone(), names, ramp_end, end, args.api_interval, record),
                daemon=True,
            )
            for index in range(args.api_clients)
        ]
        for thread in pollers:
            thread.start()
        for thread in [*viewers, *pollers]:
            thread.join(timeout=args.seconds + 300)
        rows = sampler.stop()
        traffic = busy.traffic.stop()
        log = server_errors(busy.log)
    summary = record.summary()
    growth = {key: thirds(rows, key) for key in GROWTH}
    for third in growth.values():
        if "change" in third:
            third["grows"] = bool(
                third["change"] > GROWTH_UNITS and third["change"] > GROWTH_SHARE * third["first_third_mean"]
            )
    return {
        # Other work on the machine shares its cores: the latencies are only as quiet as this.
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "scenario": "load",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": vars(args) | {"out": str(args.out), "bullmq_dir": str(args.bullmq_dir)},
        "traffic": traffic,
        "clients": summary,
        "server_log": log,
        "errors_total": summary["errors_total"] + log["tracebacks"],
        "dashboard_cpu_cores": cpu_share(rows),
        "growth": growth,
        "samples": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    """A short summary of the run."""
    s = result["settings"]
    clients = result["clients"]
    sockets = clients["sockets"]
    traffic = result["traffic"]
    lines = [
        f"# Load, {result['date']}",
        "",
        f"{s['seconds']:g} s (after a {s['ramp']:g} s ramp) with {s['viewers']} viewers "
        f"(overview + live socket, reloaded every ~{s['reload_every']:g} s) and {s['api_clients']} API "
        f"clients (a request every {s['api_interval']:g} s each) on {s['queues']} queues kept busy by "
        f"Node BullMQ at {s['rate']:g} jobs/s "
        f"({traffic.get('produced', '?')} jobs produced); daphne, DEBUG off, 127.0.0.1 only.",
        "",
        f"Machine: {result['machine']['cpus']} CPUs, load average (1/5/15 min) "
        f"{' '.join(f'{x:.1f}' for x in result['machine']['loadavg_before'])} before, "
        f"{' '.join(f'{x:.1f}' for x in result['machine']['loadavg_after'])} after.",
        "",
        f"**Errors: {result['errors_total']}** (clients: {clients['errors'] or 'none'}; server tracebacks: "
        f"{result['server_log']['tracebacks']}). Statuses: {clients['statuses']}.",
        "",
        "| requests | n | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    for kind, row in clients["latency"].items():
        if row["n"]:
            lines.append(
                f"| {kind} | {row['n']} | {row['p50_ms']} ms | {row['p95_ms']} ms | {row['p99_ms']} ms | "
                f"{row['max_ms']} ms |"
            )
    per_socket = sockets["messages_per_socket"]
    rate = sockets["messages_per_socket_second"]
    lines += [
        "",
        f"The dashboard process used {result['dashboard_cpu_cores']} of a core on average (utime + stime).",
        "",
        f"Sockets: {sockets['opened']} opened, {sockets['messages_total']} messages; per socket "
        f"min {per_socket.get('min')} / median {per_socket.get('median')} / max {per_socket.get('max')} "
        f"(per second: median {rate.get('median')}); {sockets['sockets_without_messages']} got none.",
        "",
        f"Sampled every {s['every']:g} s ({len(result['samples'])} samples); "
        "first third vs last third (mean):",
        "",
        "| figure | first third | last third | change | grows |",
        "|---|---|---|---|---|",
    ]
    for key, third in result["growth"].items():
        if "change" in third:
            lines.append(
                f"| {key} | {third['first_third_mean']} | {third['last_third_mean']} | {third['change']} | "
                f"{'yes' if third['grows'] else 'no'} |"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run, write the results; returns them."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the measured run")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the viewers open")
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--reload-every", type=float, default=60.0, help="0: never reload")
    parser.add_argument("--api-clients", type=int, default=10)
    parser.add_argument("--api-interval", type=float, default=2.0)
    parser.add_argument("--queues", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="jobs/s the traffic adds")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--bullmq-dir", type=Path, default=ROOT / "bench", help="where node_modules/bullmq is (bench/)"
    )
    parser.add_argument("--name", default="load", help="results file names: <date>-<name>.json/.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        result = run(args, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{datetime.now(UTC).date().isoformat()}-{args.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result), flush=True)
    return result


if __name__ == "__main__":
    main()
