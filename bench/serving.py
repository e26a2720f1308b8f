"""What the standalone site's serving tuning buys: the same site, data and requests served by daphne with
config's event-loop middlewares and thread-keeping ASGI handler (config.settings) and with Django's own
(bench/stock_settings.py).

    python -m bench.serving [--requests 2000]

For each site and page it sends the requests one after another on one keep-alive connection (as one
browser tab), and reports the median and p90 wall time and the server's CPU time per request (from
/proc). The data: one queue of 1,000 completed jobs written by the Python `bullmq` package.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.client import login
from queues.throwaway_redis import ThrowawayRedis, free_port, stop_process
from tests.support.site import ROOT, prepare, site_env, wait_until_up

PAGES = {
    "job list JSON": "/queues/api/queues/default/bull:jobs/jobs/?state=completed&per_page=25&page=3",
    "queue page HTML": "/queues/default/bull:jobs/?state=completed&per_page=25&page=3",
    "job page HTML": "/queues/default/bull:jobs/job/?id=500",
}
SITES = {
    "tuned (config.settings)": "config.settings",
    "stock Django (bench.stock_settings)": "bench.stock_settings",
}


async def build(url: str) -> None:
    """1,000 completed jobs in bull:jobs."""
    from bullmq import Queue, Worker

    queue = Queue("jobs", {"connection": url})
    await queue.addBulk([{"name": "send", "data": {"i": i}} for i in range(1000)])
    await queue.close()
    done = asyncio.Event()
    count = 0

    async def work(job: object, token: str) -> dict[str, bool]:
        nonlocal count
        count += 1
        if count >= 1000:
            done.set()
        return {"ok": True}

    worker = Worker("jobs", work, {"connection": url, "concurrency": 50})
    await asyncio.wait_for(done.wait(), 120)
    await worker.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(settings_module: str, redis_url: str, requests: int) -> dict[str, dict[str, float]]:
    """The pages' timings on one site."""
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        env = site_env(Path(tmp), redis_url, DJANGO_SETTINGS_MODULE=settings_module, DASHBOARD_LIVE="0")
        prepare(env, "bench", "bench-password")
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base, process)
            client = login(base, "bench", "bench-password")
            results = {}
            for label, path in PAGES.items():
                for _ in range(200):  # warm up: caches, thread pools, connections
                    assert client.get(path).status == 200
                cpu_before = cpu_seconds(process.pid)
                times = [client.get(path).seconds for _ in range(requests)]
                cpu = (cpu_seconds(process.pid) - cpu_before) / requests
                times.sort()
                results[label] = {
                    "median_ms": statistics.median(times) * 1000,
                    "p90_ms": times[int(len(times) * 0.9)] * 1000,
                    "cpu_ms": cpu * 1000,
                }
            client.close()
            return results
        finally:
            stop_process(process)


def main() -> None:
    """Build the data, measure both sites, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with ThrowawayRedis() as redis:
        asyncio.run(build(redis.url))
        measured = {name: measure(module, redis.url, args.requests) for name, module in SITES.items()}
    print(f"| page | site | median | p90 | server CPU / request |  ({args.requests} requests each)")
    print("|---|---|---|---|---|")
    for page in PAGES:
        for site, results in measured.items():
            row = results[page]
            times = f"{row['median_ms']:.2f} ms | {row['p90_ms']:.2f} ms | {row['cpu_ms']:.2f} ms"
            print(f"| {page} | {site} | {times} |")


if __name__ == "__main__":
    main()
