"""Live updates: event-to-DOM latency in Chromium, and Redis commands per second by number of viewers.

    .venv/bin/python bench/live.py [--viewers 1,10,50] [--window 30] [--full-pages] [--json out.json]

Starts its own redis-server and daphne (config.asgi, DEBUG off, in-memory channel layer) and keeps
steady BullMQ traffic going: a Python `bullmq` producer adds 10 jobs/s on a fixed schedule over 4
queues and workers complete them (about 30 stream events/s). Then, for each number of viewers N:

- viewers: one overview page in Debian's Chromium (the measuring page) plus N-1 more overview
  websockets, opened as plain `WebSocket`s from a second page of the same login (each is a real
  consumer on the server; `--full-pages` opens N-1 whole overview pages instead, which on 2 cores
  mostly measures Chromium);
- latency: every 1.2-1.8 s a job is added to a queue that has no worker; the time from just before
  `Queue.add` to the moment the measuring page's waiting-count cell shows the new number (a
  MutationObserver; both clocks are this machine's);
- Redis load: INFO commandstats summed over all commands in the window, per second. The same traffic
  without any viewer is measured first; the dashboard's share is the total minus that baseline scaled
  to the jobs actually produced in the window.

Everything runs on this machine against loopback addresses only and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bullmq import Queue, Worker  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from queues.throwaway_redis import ThrowawayRedis, free_port  # noqa: E402
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.site import prepare, site_env, wait_until_up  # noqa: E402

USERNAME, PASSWORD = "bench", "bench-live-password"
TRAFFIC_QUEUES = [f"traffic-{index}" for index in range(4)]
LATENCY_QUEUE = "latency"
TRAFFIC_PER_SECOND = 10

WATCH_CELL = """(id) => {
  window.__changes = [];
  const row = document.getElementById(id).closest("tr");
  new MutationObserver(() => {
    const cell = document.getElementById(id);
    window.__changes.push([performance.timeOrigin + performance.now(), cell ? cell.textContent.trim() : ""]);
  }).observe(row, { childList: true, subtree: true, characterData: true });
}"""
SOCKET_OPEN = """() => {
  const socket = document.querySelector("[data-live-socket]");
  const wrapper = socket && socket["htmx-internal-data"] && socket["htmx-internal-data"].webSocket;
  return !!(wrapper && wrapper.socket && wrapper.socket.readyState === 1);
}"""
OPEN_SOCKETS = """(count) => new Promise((resolve, reject) => {
  window.__sockets = window.__sockets || [];
  window.__messages = window.__messages || 0;
  const url = location.origin.replace(/^http/, "ws") + "/queues/ws/";
  let open = 0;
  for (let i = 0; i < count; i++) {
    const socket = new WebSocket(url);
    socket.onmessage = () => { window.__messages += 1; };
    socket.onopen = () => { open += 1; if (open === count) resolve(window.__sockets.length); };
    socket.onclose = (event) => { if (!open) reject(new Error("socket refused: " + event.code)); };
    window.__sockets.push(socket);
  }
})"""
CLOSE_SOCKETS = """(count) => {
  for (let i = 0; i < count; i++) window.__sockets.pop().close();
  return window.__sockets.length;
}"""


@dataclass
class Level:
    """What one number of viewers measured."""

    viewers: int
    seconds: float
    commands_per_second: float
    jobs_per_second: float
    messages_per_second: float = 0.0
    dashboard_commands_per_second: float | None = None
    latency_ms: list[float] = field(default_factory=list)
    missed: int = 0

    def percentile(self, p: float) -> float | None:
        """A latency percentile in ms (nearest rank)."""
        if not self.latency_ms:
            return None
        ordered = sorted(self.latency_ms)
        return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 1)


@dataclass
class Traffic:
    """Jobs the producer has added so far."""

    produced: int = 0


def start_site(tmp: Path, redis_url: str, interval: float) -> tuple[str, subprocess.Popen[bytes]]:
    """Migrate, collect static, create the staff user and start daphne; returns its URL and process."""
    env = site_env(tmp, redis_url, DASHBOARD_LIVE_INTERVAL=str(interval))
    prepare(env, USERNAME, PASSWORD)
    port = free_port()
    with (tmp / "daphne.log").open("wb") as log:
        daphne = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, daphne)
    return base, daphne


async def seed(url: str) -> None:
    """Create the queues: one job in the latency queue and in each traffic queue."""
    for name in [LATENCY_QUEUE, *TRAFFIC_QUEUES]:
        queue = Queue(name, {"connection": url})
        await queue.add("seed", {})
        await queue.close()


async def total_commands(client: Redis) -> int:
    """Calls of every command since the last CONFIG RESETSTAT."""
    stats = await client.info("commandstats")
    return sum(int(entry.get("calls", 0)) for entry in stats.values() if isinstance(entry, dict))


async def traffic(url: str, stop: asyncio.Event, counter: Traffic) -> None:
    """A producer adding TRAFFIC_PER_SECOND jobs/s on a fixed schedule, and workers completing them."""

    async def complete(job: Any, token: str) -> str:
        return "ok"

    queues = [Queue(name, {"connection": url}) for name in TRAFFIC_QUEUES]
    workers = [Worker(name, complete, {"connection": url, "autorun": False}) for name in TRAFFIC_QUEUES]
    runners = [asyncio.ensure_future(worker.run()) for worker in workers]
    started = time.monotonic()
    try:
        while not stop.is_set():
            index = counter.produced
            await queues[index % len(queues)].add("tick", {"i": index}, {"removeOnComplete": 1000})
            counter.produced += 1
            delay = started + counter.produced / TRAFFIC_PER_SECOND - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, delay))
    finally:
        for worker in workers:
            await worker.close()
        await asyncio.gather(*runners, return_exceptions=True)
        for queue in queues:
            await queue.close()


class Viewers:
    """The measuring overview page, plus more viewers: plain overview sockets, or whole pages."""

    def __init__(self, context: Any, base: str, full_pages: bool) -> None:
        self.context = context
        self.base = base
        self.full_pages = full_pages
        self.pages: list[Any] = []
        self.host: Any = None
        self.extra = 0

    async def open_page(self) -> Any:
        """An overview page with its socket open."""
        page = await self.context.new_page()
        await page.goto(self.base + "/queues/")
        await page.wait_for_function(SOCKET_OPEN, timeout=20000)
        return page

    async def resize(self, viewers: int) -> None:
        """Make exactly `viewers` viewers open (the measuring page counts as one)."""
        if not self.pages:
            self.pages.append(await self.open_page())
        wanted = viewers - 1
        if self.full_pages:
            while len(self.pages) - 1 < wanted:
                self.pages.append(await self.open_page())
            while len(self.pages) - 1 > wanted:
                await self.pages.pop().close()
            return
        if self.host is None:
            self.host = await self.context.new_page()
            await self.host.goto(self.base + "/accounts/login/")  # same origin, no socket of its own
        if wanted > self.extra:
            await self.host.evaluate(OPEN_SOCKETS, wanted - self.extra)
        elif wanted < self.extra:
            await self.host.evaluate(CLOSE_SOCKETS, self.extra - wanted)
        self.extra = wanted

    async def messages(self) -> int:
        """Messages the extra sockets received so far."""
        return int(await self.host.evaluate("() => window.__messages || 0")) if self.host else 0


@dataclass
class Probe:
    """Adds jobs to the latency queue and waits for the measuring page to show them."""

    queue: Queue
    waiting: int = 1

    async def once(self, page: Any) -> float | None:
        """Milliseconds from adding a job to the count cell showing it; None after 5 s."""
        self.waiting += 1
        expected = f"{self.waiting:,}"
        sent_ms = time.time() * 1000
        await self.queue.add("probe", {"n": self.waiting})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            changes = await page.evaluate("() => window.__changes")
            seen = next((at for at, value in changes if value == expected and at >= sent_ms - 5), None)
            if seen is not None:
                return float(seen - sent_ms)
            await asyncio.sleep(0.02)
        return None


async def measure_level(
    count: int, viewers: Viewers, redis: Redis, probe: Probe, counter: Traffic, window: float
) -> Level:
    """Redis commands/s and event-to-DOM latency over one window with `count` viewers open."""
    await viewers.resize(count)
    await asyncio.sleep(3)  # let the joins' snapshots and any backlog settle
    page = viewers.pages[0]
    selector = f'td.count[data-queue="bull:{LATENCY_QUEUE}"][data-state="waiting"]'
    await page.evaluate(WATCH_CELL, await page.get_attribute(selector, "id"))
    await redis.config_resetstat()
    produced, messages = counter.produced, await viewers.messages()
    started = time.monotonic()
    latencies: list[float] = []
    missed = 0
    while time.monotonic() - started < window - 2.5:
        await asyncio.sleep(random.uniform(1.2, 1.8))
        latency = await probe.once(page)
        if latency is None:
            missed += 1
        else:
            latencies.append(latency)
    await asyncio.sleep(max(0.0, window - (time.monotonic() - started)))
    seconds = time.monotonic() - started
    commands = await total_commands(redis)
    return Level(
        viewers=count,
        seconds=round(seconds, 1),
        commands_per_second=round(commands / seconds, 1),
        jobs_per_second=round((counter.produced - produced) / seconds, 2),
        messages_per_second=round((await viewers.messages() - messages) / seconds, 1),
        latency_ms=latencies,
        missed=missed,
    )


async def log_in(context: Any, base: str) -> None:
    """Log the browser context in as the staff user."""
    page = await context.new_page()
    await page.goto(base + "/accounts/login/?next=/queues/")
    await page.fill("input[name=username]", USERNAME)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/queues/")
    await page.close()


async def measure(
    base: str, redis_url: str, viewer_levels: list[int], window: float, full_pages: bool
) -> dict[str, Any]:
    """Traffic alone, then each number of viewers."""
    from playwright.async_api import async_playwright

    results: dict[str, Any] = {"levels": [], "window_s": window, "full_pages": full_pages}
    redis = Redis.from_url(redis_url)
    probe = Probe(Queue(LATENCY_QUEUE, {"connection": redis_url}))
    counter = Traffic()
    stop = asyncio.Event()
    producer = asyncio.ensure_future(traffic(redis_url, stop, counter))
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            await log_in(context, base)

            await asyncio.sleep(3)
            await redis.config_resetstat()
            produced, started = counter.produced, time.monotonic()
            await asyncio.sleep(window)
            seconds = time.monotonic() - started
            baseline = await total_commands(redis) / seconds
            baseline_jobs = (counter.produced - produced) / seconds
            per_job = baseline / baseline_jobs
            results["baseline"] = {
                "commands_per_second": round(baseline, 1),
                "jobs_per_second": round(baseline_jobs, 2),
            }
            print(f"traffic alone: {baseline:.1f} Redis commands/s at {baseline_jobs:.1f} jobs/s", flush=True)

            viewers = Viewers(context, base, full_pages)
            for count in viewer_levels:
                level = await measure_level(count, viewers, redis, probe, counter, window)
                level.dashboard_commands_per_second = round(
                    level.commands_per_second - per_job * level.jobs_per_second, 1
                )
                summary = {"p50_ms": level.percentile(50), "p95_ms": level.percentile(95)}
                results["levels"].append({**asdict(level), **summary})
                print(
                    f"{count:>3} viewers: {level.commands_per_second} Redis commands/s in all at "
                    f"{level.jobs_per_second} jobs/s, {level.dashboard_commands_per_second} the dashboard's; "
                    f"{level.messages_per_second} messages/s to the extra sockets; "
                    f"latency p50 {fmt(level.percentile(50))} p95 {fmt(level.percentile(95))} "
                    f"({len(level.latency_ms)} samples, {level.missed} missed)",
                    flush=True,
                )
            await browser.close()
    finally:
        stop.set()
        await producer
        await probe.queue.close()
        await redis.aclose()
    levels = results["levels"]
    if len(levels) >= 2 and levels[0]["dashboard_commands_per_second"]:
        first, last = levels[0], levels[-1]
        results["ratio_total"] = round(last["commands_per_second"] / first["commands_per_second"], 3)
        results["ratio_dashboard"] = round(
            last["dashboard_commands_per_second"] / first["dashboard_commands_per_second"], 3
        )
    return results


def run(viewer_levels: list[int], window: float, interval: float, full_pages: bool) -> dict[str, Any]:
    """Start Redis and the site, measure, stop everything."""
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, ThrowawayRedis(own_session=True) as server:
        asyncio.run(seed(server.url))
        base, daphne = start_site(Path(tmp), server.url, interval)
        try:
            results = asyncio.run(measure(base, server.url, viewer_levels, window, full_pages))
        finally:
            daphne.terminate()
            try:
                daphne.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daphne.kill()
                daphne.wait()
    results["interval_s"] = interval
    return results


def fmt(value: float | None) -> str:
    """Milliseconds for the report."""
    return "—" if value is None else f"{value:.0f} ms"


def main() -> None:
    """Parse arguments, run, report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--viewers", default="1,10,50", help="comma-separated numbers of open viewers")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured per level")
    parser.add_argument("--interval", type=float, default=1.0, help="LIVE REFRESH_INTERVAL of the site")
    parser.add_argument("--full-pages", action="store_true", help="every viewer a whole Chromium page")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    levels = [int(value) for value in args.viewers.split(",") if value.strip()]
    results = run(levels, args.window, args.interval, args.full_pages)
    if "ratio_dashboard" in results:
        print(
            f"{levels[-1]} vs {levels[0]} viewers: {results['ratio_total']}x Redis commands/s in all, "
            f"{results['ratio_dashboard']}x the dashboard's share"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
