"""Soak: the live watcher and the channel layer under steady traffic for long, viewers coming and going.

    .venv/bin/python -m bench.soak [--minutes 30] [--viewers 10] [--every 30]

Our site (config.asgi on daphne, DEBUG off, the default in-memory channel layer) over its own Redis, where
Node BullMQ (bench/traffic.mjs) keeps 200 queues busy. `--viewers` tabs are open at any time: each loads a
page (70% the overview, 20% a queue page, 10% a job page), holds its live socket for 10-60 s, leaves (one
in five by dropping the TCP connection without a close frame, as a killed tab does) and is replaced at
once. Every `--every` seconds the run samples the dashboard process: VmRSS and open fds (/proc), asyncio
tasks on daphne's event loop, threads, the channel layer's groups and channels and the live hub's state
(from inside the process, bench/sampled_daphne.py), and Redis's connected_clients. After the last viewer
leaves it waits and samples once more: sockets, groups and the watcher should all be gone.

Writes bench/results/<date>-soak.json and <date>-soak.md: the slope of a linear fit over the second half
of the run (per hour) and first vs last sample for each figure. Not a test; `make test` does not run it.
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
from urllib.parse import quote

from bench.busy import (
    Busy,
    Record,
    Viewer,
    cpu_share,
    open_fds,
    os_threads,
    queue_names,
    server_errors,
    slope,
    thirds,
    viewer_client,
)
from bench.client import HttpClient
from bench.servers import rss_kib

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    "rss_kib",
    "fds",
    "tasks",
    "daphne_connections",
    "threads",
    "os_threads",
    "layer_groups",
    "layer_channels",
    "hub_sent",
)
FIGURES_ALL = (*FIGURES, "redis_clients", "dashboard_redis_clients", "hub_viewers", "layer_members")
# How long after the last viewer left the final sample is taken: the hub lets a page view keep the
# watcher for a while (a lease), and the in-process sampler writes every 5 s.
SETTLE_SECONDS = 75.0


def visit(viewer: Viewer, queues: list[str], until: float, rng: random.Random) -> None:
    """One tab's visit: a page and its socket, held until `until`."""
    abrupt = rng.random() < 0.2
    roll = rng.random()
    queue = f"default/bull:{rng.choice(queues)}/"
    if roll < 0.7:
        if viewer.load("overview page", "/queues/"):
            viewer.hold("/queues/ws/", until, abrupt)
        return
    if roll < 0.9:
        state = rng.choice(["waiting", "active", "completed", "failed", "delayed"])
        if viewer.load("queue page", f"/queues/{queue}?state={state}"):
            viewer.hold(f"/queues/ws/{queue}?state={state}", until, abrupt)
        return
    job_id = newest_job(viewer.client, queue, viewer.record)
    if job_id is not None and viewer.load("job page", f"/queues/{queue}job/?id={quote(job_id)}"):
        viewer.hold(f"/queues/ws/{queue}job/?id={quote(job_id)}", until, abrupt)


def newest_job(client: HttpClient, queue: str, record: Record) -> str | None:
    """The id of the queue's newest completed job (from the JSON API), or None."""
    try:
        response = client.get(f"/queues/api/queues/{queue}jobs/?state=completed&per_page=1")
    except Exception as exc:
        record.fail("exception", f"job lookup: {type(exc).__name__}: {exc}")
        client.close()
        return None
    record.timed("api jobs", response.status, response.seconds)
    if response.status != 200:
        return None
    jobs = json.loads(response.body).get("jobs") or []
    return str(jobs[0]["id"]) if jobs else None


