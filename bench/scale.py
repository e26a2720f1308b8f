"""Scale: the overview at 1,000 / 5,000 / 10,000 queues (and 1,000,000 unrelated keys), against Bull Board.

    .venv/bin/python -m bench.scale [--sizes 1000 5000 10000] [--junk-keys 1000000] [--short]

Issue 17's figures, on data written by Node BullMQ 6 (bench/build.mjs: N queues q0000… with 2 waiting
jobs each), each size in its own throwaway Redis, our site on daphne (DEBUG off, logged in) and Bull
Board (bench/bullboard.mjs, one shared ioredis connection: a connection per queue would be 10,000
sockets) side by side. Per size:

- warm views: `GET /queues/`, `?page=2` and `?q=q000` (10 queues), alternating with Bull Board's
  `GET /api/queues?page=1&jobsPerPage=10` (capped: a Bull Board request over CAP_SECONDS ends its
  runs, at that size and above); median / p95, bytes, Redis commands per view (INFO commandstats
  around a run of views, less what the background census and watcher did meanwhile, measured alone
  just before). The first view of a fresh process and the views while the census is being filled are
  given apart;
- Redis commands/s with 0 viewers (fresh process), 1 and 50 open overviews with their live socket,
  then 0-60 s and 60-120 s after the last viewer left;
- at the largest size with the unrelated keys: the time until a new queue appears on the overview
  (`?q=<its name>`, polled) and what discovery's SCAN costs a minute, and event → socket latency of
  count cells under 20 events/s on shown queues (Python bullmq adds 10 jobs/s to each of 5 queues of
  page 1; the time from the add to the first push showing the new count: the DOM swap is not in it).

Results: bench/results/<date>-scale.json and .md (bench/results/smoke/ with --short). Nothing here
asserts anything about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench import report
from bench.busy import add_users, staff_clients, viewer_client
from bench.client import HttpClient, Response
from bench.measure import (
    CommandStats,
    Target,
    Viewer,
    ViewerRecord,
    WebSocketViewer,
    summary,
)
from bench.servers import BENCH, BullBoard, OurSite, SiteDatabase, build_data, node, rss_kib
from dashboard.conf import DEFAULTS
from queues.throwaway_redis import ThrowawayRedis

BOARD_LIST = "/api/queues?page=1&jobsPerPage=10"
# The settings the report names with their defaults (what the measured site ran with).
SHOWN_SETTINGS = (
    "OVERVIEW_PAGE_SIZE",
    "OVERVIEW_CENSUS_RATE",
    "OVERVIEW_CENSUS_READS",
    "DISCOVERY_INTERVAL",
)
CAP_SECONDS = 20.0  # one Bull Board request slower than this ends its runs (at that size and above)
QUERY = "q000"  # matches q0000 … q0009 at every size
CENSUS_READS = 250  # OVERVIEW_CENSUS_READS default: unread rows a view reads itself
UNREAD = re.compile(rb"data-census-unread>([\d,]+)")
DISCOVERING = b"data-discovering"  # the overview's "still looking for queues" banner
GOALS = {
    "view_median_ms": 50,
    "view_bytes": 200_000,
    "view_commands": 500,
    "one_viewer_cps": 300,
    "after_leave_per_minute": 10,
    "latency_p50_ms": 250,
}


@dataclass(frozen=True)
class Plan:
    """How long each part runs."""

    short: bool
    sizes: tuple[int, ...]
    junk_keys: int
    window: float  # seconds of each viewers window
    rounds: int  # our timed rounds per size
    board_budget: float  # seconds of Bull Board requests per size, at most
    after_leave: bool  # wait 120 s after the last viewer left
    latency_seconds: float
    latency_queues: int
    latency_adds_per_second: float
    latency_only: bool = False


def say(message: str) -> None:
    """Progress on stdout, flushed."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def short(count: int) -> str:
    """10000 → 10k, 1000000 → 1m."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count >= 1000 and count % 1000 == 0:
        return f"{count // 1000}k"
    return str(count)


class Stats(CommandStats):
    """INFO commandstats with the time Redis spent per command (usec) as well."""

    def full(self) -> dict[str, tuple[int, int]]:
        """(calls, usec) per command so far."""
        stats: dict[str, Any] = self.client.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): (int(value["calls"]), int(value["usec"]))
            for name, value in stats.items()
        }


def window_delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Calls and usec per command between two full snapshots (less the INFO of the first)."""
    calls = CommandStats.delta(
        {name: value[0] for name, value in before.items()}, {name: value[0] for name, value in after.items()}
    )
    usec = {name: after[name][1] - before.get(name, (0, 0))[1] for name in calls}
    return {"calls": calls, "usec": usec, "total": sum(calls.values())}


def fill_junk(url: str, count: int) -> float:
    """`count` unrelated string keys (cache:item:<n>) with DEBUG POPULATE; seconds it took."""
    started = time.monotonic()
    client = redis.Redis.from_url(url)
    try:
        client.execute_command("DEBUG", "POPULATE", count, "cache:item", 64)  # type: ignore[no-untyped-call]
    finally:
        client.close()
    return time.monotonic() - started


def cell_id(name: str, state: str = "waiting") -> str:
    """The id of an overview count cell (dashboard.live.fragments.count_dom_id)."""
    digest = hashlib.sha1(f"default\nbull:{name}".encode()).hexdigest()[:12]
    return f"count-{digest}-{state}"


def unread_of(body: bytes) -> int:
    """The page's "N queues are not read yet" figure (0 when the note is absent)."""
    found = UNREAD.search(body)
    return int(found.group(1).replace(b",", b"")) if found else 0


