"""Measurements: wall time per request (alternating servers), Redis commands per request, viewers."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import redis
from websockets.sync.client import ClientConnection, connect

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


def time_pages(targets: list[Target], pages: range) -> dict[str, dict[str, Any]]:
    """Wall time of each target over pages never asked before (its path has a `{page}` field)."""
    times: dict[str, list[float]] = {target.label: [] for target in targets}
    for page in pages:
        for target in targets:
            times[target.label].append(replace(target, path=target.path.format(page=page)).fetch().seconds)
    return {
        target.label: {"pages": f"{pages.start}-{pages.stop - 1}", **summary(times[target.label])}
        for target in targets
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/<pid>/stat), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request(target: Target, pid: int, requests: int) -> float:
    """Server CPU milliseconds one request costs: the server process's CPU time over `requests` requests.

    Unlike wall time it does not count waiting for the other processes on the machine (the client, the
    other server), so it is steadier on a busy 2-core machine.
    """
    target.fetch()
    before = cpu_seconds(pid)
    for _ in range(requests):
        target.fetch()
    return round((cpu_seconds(pid) - before) * 1000 / requests, 3)


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

    def open(self, record: ViewerRecord) -> None:
        """Get to the state of an open tab before the window starts (load the page, open a socket)."""

    def run(self, start: float, end: float, record: ViewerRecord) -> None:
        """Do what the tab does from `start` to `end` (time.monotonic), recording what it fetched."""


@dataclass
class ViewerRecord:
    """What the viewers of one window fetched (shared by their threads)."""

    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    messages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def message(self) -> None:
        """One websocket message received."""
        with self.lock:
            self.messages += 1

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

    def open(self, record: ViewerRecord) -> None:
        """Nothing to do: a polling tab is the same at any moment."""

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


@dataclass
class WebSocketViewer:
    """A tab of our overview as a browser holds it: the page loaded once, then its live socket open.

    The socket's pushes are counted; the tab sends nothing and polls nothing while the socket is up.
    """

    page: Target
    socket_url: str
    _socket: ClientConnection | None = None

    def open(self, record: ViewerRecord) -> None:
        """Load the page and open its socket (the server answers a new socket with the current counts)."""
        try:
            record.add(self.page.fetch().seconds)
            cookies = "; ".join(f"{name}={value}" for name, value in self.page.client.cookies.items())
            headers = {"Cookie": cookies, "Origin": self.page.client.base}
            self._socket = connect(self.socket_url, additional_headers=headers, open_timeout=60)
        except Exception as exc:  # a viewer counts failures instead of stopping the window
            record.fail(f"{type(exc).__name__}: {exc}"[:200])

    def run(self, start: float, end: float, record: ViewerRecord) -> None:
        """Receive until `end`, then close."""
        if self._socket is None:
            return
        try:
            while (left := end - time.monotonic()) > 0:
                try:
                    self._socket.recv(timeout=left)
                except TimeoutError:
                    break
                record.message()
        except Exception as exc:
            record.fail(f"{type(exc).__name__}: {exc}"[:200])
        finally:
            self._socket.close()
            self.page.client.close()


def viewers_window(
    stats: CommandStats, make_viewer: Callable[[int, int], Viewer], count: int, seconds: float
) -> dict[str, Any]:
    """Redis commands per second while `count` viewers are open for `seconds` seconds."""
    record = ViewerRecord()
    viewers = [make_viewer(index, count) for index in range(count)]
    opening = [threading.Thread(target=viewer.open, args=(record,), daemon=True) for viewer in viewers]
    for thread in opening:
        thread.start()
    for thread in opening:
        thread.join(timeout=600)
    time.sleep(2.0)  # let what opening the tabs started settle (socket joins, first counts)
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
        "messages": record.messages,
        "errors": len(record.errors),
        "first_errors": record.errors[:3],
        "request_time": summary(record.seconds),
    }