def slot(
    index: int, busy: Busy, queues: list[str], end: float, stay: tuple[float, float], record: Record
) -> None:
    """One viewer slot: visits one after another until `end`, each replaced as soon as it leaves."""
    rng = random.Random(index)
    time.sleep(index * 0.5)  # the first visits spread out
    while (now := time.monotonic()) < end - 1:
        viewer = Viewer(viewer_client(busy.clients, index), record)
        visit(viewer, queues, min(end, now + rng.uniform(*stay)), rng)
        viewer.client.close()


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start everything, soak, sample, stop."""
    users = max(1, -(-args.viewers // 10))
    load_before = os.getloadavg()
    with Busy(workdir, args.queues, args.rate, users, args.every, args.bullmq_dir) as busy:
        record = Record()
        sampler = busy.sampler()
        started = time.monotonic()
        end = started + args.minutes * 60
        names = queue_names(args.queues)
        threads = [
            threading.Thread(
                target=slot,
                args=(index, busy, names, end, (args.stay_min, args.stay_max), record),
                daemon=True,
            )
            for index in range(args.viewers)
        ]
        for thread in threads:
            thread.start()
        while time.monotonic() < end:
            time.sleep(min(60.0, max(0.0, end - time.monotonic())))
            if sampler.samples:
                last = sampler.samples[-1]
                print(
                    f"[{time.strftime('%H:%M:%S')}] t={last.t:.0f}s rss={last.rss_kib / 1024:.1f} MiB "
                    f"fds={last.fds} tasks={last.inside.get('tasks')} "
                    f"groups={last.inside.get('layer_groups')} "
                    f"viewers={last.inside.get('hub_viewers')} errors={sum(record.errors.values())}",
                    flush=True,
                )
        for thread in threads:
            thread.join(timeout=120)
        rows = sampler.stop()
        time.sleep(SETTLE_SECONDS)
        idle = busy.site.last_sample()
        pid = busy.site.pid
        idle_proc = {"rss_kib": rss_kib(pid), "fds": open_fds(pid), "os_threads": os_threads(pid)}
        traffic = busy.traffic.stop()
    return {
        # Other work on the machine shares its cores: the latencies are only as quiet as this.
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "scenario": "soak",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": vars(args) | {"out": str(args.out), "bullmq_dir": str(args.bullmq_dir)},
        "seconds": round(time.monotonic() - started, 1),
        "traffic": traffic,
        "clients": record.summary(),
        "dashboard_cpu_cores": cpu_share(rows),
        "slopes": {key: slope(rows, key) for key in FIGURES_ALL},
        "thirds": {key: thirds(rows, key) for key in FIGURES_ALL},
        "after_all_left": {
            **{key: idle.get(key) for key in (*FIGURES, "hub_viewers", "hub_views", "watcher")},
            **idle_proc,
        },
        "after_all_left_task_kinds": idle.get("task_kinds"),
        "server_log": server_errors(busy.log),
        "samples": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    """A short summary of the soak."""
    s = result["settings"]
    clients = result["clients"]
    traffic = result["traffic"]
    lines = [
        f"# Soak, {result['date']}",
        "",
        f"{s['minutes']:g} min, {s['viewers']} viewers at a time "
        f"(each {s['stay_min']:g}-{s['stay_max']:g} s, "
        f"then replaced), {s['queues']} queues, Node BullMQ traffic at {s['rate']:g} jobs/s "
        f"({traffic.get('produced', '?')} jobs produced, {traffic.get('failed', '?')} failed "
        f"on purpose); a sample every {s['every']:g} s ({len(result['samples'])} samples).",
        "",
        f"Machine: {result['machine']['cpus']} CPUs, load average (1/5/15 min) "
        f"{' '.join(f'{x:.1f}' for x in result['machine']['loadavg_before'])} before, "
        f"{' '.join(f'{x:.1f}' for x in result['machine']['loadavg_after'])} after.",
        "",
        f"Sockets opened: {clients['sockets']['opened']}; "
        f"errors: {clients['errors_total']} {clients['errors']}; "
        f"server tracebacks: {result['server_log']['tracebacks']}.",
        "",
        "| figure | first | last | second-half slope / hour | first third mean | last third mean |",
        "|---|---|---|---|---|---|",
    ]
    for key, fit in result["slopes"].items():
        third = result["thirds"][key]
        lines.append(
            f"| {key} | {fit.get('first')} | {fit.get('last')} | "
            f"{fit.get('second_half_slope_per_hour', '—')} | "
            f"{third.get('first_third_mean', '—')} | {third.get('last_third_mean', '—')} |"
        )
    after = result["after_all_left"]
    lines += [
        "",
        f"{SETTLE_SECONDS:g} s after the last viewer left: "
        + ", ".join(f"{key} {value}" for key, value in after.items()),
        "",
        "Page latencies: "
        + "; ".join(
            f"{kind} p50 {row.get('p50_ms')} ms, p95 {row.get('p95_ms')} ms (n={row['n']})"
            for kind, row in clients["latency"].items()
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, soak, write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--viewers", type=int, default=10, help="tabs open at any time")
    parser.add_argument("--stay-min", type=float, default=10.0)
    parser.add_argument("--stay-max", type=float, default=60.0)
    parser.add_argument("--queues", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="jobs/s the traffic adds")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--bullmq-dir", type=Path, default=ROOT / "bench", help="where node_modules/bullmq is (bench/)"
    )
    parser.add_argument("--name", default="soak", help="results file names: <date>-<name>.json/.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        result = run(args, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{datetime.now(UTC).date().isoformat()}-{args.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