class Size:
    """One data set with our site (and Bull Board) over it."""

    def __init__(self, plan: Plan, workdir: Path, database: SiteDatabase, users: list[str], queues: int):
        self.plan = plan
        self.workdir = workdir
        self.database = database
        self.users = users
        self.queues = queues
        self.label = f"{queues:,}"
        self.stack = ExitStack()
        self.log = workdir / f"scale-{queues}.log"

    def start(self) -> Size:
        """Redis, its data, Bull Board."""
        self.redis = self.stack.enter_context(ThrowawayRedis(extra_args=("--enable-debug-command", "local")))
        say(f"{self.queues:,} queues: building with Node BullMQ (2 waiting jobs each)")
        self.built = build_data(
            self.redis.url, {"kind": "overview", "queues": self.queues, "waiting": 2}, self.log
        )
        say(f"{self.queues:,} queues: built in {self.built['seconds']:.1f} s, {self.built['keys']:,} keys")
        names = self.workdir / f"scale-{self.queues}-queues.json"
        names.write_text(json.dumps(self.built["queues"]))
        self.board = self.stack.enter_context(BullBoard(self.log, self.redis.url, names, "shared"))
        self.stats = Stats(self.redis.url)
        self.stack.callback(self.stats.close)
        return self

    def serve(self) -> OurSite:
        """A fresh daphne (a new process: empty census, discovery not run yet)."""
        site = OurSite(self.log, self.database, self.redis.url).__enter__()
        self.site = site
        self.clients = staff_clients(site.base, self.users)
        return site

    def close(self) -> None:
        """Stop everything."""
        self.stack.close()


def timed(target: Target, stats: Stats) -> tuple[Response, int]:
    """One request and the Redis commands around it (background included)."""
    before = stats.full()
    response = target.fetch()
    return response, window_delta(before, stats.full())["total"]


def background_rate(stats: Stats, seconds: float) -> float:
    """Redis commands/s with nothing asked (the census and watcher leases running)."""
    before = stats.full()
    started = time.monotonic()
    time.sleep(seconds)
    delta = window_delta(before, stats.full())
    return float(delta["total"]) / (time.monotonic() - started)


# The monitor's throughput sampler (dashboard/monitor.py, once a minute from the process's first
# request, viewed or not) reads 200 queues with sample_counts.lua, whose reads include ~6 TYPE calls a
# queue; the overview's own reads (counts.lua) call no TYPE. A second with this many TYPE calls is the
# sampler's tick.
SAMPLER_TYPE_CALLS = 300


def sampler_second(entry: dict[str, Any]) -> bool:
    """True for a second of the throughput sampler's tick (by its TYPE calls)."""
    return int(entry.get("type", entry.get("top", {}).get("type", 0))) >= SAMPLER_TYPE_CALLS


def per_second(stats: Stats, start: float, seconds: float) -> list[dict[str, Any]]:
    """Commands in each second from `start` (INFO every second); the seconds of the throughput
    sampler's tick are flagged `sampler`."""
    series: list[dict[str, Any]] = []
    previous = stats.full()
    for second in range(1, int(seconds) + 1):
        time.sleep(max(0.0, start + second - time.monotonic()))
        now = stats.full()
        delta = window_delta(previous, now)
        previous = now
        top = sorted(delta["calls"].items(), key=lambda item: -item[1])[:4]
        entry = {
            "t": second,
            "commands": delta["total"],
            "type": delta["calls"].get("type", 0),
            "top": dict(top),
        }
        entry["sampler"] = sampler_second(entry)
        series.append(entry)
    return series


def series_summary(series: list[dict[str, Any]]) -> dict[str, Any]:
    """Total rate, and the rate without the seconds of the throughput sampler's tick."""
    seconds = len(series) or 1
    total = sum(entry["commands"] for entry in series)
    sampler = [entry for entry in series if entry["sampler"]]
    rest = [entry for entry in series if not entry["sampler"]]
    rest_total = sum(entry["commands"] for entry in rest)
    busiest = max(series, key=lambda entry: entry["commands"]) if series else None
    return {
        "seconds": len(series),
        "commands": total,
        "commands_per_second": round(total / seconds, 2),
        "commands_per_minute": round(total * 60 / seconds, 1),
        "sampler_seconds": len(sampler),
        "sampler_commands": sum(entry["commands"] for entry in sampler),
        "without_sampler_per_second": round(rest_total / max(1, len(rest)), 2),
        "without_sampler_per_minute": round(rest_total * 60 / max(1, len(rest)), 1),
        "busiest_second": busiest,
    }


def open_window(size: Size, count: int, seconds: float) -> dict[str, Any]:
    """`count` open overviews with their sockets for `seconds`, INFO every second."""
    record = ViewerRecord()
    make = socket_factory(size)
    viewers = [make(index, count) for index in range(count)]
    opening = [threading.Thread(target=viewer.open, args=(record,), daemon=True) for viewer in viewers]
    for thread in opening:
        thread.start()
    for thread in opening:
        thread.join(timeout=600)
    time.sleep(2.0)
    start = time.monotonic()
    runners = [
        threading.Thread(target=viewer.run, args=(start, start + seconds, record), daemon=True)
        for viewer in viewers
    ]
    for thread in runners:
        thread.start()
    series = per_second(size.stats, start, seconds)
    for thread in runners:
        thread.join(timeout=600)
    return {
        "viewers": count,
        **series_summary(series),
        "messages": record.messages,
        "errors": len(record.errors),
        "first_errors": record.errors[:3],
        "page_loads": summary(record.seconds),
        "series": series,
    }


def commands_per_view(stats: Stats, target: Target, requests: int, background: float) -> dict[str, Any]:
    """Redis commands of single requests (INFO commandstats right before and after each).

    The background (census steps every second, the watcher's resync every 10 s) lands in some of
    them: the median of single requests leaves it out; the mean less the background rate is given too.
    """
    counts: list[int] = []
    calls: dict[str, int] = {}
    elapsed = 0.0
    for _ in range(requests):
        before = stats.full()
        started = time.monotonic()
        target.fetch()
        elapsed += time.monotonic() - started
        delta = window_delta(before, stats.full())
        counts.append(delta["total"])
        for name, count in delta["calls"].items():
            calls[name] = calls.get(name, 0) + count
        time.sleep(0.05)
    mean = statistics.fmean(counts)
    top = sorted(calls.items(), key=lambda item: -item[1])[:8]
    return {
        "requests": requests,
        "per_request": counts,
        "commands_per_request": statistics.median(counts),
        "mean_per_request": round(mean, 1),
        "background_per_second": round(background, 1),
        "mean_less_background": round(max(0.0, mean - background * elapsed / requests), 1),
        "by_command": {name: round(count / requests, 1) for name, count in top},
    }


