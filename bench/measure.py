"""Measurements: wall time per request (alternating servers), Redis commands per request, viewers."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from bench.client import HttpClient, Response


def summary(seconds: list[float]) -> dict[str, float | int]:
    """Median, p95, mean, min and max in milliseconds."""
    if not seconds:
        return {"n": 0}
    ms = sorted(value * 1000 for value in seconds)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(p95, 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "min_ms": round(ms[0], 3),
        "max_ms": round(ms[-1], 3),
    }


class CommandStats:
    """INFO commandstats of one Redis: every cmdstat_* call, including those run inside Lua scripts."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def snapshot(self) -> dict[str, int]:
        """Calls per command so far."""
        stats: dict[str, Any] = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}

    @staticmethod
    def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        """Calls made between two snapshots, less the one INFO that took the first snapshot."""
        calls = {name: after.get(name, 0) - before.get(name, 0) for name in after}
        calls["info"] = calls.get("info", 0) - 1
        return {name: count for name, count in calls.items() if count > 0}

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


@dataclass
class Target:
    """One URL of one server, with the client that asks for it."""

    label: str
    server: str
    client: HttpClient
    path: str
    headers: dict[str, str] = field(default_factory=dict)

    def fetch(self) -> Response:
        """One request; a non-2xx answer stops the benchmark (something is set up wrong)."""
        response = self.client.get(self.path, self.headers)
        if not 200 <= response.status < 300:
            raise RuntimeError(
                f"{self.label}: GET {self.path} answered {response.status}: {response.body[:300]!r}"
            )
        return response


def time_alternating(targets: list[Target], rounds: int, warmup: int = 3) -> dict[str, dict[str, Any]]:
    """Wall time of each target, asked in turn (ours, theirs, ours, …) so drift hits all alike."""
    for _ in range(warmup):
        for target in targets:
            target.fetch()
    if rounds == 0:
        return {}
    times: dict[str, list[float]] = {target.label: [] for target in targets}
    sizes: dict[str, Response] = {}
    for _ in range(rounds):
        for target in targets:
            response = target.fetch()
            times[target.label].append(response.seconds)
            sizes[target.label] = response
    return {
        target.label: {
            "server": target.server,
            "path": target.path,
            "headers": target.headers,
            **summary(times[target.label]),
            "body_bytes": len(sizes[target.label].body),
            "wire_bytes": sizes[target.label].wire_bytes,
        }
        for target in targets
    }


def commands_per_request(stats: CommandStats, target: Target, requests: int) -> dict[str, Any]:
    """Redis commands one request costs: INFO commandstats delta around `requests` requests, / requests."""
    target.fetch()  # warm: scripts loaded, connections open
    before = stats.snapshot()
    for _ in range(requests):
        target.fetch()
    calls = CommandStats.delta(before, stats.snapshot())
    total = sum(calls.values())
    top = sorted(calls.items(), key=lambda item: -item[1])
    return {
        "requests": requests,
        "commands_per_request": round(total / requests, 2),
        "by_command_per_request": {name: round(count / requests, 2) for name, count in top},
    }


class Viewer(Protocol):
    """One open dashboard tab for the length of a viewers window."""

    def run(self, start: float, end: float, record: ViewerRecord) -> None:
        """Do what the tab does from `start` to `end` (time.monotonic), recording what it fetched."""


@dataclass
class ViewerRecord:
    """What the viewers of one window fetched (shared by their threads)."""

    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float) -> None:
        """One answered request."""
        with self.lock:
            self.seconds.append(seconds)

    def fail(self, message: str) -> None:
        """One failed request."""
        with self.lock:
            self.errors.append(message)


@dataclass
class PollingViewer:
    """A tab that polls one URL every `interval` seconds, as Bull Board's UI (and an htmx poll) does.

    A poll that is still running when the next is due makes that one skip (the UI does not stack
    requests either); `offset` spreads the tabs over the interval.
    """

    target: Target
    interval: float
    offset: float

    def run(self, start: float, end: float, record: ViewerRecord) -> None:
        """Poll at start + offset + k·interval until `end`."""
        due = start + self.offset
        while True:
            now = time.monotonic()
            if due >= end:
                break
            if due > now:
                time.sleep(due - now)
            try:
                record.add(self.target.fetch().seconds)
            except Exception as exc:  # a viewer counts failures instead of stopping the window
                record.fail(f"{type(exc).__name__}: {exc}"[:200])
            now = time.monotonic()
            while due <= now:
                due += self.interval
        self.target.client.close()


# TODO(issue 5): a WebSocketViewer that opens the overview page's websocket (/queues/ws/…), counts
# the messages it receives and keeps the socket open until `end`; add it to VIEWER_MODES in run.py.


def viewers_window(
    stats: CommandStats, make_viewer: Callable[[int, int], Viewer], count: int, seconds: float
) -> dict[str, Any]:
    """Redis commands per second while `count` viewers are open for `seconds` seconds."""
    record = ViewerRecord()
    viewers = [make_viewer(index, count) for index in range(count)]
    before = stats.snapshot()
    start = time.monotonic()
    end = start + seconds
    threads = [
        threading.Thread(target=viewer.run, args=(start, end, record), daemon=True) for viewer in viewers
    ]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, end - time.monotonic()))
    calls = CommandStats.delta(before, stats.snapshot())
    elapsed = time.monotonic() - start
    for thread in threads:
        thread.join(timeout=600)
    total = sum(calls.values())
    top = sorted(calls.items(), key=lambda item: -item[1])[:8]
    return {
        "viewers": count,
        "seconds": round(elapsed, 2),
        "commands": total,
        "commands_per_second": round(total / elapsed, 1),
        "top_commands": dict(top),
        "requests": len(record.seconds),
        "errors": len(record.errors),
        "first_errors": record.errors[:3],
        "request_time": summary(record.seconds),
    }