def views(size: Size, board: bool) -> dict[str, Any]:
    """Cold view, census filling, warm views (alternating with Bull Board), commands per view."""
    plan, stats, me = size.plan, size.stats, size.clients[0]
    html = Target("ours-html", "ours", me.clone(), "/queues/")
    page2 = Target("ours-page2", "ours", me.clone(), "/queues/?page=2")
    query = Target("ours-q", "ours", me.clone(), f"/queues/?q={QUERY}")
    out: dict[str, Any] = {}
    # The first view of a fresh process: discovery's first SCAN and up to CENSUS_READS rows read; it
    # starts the process's monitor, whose throughput sampler ticks then and every minute after.
    response, commands = timed(html, stats)
    out["first_view"] = {
        "ms": round(response.seconds * 1000, 1),
        "bytes": len(response.body),
        "commands": commands,
        "unread_after": unread_of(response.body),
    }
    say(
        f"{size.label}: first view {response.seconds * 1000:.0f} ms, {commands:,} commands, "
        f"{len(response.body):,} bytes, {unread_of(response.body):,} queues unread"
    )
    # Views until discovery's first pass is over (beside a million other keys it outlasts the first
    # views: queues it finds meanwhile are new rows, and each view then orders the list anew) and the
    # census has read every queue (each view reads up to CENSUS_READS unread rows).
    filling: list[float] = []
    fill_commands: list[int] = []
    unread = unread_of(response.body)
    looking = DISCOVERING in response.body
    limit = math.ceil(size.queues / CENSUS_READS) + 5
    deadline = time.monotonic() + 300.0
    while (unread and len(filling) < limit) or (looking and time.monotonic() < deadline):
        if not unread:
            time.sleep(0.5)  # only discovery is left: wait for it rather than time views meanwhile
        response, commands = timed(html, stats)
        filling.append(response.seconds)
        fill_commands.append(commands)
        unread = unread_of(response.body)
        looking = DISCOVERING in response.body
    out["filling"] = {
        "views": len(filling),
        **summary(filling),
        "commands_per_view": round(statistics.fmean(fill_commands), 1) if fill_commands else 0,
        "unread_after": unread,
        "still_discovering": looking,
    }
    say(
        f"{size.label}: {len(filling)} more views until the census had read every queue "
        f"(median {out['filling'].get('median_ms', 0):.0f} ms, {out['filling']['commands_per_view']:,.0f} "
        f"commands each; {unread} unread left)"
    )
    # Warm views, alternating; Bull Board every k-th round within its time budget.
    ours = [html, page2, query]
    for target in ours:
        target.fetch()
    bb = Target("bullboard", "bullboard", HttpClient(size.board.base), BOARD_LIST) if board else None
    board_times: list[float] = []
    board_info: dict[str, Any] = {"ran": board}
    every = 0
    if bb is not None:
        say(f"{size.label}: Bull Board probe request")
        probe = bb.fetch()
        board_info["probe_ms"] = round(probe.seconds * 1000, 1)
        board_info["bytes"] = len(probe.body)
        board_info["queues_listed"] = len(json.loads(probe.body).get("queues", []))
        if probe.seconds > CAP_SECONDS:
            board_info["capped"] = f"one request took {probe.seconds:.1f} s > {CAP_SECONDS:g} s: no more runs"
            bb = None
        else:
            wanted = max(3, min(plan.rounds, int(plan.board_budget / max(probe.seconds, 0.001))))
            every = max(1, plan.rounds // wanted)
    times: dict[str, list[float]] = {target.label: [] for target in ours}
    last: dict[str, Response] = {}
    for index in range(plan.rounds):
        for target in ours:
            response = target.fetch()
            times[target.label].append(response.seconds)
            last[target.label] = response
        if bb is not None and index % every == 0:
            response = bb.fetch()
            board_times.append(response.seconds)
            if response.seconds > CAP_SECONDS:
                board_info["capped"] = f"a request took {response.seconds:.1f} s > {CAP_SECONDS:g} s: stopped"
                bb = None
    out["warm"] = {
        target.label: {
            "path": target.path,
            **summary(times[target.label]),
            "bytes": len(last[target.label].body),
            "unread": unread_of(last[target.label].body),
            "rows": last[target.label].body.count(b'data-state="waiting"'),  # waiting cells: one a row
        }
        for target in ours
    }
    if board_times:
        board_info["timing"] = summary(board_times)
    # Commands per view: the background first (census + watcher leases running), then each target.
    background = background_rate(stats, 10.0 if not plan.short else 2.0)
    out["background_per_second_while_viewed"] = round(background, 1)
    out["commands"] = {target.label: commands_per_view(stats, target, 15, background) for target in ours}
    if bb is not None and board_times:
        out["commands"]["bullboard"] = commands_per_view(stats, bb, 2, background)
    out["bullboard"] = board_info
    for target in ours:
        w, c = out["warm"][target.label], out["commands"][target.label]
        say(
            f"{size.label}: {target.label:10} median {w['median_ms']:7.1f} ms, p95 {w['p95_ms']:7.1f} ms, "
            f"{w['bytes']:>9,} bytes, {c['commands_per_request']:7,.1f} commands "
            f"(median of single views; mean {c['mean_per_request']:,.1f}, background {background:,.1f}/s)"
        )
    if board_times:
        say(
            f"{size.label}: bullboard  median {board_info['timing']['median_ms']:7.1f} ms "
            f"({len(board_times)} requests), {board_info['bytes']:,} bytes, "
            f"{out['commands'].get('bullboard', {}).get('commands_per_request', 0):,.0f} commands"
        )
    elif board:
        say(f"{size.label}: Bull Board: {board_info.get('capped')}")
    return out


def socket_factory(size: Size) -> Callable[[int, int], Viewer]:
    """An overview tab with its live socket, spread over the staff users (30 sockets a user at most)."""
    url = size.site.base.replace("http://", "ws://", 1) + "/queues/ws/"

    def make(index: int, count: int) -> Viewer:
        return WebSocketViewer(Target("ours", "ours", viewer_client(size.clients, index), "/queues/"), url)

    return make


def rate_windows(size: Size, idle: dict[str, Any]) -> dict[str, Any]:
    """Commands/s with 1 and 50 open overviews, then 0-60 and 60-120 s after the last left."""
    plan = size.plan
    out: dict[str, Any] = {"idle_fresh": idle}
    for count in (1, 50):
        say(f"{size.label}: {count} open overview(s) with live socket for {plan.window:g} s")
        window = open_window(size, count, plan.window)
        out[f"viewers_{count}"] = window
        say(
            f"{size.label}: {count} viewer(s): {window['commands_per_second']:,.1f} commands/s, "
            f"{window['without_sampler_per_second']:,.1f} without the sampler's tick "
            f"({window['sampler_commands']:,} commands in {window['sampler_seconds']} s); "
            f"{window['messages']} messages, {window['errors']} errors"
        )
    left = time.monotonic()
    length = 120.0 if plan.after_leave else plan.window
    series = per_second(size.stats, left, length)
    parts = [(0, 60), (60, 120)] if plan.after_leave else [(0, int(length))]
    for first, last in parts:
        key = f"after_leave_{first}_{last}s"
        out[key] = {**series_summary(series[first:last]), "series": series[first:last]}
        say(
            f"{size.label}: {key}: {out[key]['commands']:,} commands "
            f"({out[key]['commands_per_minute']:,.1f} a minute; without the sampler's tick "
            f"{out[key]['without_sampler_per_minute']:,.1f} a minute; busiest second "
            f"{out[key]['busiest_second']})"
        )
    return out


def idle_fresh(size: Size) -> dict[str, Any]:
    """Commands/s of a fresh process nobody viewed yet."""
    series = per_second(size.stats, time.monotonic(), 5.0)
    window = {**series_summary(series), "series": series}
    say(f"{size.label}: 0 viewers (fresh process): {window['commands_per_second']:,.1f} commands/s")
    return window


def add_queue_node(url: str, name: str) -> None:
    """Create a queue the way an application would: Node BullMQ's Queue.add."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    connection = json.dumps({"host": "127.0.0.1", "port": port})
    script = (
        "import { Queue } from 'bullmq';"
        f"const q = new Queue({json.dumps(name)}, {{ connection: {connection} }});"
        "await q.add('first', { n: 1 }); await q.close();"
    )
    subprocess.run([node(), "--input-type=module", "-e", script], cwd=BENCH, check=True, timeout=60)


def discovery(size: Size) -> dict[str, Any]:
    """Time until a new queue is on the overview, and SCAN's cost a minute, with one open overview."""
    seconds = 65.0 if not size.plan.short else 40.0
    name = "zz-new-tenant"
    make = socket_factory(size)
    viewer = make(0, 1)
    record = ViewerRecord()
    viewer.open(record)
    before = size.stats.full()
    started = time.monotonic()
    holder = threading.Thread(target=viewer.run, args=(started, started + seconds, record), daemon=True)
    holder.start()
    time.sleep(2.0)
    poller = Target("ours-new", "ours", size.clients[0].clone(), f"/queues/?q={name}")
    add_queue_node(size.redis.url, name)
    added = time.monotonic()
    appeared: float | None = None
    polls = 0
    while time.monotonic() - added < seconds - 4:
        polls += 1
        if f"bull:{name}".encode() in poller.fetch().body:
            appeared = time.monotonic()
            break
        time.sleep(0.5)
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    delta = window_delta(before, size.stats.full())
    elapsed = time.monotonic() - started
    holder.join(timeout=30)
    scan_calls, scan_usec = delta["calls"].get("scan", 0), delta["usec"].get("scan", 0)
    out = {
        "window_seconds": round(elapsed, 1),
        "keys_in_redis": size.stats.client.dbsize(),
        "seconds_until_on_overview": round(appeared - added, 1) if appeared else None,
        "polls": polls,
        "scan_calls_per_minute": round(scan_calls * 60 / elapsed, 1),
        "scan_redis_ms_per_minute": round(scan_usec / 1000 * 60 / elapsed, 1),
        "scan_usec_per_call": round(scan_usec / scan_calls, 1) if scan_calls else None,
        "hmget_per_minute": round(delta["calls"].get("hmget", 0) * 60 / elapsed, 1),
        "all_commands_per_second": round(delta["total"] / elapsed, 1),
    }
    say(
        f"{size.label}: new queue on the overview after {out['seconds_until_on_overview']} s; SCAN "
        f"{out['scan_calls_per_minute']:,.0f} calls "
        f"({out['scan_redis_ms_per_minute']:,.0f} ms of Redis time) a minute"
    )
    return out


def latency(size: Size) -> dict[str, Any]:
    """Event → socket push of count cells, with adds at a steady rate on shown queues of page 1."""
    from websockets.sync.client import connect

    plan = size.plan
    names = [f"q{index:04d}" for index in range(plan.latency_queues)]
    ids = {name: cell_id(name) for name in names}
    patterns = {
        name: re.compile(rf'id="{ids[name]}"[^>]*>\s*<a[^>]*>([\d,]+)</a>'.encode()) for name in names
    }
    page = size.clients[0].clone()
    body = page.get("/queues/").body
    shown = [name for name in names if ids[name].encode() in body]
    if len(shown) < len(names):
        return {"skipped": f"only {shown} of {names} are on page 1"}
    start_counts = {name: int(patterns[name].search(body).group(1).replace(b",", b"")) for name in names}  # type: ignore[union-attr]
    cookies = "; ".join(f"{key}={value}" for key, value in page.cookies.items())
    socket = connect(
        size.site.base.replace("http://", "ws://", 1) + "/queues/ws/",
        additional_headers={"Cookie": cookies, "Origin": page.base},
        open_timeout=60,
    )
    seen: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
    messages = 0
    stop = threading.Event()

    def receive() -> None:
        nonlocal messages
        while not stop.is_set():
            try:
                raw = socket.recv(timeout=0.5)
            except TimeoutError:
                continue
            except Exception:
                return
            at = time.monotonic()
            messages += 1
            data = raw.encode() if isinstance(raw, str) else raw
            for name in names:
                found = patterns[name].search(data)
                if found:
                    seen[name].append((at, int(found.group(1).replace(b",", b""))))

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    time.sleep(2.0)
    sent: dict[str, list[float]] = {name: [] for name in names}
    before = size.stats.full()
    started = time.monotonic()
    asyncio.run(_produce(size.redis.url, names, plan.latency_adds_per_second, plan.latency_seconds, sent))
    produced_for = time.monotonic() - started
    time.sleep(2.0)
    delta = window_delta(before, size.stats.full())
    elapsed = time.monotonic() - started
    stop.set()
    receiver.join(timeout=5)
    socket.close()
    page.close()
    latencies: list[float] = []
    missed = 0
    for name in names:
        for index, at in enumerate(sent[name]):
            expected = start_counts[name] + index + 1
            first = next((when for when, value in seen[name] if value >= expected and when >= at), None)
            if first is None:
                missed += 1
            else:
                latencies.append(first - at)
    adds = sum(len(times) for times in sent.values())
    # What one add leaves in the events stream (BullMQ: `added` and `waiting`, so 2 events an add).
    tail: Any = size.stats.client.xrevrange(f"bull:{names[0]}:events", count=4)
    event_names = [bytes(fields.get(b"event", b"")).decode() for _id, fields in tail or []]
    out = {
        "queues": names,
        "adds_per_second_per_queue": round(adds / len(names) / produced_for, 2),
        "events_per_second_per_queue": round(2 * adds / len(names) / produced_for, 2),
        "seconds": round(produced_for, 1),
        "last_events": event_names,
        "messages": messages,
        "messages_per_second": round(messages / elapsed, 1),
        "latency": summary(latencies),
        "missed": missed,
        "redis_commands_per_second_all": round(delta["total"] / elapsed, 1),
        "top_commands": dict(sorted(delta["calls"].items(), key=lambda item: -item[1])[:8]),
    }
    lat = out["latency"]
    say(
        f"{size.label}: event → socket under {out['events_per_second_per_queue']} events/s on {len(names)} "
        f"queues: p50 {lat.get('median_ms', 0):.0f} ms, p95 {lat.get('p95_ms', 0):.0f} ms ({missed} missed), "
        f"{out['redis_commands_per_second_all']:,.0f} Redis commands/s in all"
    )
    return out


WATCH_CELLS = """(ids) => {
  window.__changes = [];
  for (const id of ids) {
    const row = document.getElementById(id).closest("tr");
    new MutationObserver(() => {
      const cell = document.getElementById(id);
      const at = performance.timeOrigin + performance.now();
      window.__changes.push([id, at, cell ? cell.textContent.trim() : ""]);
    }).observe(row, { childList: true, subtree: true, characterData: true });
  }
}"""
SOCKET_OPEN = """() => {
  const socket = document.querySelector("[data-live-socket]");
  const wrapper = socket && socket["htmx-internal-data"] && socket["htmx-internal-data"].webSocket;
  return !!(wrapper && wrapper.socket && wrapper.socket.readyState === 1);
}"""


def dom_latency(size: Size) -> dict[str, Any]:
    """Event → DOM in Chromium: the overview's count cells of shown queues under the same steady adds."""
    from tests.support.chromium import CHROMIUM

    if not Path(CHROMIUM).exists():
        return {"skipped": f"no {CHROMIUM}"}
    return asyncio.run(_dom_latency(size))


async def _dom_latency(size: Size) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from bench.servers import PASSWORD, USERNAME
    from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

    plan = size.plan
    names = [f"q{index:04d}" for index in range(plan.latency_queues)]
    ids = [cell_id(name) for name in names]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            await page.goto(size.site.base + "/accounts/login/?next=/queues/", timeout=60000)
            await page.fill("input[name=username]", USERNAME)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/queues/", timeout=60000)
            await page.wait_for_function(SOCKET_OPEN, timeout=30000)
            await asyncio.sleep(2.0)
            found = await page.evaluate("(ids) => ids.map((id) => !!document.getElementById(id))", ids)
            if not all(found):
                return {"skipped": f"not all of {names} are on page 1"}
            start = {
                name: int((await page.text_content(f"#{cell}") or "0").strip().replace(",", ""))
                for name, cell in zip(names, ids, strict=True)
            }
            await page.evaluate(WATCH_CELLS, ids)
            sent: dict[str, list[float]] = {name: [] for name in names}
            wall: dict[str, list[float]] = {name: [] for name in names}
            await _produce(
                size.redis.url, names, plan.latency_adds_per_second, plan.latency_seconds, sent, wall
            )
            await asyncio.sleep(2.0)
            changes = await page.evaluate("() => window.__changes")
        finally:
            await browser.close()
    latencies: list[float] = []
    missed = 0
    for name, cell in zip(names, ids, strict=True):
        seen = [(at, text) for changed, at, text in changes if changed == cell]
        for index, sent_ms in enumerate(wall[name]):
            expected = start[name] + index + 1
            first = next(
                (
                    at
                    for at, text in seen
                    if at >= sent_ms - 5
                    and text.replace(",", "").isdigit()
                    and int(text.replace(",", "")) >= expected
                ),
                None,
            )
            if first is None:
                missed += 1
            else:
                latencies.append((first - sent_ms) / 1000)
    timing = summary(latencies)
    out = {
        "queues": names,
        "adds": sum(len(times) for times in wall.values()),
        "latency": timing,
        "missed": missed,
    }
    say(
        f"{size.label}: event → DOM (Chromium) p50 {timing.get('median_ms', 0):.0f} ms, "
        f"p95 {timing.get('p95_ms', 0):.0f} ms ({missed} missed)"
    )
    return out


async def _produce(
    url: str,
    names: list[str],
    rate: float,
    seconds: float,
    sent: dict[str, list[float]],
    wall: dict[str, list[float]] | None = None,
) -> None:
    """Python bullmq adds `rate` jobs/s to each queue on a fixed schedule (each add: 2 stream events)."""
    from bullmq import Queue

    queues = {name: Queue(name, {"connection": url}) for name in names}
    try:
        started = time.monotonic()
        total = int(rate * len(names) * seconds)
        for index in range(total):
            name = names[index % len(names)]
            due = started + index / (rate * len(names))
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[name].append(time.monotonic())
            if wall is not None:
                wall[name].append(time.time() * 1000)
            await queues[name].add("tick", {"i": index})
    finally:
        for queue in queues.values():
            await queue.close()


def measure_size(size: Size, label: str, board: bool, extra: bool) -> dict[str, Any]:
    """Everything of one size on a fresh daphne."""
    size.label = label
    site = size.serve()
    try:
        if size.plan.latency_only:
            html = Target("ours-html", "ours", size.clients[0].clone(), "/queues/")
            # Until discovery's first pass is done and the census has read every queue (page 1 is then
            # q0000…, all of them needing attention by their backlog).
            for _ in range(math.ceil(size.queues / CENSUS_READS) + 60):
                body = html.fetch().body
                if not unread_of(body) and cell_id("q0000").encode() in body:
                    break
                time.sleep(0.5)
            return {
                "queues": size.queues,
                "label": label,
                "latency": latency(size),
                "dom_latency": dom_latency(size),
            }
        idle = idle_fresh(size)
        result: dict[str, Any] = {"queues": size.queues, "label": label, **views(size, board)}
        result["rates"] = rate_windows(size, idle)
        if extra:
            result["discovery"] = discovery(size)
            result["latency"] = latency(size)
            result["dom_latency"] = dom_latency(size)
        result["rss_kib_ours"] = rss_kib(site.pid)
        result["rss_kib_bullboard"] = rss_kib(size.board.pid)
        return result
    finally:
        for client in size.clients:
            client.close()
        site.stop()


def verdict(ok: bool | None) -> str:
    """met / not met."""
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def markdown(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The summary."""
    v = meta["versions"]
    lines = [
        f"# Scale scenario, {meta['date']} (`bench/scale.py`{' --short' if meta['short'] else ''})",
        "",
        f"Dashboard at `{meta['revision']['commit']}`"
        + (" with uncommitted changes" if meta["revision"]["uncommitted_changes_in_app"] else "")
        + f"; {meta['machine']['nproc']} cores ({meta['machine']['cpu_model']}), shared with other work; "
        f"redis-server {v['redis-server']}, bullmq {v['bullmq']} (data), "
        f"@bull-board/api {v['@bull-board/api']}; "
        f"{meta['elapsed_seconds'] / 60:.1f} min in all.",
        "",
        "N queues q0000… with 2 waiting jobs each (Node BullMQ `addBulk`), each size in its own Redis; our "
        "site on daphne (DEBUG off, default settings: "
        + ", ".join(f"{name} {DEFAULTS[name]}" for name in SHOWN_SETTINGS)
        + "); Bull Board with one shared ioredis connection "
        f"(a connection per queue would be N sockets), capped at {CAP_SECONDS:g} s a request. Times are "
        "median / p95 ms over a keep-alive connection, alternating; commands per view are the median of 15 "
        "single views (INFO commandstats right before and after each), which leaves out the background "
        "(census, watcher) that lands in some of them.",
        "",
        "## Views",
        "",
        "| queues | first view of a fresh process | views until the census read all | `/queues/` | "
        "`?page=2` | `?q=q000` (10 queues) | Bull Board `/api/queues` |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(entry: dict[str, Any], commands: dict[str, Any] | None) -> str:
        text = f"{entry['median_ms']:.1f} / {entry['p95_ms']:.1f} ms, {entry['bytes'] / 1024:,.0f} KiB"
        if commands:
            text += f", {commands['commands_per_request']:,.0f} cmds"
        return text

    for data in results:
        w, c, bb = data["warm"], data["commands"], data["bullboard"]
        first, filling = data["first_view"], data["filling"]
        if bb.get("timing"):
            board = (
                f"{bb['timing']['median_ms']:,.0f} / {bb['timing']['p95_ms']:,.0f} ms "
                f"({bb['timing']['n']} req.), {bb['bytes'] / 1024:,.0f} KiB"
                + (f", {c['bullboard']['commands_per_request']:,.0f} cmds" if "bullboard" in c else "")
            )
        elif bb.get("capped"):
            board = f"capped: {bb['capped']}"
        else:
            board = "not run"
        lines.append(
            f"| {data['label']} | {first['ms']:,.0f} ms, {first['commands']:,} cmds | "
            f"{filling['views']} views, "
            f"median {filling.get('median_ms', 0):,.0f} ms, {filling['commands_per_view']:,.0f} cmds each | "
            f"{cell(w['ours-html'], c['ours-html'])} | {cell(w['ours-page2'], c['ours-page2'])} | "
            f"{cell(w['ours-q'], c['ours-q'])} | {board} |"
        )
    lines += [
        "",
        "## Redis commands/s",
        "",
        "INFO commandstats every second. The process's monitor records throughput samples once a minute "
        "from its first request on (dashboard.monitor, THROUGHPUT SAMPLING on by default), whoever "
        'views; the seconds of that tick are told apart ("without tick").',
        "",
        "| queues | 0 viewers (fresh) | 1 open overview: all / without tick | 50 open overviews: all / "
        "without tick | 0-60 s after the last left, per s | 60-120 s after, per minute: all / without tick "
        "(tick's commands) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for data in results:
        r = data["rates"]
        one, many = r["viewers_1"], r["viewers_50"]
        refused = f" ({50 - many['errors']} of 50 sockets open)" if many["errors"] else ""
        a = r.get("after_leave_0_60s")
        b = r.get("after_leave_60_120s")
        lines.append(
            f"| {data['label']} | {r['idle_fresh']['commands_per_second']:,.1f} | "
            f"{one['commands_per_second']:,.1f} / {one['without_sampler_per_second']:,.1f} | "
            f"{many['commands_per_second']:,.1f} / {many['without_sampler_per_second']:,.1f}{refused} | "
            f"{a['commands_per_second'] if a else '—'} | "
            + (
                f"{b['commands_per_minute']:,.0f} / {b['without_sampler_per_minute']:,.0f} "
                f"({b['sampler_commands']:,}) |"
                if b
                else "— |"
            )
        )
    lines += [
        "",
        "Opening 50 overviews at once (each loads the page, then opens its socket): page loads median "
        + ", ".join(
            f"{data['rates']['viewers_50']['page_loads'].get('median_ms', 0) / 1000:.1f} s at {data['label']}"
            for data in results
        )
        + ". Sockets that failed to open: "
        + ", ".join(
            f"{data['rates']['viewers_50']['errors']} at {data['label']}"
            + (
                f" ({data['rates']['viewers_50']['first_errors'][0]})"
                if data["rates"]["viewers_50"]["first_errors"]
                else ""
            )
            for data in results
        )
        + ".",
    ]
    extra = [data for data in results if data.get("discovery")]
    for data in extra:
        d, lat = data["discovery"], data["latency"]
        lines += [
            "",
            f"## Discovery and live latency at {data['label']}",
            "",
            f"- A new queue (Node BullMQ `Queue.add`) was on the overview (`?q=` polled every 0.5 s) after "
            f"**{d['seconds_until_on_overview']} s** (DISCOVERY_INTERVAL 30 s), with "
            f"{d['keys_in_redis']:,} keys "
            "in Redis and one overview open.",
            f"- Discovery's SCAN: {d['scan_calls_per_minute']:,.0f} calls a minute, "
            f"{d['scan_redis_ms_per_minute']:,.0f} ms of Redis time a minute "
            f"({d['scan_usec_per_call']} µs a call); "
            f"{d['hmget_per_minute']:,.0f} HMGET a minute (confirming new candidates).",
        ]
        if "skipped" in lat:
            lines.append(f"- Event → socket latency: skipped ({lat['skipped']}).")
        else:
            lines.append(
                f"- Event → socket latency (Python bullmq adds {lat['adds_per_second_per_queue']}/s "
                "to each of "
                f"{len(lat['queues'])} queues of page 1 = {lat['events_per_second_per_queue']} events/s a "
                f"queue; from the add to the first push showing the new waiting count, one socket, the DOM "
                f"swap not included): p50 **{lat['latency'].get('median_ms', 0):.0f} ms**, p95 "
                f"{lat['latency'].get('p95_ms', 0):.0f} ms, {lat['missed']} adds never shown; "
                f"{lat['messages_per_second']} messages/s; {lat['redis_commands_per_second_all']:,.0f} Redis "
                "commands/s in all (the producer's included)."
            )
        dom = data.get("dom_latency")
        if dom and "latency" in dom:
            lines.append(
                f"- Event → DOM in Chromium (the same adds, the overview's count cells watched with a "
                f"MutationObserver): p50 **{dom['latency'].get('median_ms', 0):.0f} ms**, p95 "
                f"{dom['latency'].get('p95_ms', 0):.0f} ms, {dom['missed']} adds never shown."
            )
        elif dom:
            lines.append(f"- Event → DOM in Chromium: skipped ({dom.get('skipped')}).")
    lines += ["", "## Goals of issue 17 (at 5,000 and 10,000 queues)", ""]
    for data in results:
        if data["queues"] < 5000:
            continue
        w, c, r = data["warm"]["ours-html"], data["commands"]["ours-html"], data["rates"]
        b = r.get("after_leave_60_120s")
        lines += [
            f"- {data['label']}: warm overview median {w['median_ms']:.1f} ms ≤ 50 — "
            f"{verdict(w['median_ms'] <= GOALS['view_median_ms'])}; HTML {w['bytes']:,} bytes ≤ 200 KB — "
            f"{verdict(w['bytes'] <= GOALS['view_bytes'])}; {c['commands_per_request']:,.0f} commands "
            "per view ≤ 500 — "
            f"{verdict(c['commands_per_request'] <= GOALS['view_commands'])}; one open overview "
            f"{r['viewers_1']['commands_per_second']:,.1f} commands/s ≤ 300 — "
            f"{verdict(r['viewers_1']['commands_per_second'] <= GOALS['one_viewer_cps'])} (without the "
            f"sampler's tick {r['viewers_1']['without_sampler_per_second']:,.1f}); "
            "60-120 s after the "
            f"last viewer left {b['commands_per_minute'] if b else '—'} commands a minute ≤ 10 — "
            f"{verdict(b['commands_per_minute'] <= GOALS['after_leave_per_minute'] if b else None)}"
            + (
                f" (without the throughput sampler's tick {b['without_sampler_per_minute']:,.1f} — "
                f"{verdict(b['without_sampler_per_minute'] <= GOALS['after_leave_per_minute'])})"
                if b
                else ""
            )
            + "."
        ]
        dom = data.get("dom_latency") or {}
        if "latency" in dom:
            p50 = dom["latency"].get("median_ms")
            lines.append(
                f"- {data['label']}: event → DOM p50 {p50:.0f} ms ≤ 250 — "
                f"{verdict(p50 <= GOALS['latency_p50_ms'] if p50 is not None else None)} (Chromium)."
            )
        elif data.get("latency") and "latency" in data["latency"]:
            p50 = data["latency"]["latency"].get("median_ms")
            lines.append(
                f"- {data['label']}: event → socket p50 {p50:.0f} ms ≤ 250 — "
                f"{verdict(p50 <= GOALS['latency_p50_ms'] if p50 is not None else None)} (socket, not DOM)."
            )
    return "\n".join(lines) + "\n"


def latency_markdown(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The summary of a --latency-only run."""
    lines = [
        f"# Event → socket and event → DOM latency, {meta['date']} (`bench/scale.py --latency-only`)",
        "",
        f"Dashboard at `{meta['revision']['commit']}`; Python bullmq adds "
        f"{meta['plan']['latency_adds_per_second']:g} jobs/s (20 events/s) to each of the first "
        f"{meta['plan']['latency_queues']} queues of page 1 for {meta['plan']['latency_seconds']:g} s; "
        "latency from just before an add to its count in the socket's "
        "push (Python client) and in the overview's cell (Chromium, MutationObserver).",
        "",
        "| queues | socket p50 / p95 ms | DOM p50 / p95 ms | missed (socket / DOM) |",
        "|---|---:|---:|---:|",
    ]
    for data in results:
        sock, dom = data["latency"], data["dom_latency"]
        sl, dl = sock.get("latency", {}), dom.get("latency", {})
        lines.append(
            f"| {data['label']} | {sl.get('median_ms', 0):.0f} / {sl.get('p95_ms', 0):.0f} | "
            f"{dl.get('median_ms', 0):.0f} / {dl.get('p95_ms', 0):.0f} | "
            f"{sock.get('missed', '—')} / {dom.get('missed', dom.get('skipped', '—'))} |"
        )
    return "\n".join(lines) + "\n"


NOTES = "<!-- notes: kept by --report-only -->"


def rerender(path: Path) -> int:
    """The .md of a stored result again (seconds flagged as the sampler's by its TYPE calls)."""
    data = json.loads(path.read_text())
    for result in data["results"]:
        for window in result["rates"].values():
            if isinstance(window, dict) and "series" in window:
                for entry in window["series"]:
                    entry["sampler"] = sampler_second(entry)
                window.update(series_summary(window["series"]))
    path.write_text(json.dumps(data, indent=2) + "\n")
    target = path.with_suffix(".md")
    notes = ""
    if target.exists() and NOTES in target.read_text():
        notes = target.read_text().split(NOTES, 1)[1]
    target.write_text(markdown(data, data["results"]) + (f"\n{NOTES}{notes}" if notes else ""))
    print(target.read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run every size and write the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", type=int, choices=(1000, 5000, 10000), default=None)
    parser.add_argument(
        "--junk-keys", type=int, default=None, help="unrelated keys beside the largest size (0: none)"
    )
    parser.add_argument("--short", action="store_true", help="a smoke run: small sizes, 5 s windows")
    parser.add_argument("--no-bullboard", action="store_true")
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only event → socket and event → DOM latency, at each size (results: <date>-scale-latency)",
    )
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument(
        "--report-only",
        metavar="JSON",
        type=Path,
        help="measure nothing: write the .md of a stored result again (keeps its hand-written notes)",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        return rerender(args.report_only)
    if args.latency_only and args.junk_keys is None:
        args.junk_keys = 0
    if args.short:
        plan = Plan(
            short=True,
            sizes=tuple(args.sizes or (1000,)),
            junk_keys=20_000 if args.junk_keys is None else args.junk_keys,
            window=5.0,
            rounds=10,
            board_budget=5.0,
            after_leave=False,
            latency_seconds=5.0,
            latency_queues=2,
            latency_adds_per_second=10.0,
            latency_only=args.latency_only,
        )
    else:
        plan = Plan(
            short=False,
            sizes=tuple(args.sizes or (1000, 5000, 10000)),
            junk_keys=1_000_000 if args.junk_keys is None else args.junk_keys,
            window=25.0,
            rounds=30,
            board_budget=20.0,
            after_leave=True,
            latency_seconds=30.0,
            latency_queues=5,
            latency_adds_per_second=10.0,
            latency_only=args.latency_only,
        )
    results_dir = args.results_dir or (BENCH / "results" / "smoke" if plan.short else BENCH / "results")
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results: list[dict[str, Any]] = []
    try:
        database = SiteDatabase(workdir)
        say(f"preparing the site's database in {workdir}")
        database.prepare()
        users = add_users(database, "redis://127.0.0.1:1/0", 5)
        board_on = not args.no_bullboard
        largest = max(plan.sizes)
        for queues in sorted(plan.sizes):
            size = Size(plan, workdir, database, users, queues).start()
            try:
                last = queues == largest
                data = measure_size(size, f"{queues:,}", board_on, extra=last and not plan.junk_keys)
                results.append(data)
                if data.get("bullboard", {}).get("capped"):
                    board_on = False
                if last and plan.junk_keys:
                    say(f"{queues:,} queues: adding {plan.junk_keys:,} unrelated keys (DEBUG POPULATE)")
                    took = fill_junk(size.redis.url, plan.junk_keys)
                    label = f"{queues:,} + {short(plan.junk_keys)} keys"
                    junk = measure_size(size, label, board_on, extra=True)
                    junk["junk_keys"] = plan.junk_keys
                    junk["junk_fill_seconds"] = round(took, 2)
                    results.append(junk)
            finally:
                size.close()
        meta = {
            "date": date,
            "short": plan.short,
            "plan": plan.__dict__,
            "machine": report.machine(),
            "versions": report.versions(),
            "revision": report.source_revision(),
            "elapsed_seconds": round(time.monotonic() - started, 1),
        }
        name = "scale" if not plan.short else "scale-short"
        if plan.latency_only:
            name += "-latency"
        path = report.write_json(results_dir, date, name, {**meta, "results": results})
        text = latency_markdown(meta, results) if plan.latency_only else markdown(meta, results)
        (results_dir / f"{date}-{name}.md").write_text(text)
        say(f"wrote {path} and its .md")
        print()
        print(text)
        say(f"done in {(time.monotonic() - started) / 60:.1f} min")
        return 0
    except Exception:
        for log in sorted(workdir.glob("*.log")):
            tail = log.read_text(errors="replace")[-3000:]
            if tail.strip():
                print(f"--- tail of {log.name} ---\n{tail}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
