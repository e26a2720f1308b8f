"""A busy dashboard for the load and soak runs (bench/load.py, bench/soak.py): its own Redis kept busy by
Node BullMQ (bench/traffic.mjs), our site on daphne with an in-process sampler (bench/sampled_daphne.py),
staff users logged in, viewers with live sockets, and what the processes hold, sampled over time.

Everything listens and connects on 127.0.0.1 only and stops when the `Busy` context exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from socket import SHUT_RDWR
from typing import Any

import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bench.client import HttpClient, login
from bench.measure import cpu_seconds
from bench.servers import BENCH, PASSWORD, ROOT, USERNAME, OurSite, SiteDatabase, rss_kib
from queues.throwaway_redis import ThrowawayRedis, stop_process

# Sockets one user may hold in one process (LIVE MAX_SOCKETS_PER_USER, 30 by default): viewers are
# spread over several staff users, as several operators' tabs would be.
VIEWERS_PER_USER = 10
DASHBOARD_CLIENT = "bullmq-dashboard"  # the CLIENT SETNAME of the dashboard's Redis connections
QUIET = logging.getLogger("bench.dropped-sockets")
QUIET.propagate = False
QUIET.addHandler(logging.NullHandler())


def percentiles(seconds: list[float]) -> dict[str, float | int]:
    """n, p50, p95, p99 and max in milliseconds (nearest rank)."""
    if not seconds:
        return {"n": 0}
    ms = sorted(value * 1000 for value in seconds)

    def rank(p: float) -> float:
        return round(ms[min(len(ms) - 1, max(0, round(p / 100 * len(ms) + 0.5) - 1))], 1)

    return {
        "n": len(ms),
        "p50_ms": rank(50),
        "p95_ms": rank(95),
        "p99_ms": rank(99),
        "max_ms": round(ms[-1], 1),
    }


def open_fds(pid: int) -> int:
    """Open file descriptors of a process (entries of /proc/<pid>/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def os_threads(pid: int) -> int:
    """Threads of a process (Threads: of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


class Traffic:
    """bench/traffic.mjs: Node BullMQ producers and workers keeping `queues` queues busy, with the BullMQ
    installed under `bullmq_dir` (bench/, whose node_modules `npm ci --prefix bench` installs, or
    tests/interop/, the same BullMQ 6.7.0 for the tests)."""

    def __init__(self, redis_url: str, queues: int, rate: float, log: Path, bullmq_dir: Path = BENCH) -> None:
        executable = shutil.which("node")
        if executable is None:
            raise RuntimeError("node is not installed (the load and soak runs need Node 20)")
        if not (bullmq_dir / "node_modules" / "bullmq").is_dir():
            raise RuntimeError(f"{bullmq_dir}/node_modules is missing: run `npm ci --prefix {bullmq_dir}`")
        self.argv = [executable, str(BENCH / "traffic.mjs"), redis_url, str(queues), str(rate)]
        self.env = {**os.environ, "BULLMQ_DIR": str(bullmq_dir)}
        self.log = log
        self.last: dict[str, Any] = {}
        self.process: subprocess.Popen[str] | None = None
        self._seeded = threading.Event()
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Traffic:
        with self.log.open("ab") as err:
            self.process = subprocess.Popen(
                self.argv,
                cwd=BENCH,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._seeded.wait(120):
            self.stop()
            raise RuntimeError(f"traffic.mjs did not create its queues within 120 s; see {self.log}")
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "seeded" in message:
                self._seeded.set()
            else:
                self.last = message

    def stop(self) -> dict[str, Any]:
        """SIGTERM (the workers close), and the last counts it printed."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop_process(self.process)  # type: ignore[arg-type]
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        return self.last

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SampledSite(OurSite):
    """Our site as OurSite serves it (python -m daphne, DEBUG off), with bench/sampled_daphne.py's sampler."""

    def __init__(
        self, log: Path, database: SiteDatabase, redis_url: str, samples: Path, every: float
    ) -> None:
        super().__init__(log, database, redis_url)
        self.samples = samples
        self.every = every

    def command(self) -> tuple[list[str], dict[str, str] | None, Path]:
        """python -m bench.sampled_daphne --samples FILE --every S, then daphne's own arguments."""
        argv, env, cwd = super().command()
        sampler = ["-m", "bench.sampled_daphne", "--samples", str(self.samples), "--every", str(self.every)]
        return [sys.executable, *sampler, *argv[3:]], env, cwd

    def last_sample(self) -> dict[str, Any]:
        """The sampler's latest line (empty before the first)."""
        if not self.samples.exists():
            return {}
        lines = self.samples.read_text().splitlines()
        return json.loads(lines[-1]) if lines else {}


def add_users(database: SiteDatabase, redis_url: str, count: int) -> list[str]:
    """`count` staff users (USERNAME and USERNAME1…) with PASSWORD; USERNAME exists already."""
    names = [USERNAME] + [f"{USERNAME}{index}" for index in range(1, count)]
    if count <= 1:
        return names
    script = (
        "import sys\nfrom django.contrib.auth import get_user_model\nUser = get_user_model()\n"
        "for name in sys.argv[1:]:\n"
        f"    User.objects.create_superuser(name, name + '@example.com', {PASSWORD!r})\n"
    )
    subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); exec({script!r})", *names[1:]],
        cwd=ROOT,
        env=database.env(redis_url),
        check=True,
        capture_output=True,
    )
    return names


@dataclass
class Record:
    """What every client thread of a run saw (shared, locked)."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    socket_messages: list[int] = field(default_factory=list)
    socket_seconds: list[float] = field(default_factory=list)
    socket_opens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, kind: str, status: int, seconds: float) -> None:
        """One answered request; a 5xx is an error."""
        with self.lock:
            self.statuses[status] += 1
            self.latencies.setdefault(kind, []).append(seconds)
            if status >= 500:
                self._error(f"http {status}", f"{kind}: {status}")

    def fail(self, kind: str, detail: str) -> None:
        """An error of some kind (an exception, an unexpected socket close)."""
        with self.lock:
            self._error(kind, detail)

    def _error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_examples) < 10:
            self.error_examples.append(detail[:300])

    def socket(self, messages: int, seconds: float) -> None:
        """One socket's life ended (by us): how many messages it got over how long."""
        with self.lock:
            self.socket_messages.append(messages)
            self.socket_seconds.append(seconds)

    def summary(self) -> dict[str, Any]:
        """Latency percentiles per kind, errors, statuses and the sockets' messages."""
        per_second = [m / s for m, s in zip(self.socket_messages, self.socket_seconds, strict=True) if s > 0]
        return {
            "latency": {kind: percentiles(values) for kind, values in sorted(self.latencies.items())},
            "errors": dict(self.errors),
            "errors_total": sum(self.errors.values()),
            "error_examples": self.error_examples,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "sockets": {
                "opened": self.socket_opens,
                "closed_by_client": len(self.socket_messages),
                "messages_total": sum(self.socket_messages),
                "messages_per_socket": _spread(self.socket_messages),
                "messages_per_socket_second": _spread(per_second),
                "sockets_without_messages": sum(1 for count in self.socket_messages if count == 0),
            },
        }


def _spread(values: list[float] | list[int]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": round(min(values), 2),
        "median": round(statistics.median(values), 2),
        "max": round(max(values), 2),
    }


class Viewer:
    """One browser tab of a logged-in user: loads a page (timed) and holds its live socket open."""

    def __init__(self, client: HttpClient, record: Record) -> None:
        self.client = client
        self.record = record
        self.ws_base = client.base.replace("http://", "ws://", 1)

    def load(self, kind: str, path: str) -> bool:
        """GET the page; False when it did not answer 200."""
        try:
            response = self.client.get(path)
        except Exception as exc:  # a tab counts failures instead of stopping the run
            self.record.fail("exception", f"{kind} GET {path}: {type(exc).__name__}: {exc}")
            self.client.close()
            return False
        self.record.timed(kind, response.status, response.seconds)
        return response.status == 200

    def hold(self, socket_path: str, until: float, abrupt: bool = False) -> None:
        """Open the page's socket and receive until `until` (time.monotonic), then close it (cleanly, or by
        dropping the TCP connection when `abrupt`, as a killed tab or a lost network does)."""
        cookies = "; ".join(f"{name}={value}" for name, value in self.client.cookies.items())
        headers = {"Cookie": cookies, "Origin": self.client.base}
        started = time.monotonic()
        try:
            socket: ClientConnection = connect(
                self.ws_base + socket_path,
                additional_headers=headers,
                open_timeout=60,
                # A socket we drop on purpose makes its reading thread log "stream ended"; errors that
                # matter surface as exceptions in this thread.
                logger=QUIET if abrupt else None,
            )
        except Exception as exc:
            self.record.fail("socket open", f"{socket_path}: {type(exc).__name__}: {exc}")
            return
        with self.record.lock:
            self.record.socket_opens += 1
        messages = 0
        try:
            while (left := until - time.monotonic()) > 0:
                try:
                    socket.recv(timeout=left)
                except TimeoutError:
                    break
                messages += 1
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            self.record.fail(
                "socket closed by server", f"{socket_path}: code {code} after {messages} messages"
            )
        except Exception as exc:
            self.record.fail("exception", f"socket {socket_path}: {type(exc).__name__}: {exc}")
        else:
            self.record.socket(messages, time.monotonic() - started)
        finally:
            if abrupt:
                # FIN without a close frame, at once (close() alone waits for the reading thread)
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(SHUT_RDWR)
            socket.close()


def staff_clients(base: str, usernames: list[str]) -> list[HttpClient]:
    """One logged-in client per user."""
    return [login(base, name, PASSWORD) for name in usernames]


def viewer_client(users: list[HttpClient], index: int) -> HttpClient:
    """The tab of viewer `index`: a new connection with the session of user index // VIEWERS_PER_USER."""
    return users[min(len(users) - 1, index // VIEWERS_PER_USER)].clone()


@dataclass
class Sample:
    """The dashboard process and Redis at one moment (cpu_s: its utime + stime so far, all threads)."""

    t: float
    cpu_s: float
    rss_kib: int
    fds: int
    os_threads: int
    redis_clients: int
    dashboard_redis_clients: int
    inside: dict[str, Any]
    traffic: dict[str, Any]


class Sampler:
    """Every `every` seconds: the dashboard's VmRSS and fds (/proc), Redis's connected_clients (and those
    named by the dashboard), and the in-process sampler's latest line."""

    def __init__(self, site: SampledSite, redis_url: str, traffic: Traffic, every: float) -> None:
        self.site = site
        self.redis = redis.Redis.from_url(redis_url)
        self.traffic = traffic
        self.every = every
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        """Take the first sample now, then one every `every` seconds."""
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = 0
        while True:
            self.take()
            tick += 1
            if self._stop.wait(max(0.0, self.started + tick * self.every - time.monotonic())):
                return

    def take(self) -> None:
        """One sample."""
        pid = self.site.pid
        clients = self.redis.client_list()
        self.samples.append(
            Sample(
                t=round(time.monotonic() - self.started, 1),
                cpu_s=cpu_seconds(pid),
                rss_kib=rss_kib(pid),
                fds=open_fds(pid),
                os_threads=os_threads(pid),
                redis_clients=int(self.redis.info("clients")["connected_clients"]),
                dashboard_redis_clients=sum(
                    1 for client in clients if str(client.get("name", "")).startswith(DASHBOARD_CLIENT)
                ),
                inside=self.site.last_sample(),
                traffic=dict(self.traffic.last),
            )
        )

    def stop(self) -> list[dict[str, Any]]:
        """Stop (with one last sample) and return every sample as a flat dict."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.take()
        self.redis.close()
        return [flat(sample) for sample in self.samples]


INSIDE_KEYS = (
    "tasks",
    "daphne_connections",
    "threads",
    "layer_groups",
    "layer_members",
    "layer_channels",
    "hub_viewers",
    "hub_sent",
)


def flat(sample: Sample) -> dict[str, Any]:
    """A sample as one JSON object (the in-process figures beside the /proc ones)."""
    row: dict[str, Any] = {
        "t": sample.t,
        "cpu_s": sample.cpu_s,
        "rss_kib": sample.rss_kib,
        "fds": sample.fds,
        "os_threads": sample.os_threads,
        "redis_clients": sample.redis_clients,
        "dashboard_redis_clients": sample.dashboard_redis_clients,
    }
    for key in INSIDE_KEYS:
        row[key] = sample.inside.get(key)
    row["inside_age_s"] = round(time.time() - sample.inside["wall"], 1) if "wall" in sample.inside else None
    row["task_kinds"] = sample.inside.get("task_kinds")
    row["hub_views"] = sample.inside.get("hub_views")
    row["jobs_produced"] = sample.traffic.get("produced")
    return row


def cpu_share(rows: list[dict[str, Any]]) -> float | None:
    """The dashboard process's CPU time over the sampled span, as a share of one core (1.0 = one core)."""
    if len(rows) < 2 or rows[-1]["t"] <= rows[0]["t"]:
        return None
    used = float(rows[-1]["cpu_s"]) - float(rows[0]["cpu_s"])
    return round(used / (float(rows[-1]["t"]) - float(rows[0]["t"])), 3)


def thirds(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Mean of the first and last third of the samples, and the change between them."""
    values = [row[key] for row in rows if row.get(key) is not None]
    if len(values) < 3:
        return {"samples": len(values)}
    third = len(values) // 3
    first, last = statistics.fmean(values[:third]), statistics.fmean(values[-third:])
    return {
        "first_third_mean": round(first, 1),
        "last_third_mean": round(last, 1),
        "change": round(last - first, 1),
        "change_pct": round((last - first) / first * 100, 1) if first else None,
        "min": min(values),
        "max": max(values),
    }


def slope(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Least-squares slope over the second half of the samples (per hour), and first vs last sample."""
    points = [(row["t"], row[key]) for row in rows if row.get(key) is not None]
    half = points[len(points) // 2 :]
    result: dict[str, Any] = {
        "first": points[0][1] if points else None,
        "last": points[-1][1] if points else None,
    }
    if len(half) >= 3 and len({t for t, _ in half}) > 1:
        fit = statistics.linear_regression([t for t, _ in half], [float(v) for _, v in half])
        result["second_half_slope_per_hour"] = round(fit.slope * 3600, 2)
        result["second_half_mean"] = round(statistics.fmean(v for _, v in half), 1)
    return result


def server_errors(log: Path) -> dict[str, Any]:
    """Tracebacks and ERROR lines the site's processes wrote to the run's log, with the first traceback."""
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = text.splitlines()
    bad = [line for line in lines if "Traceback" in line or " ERROR " in line or line.startswith("ERROR")]
    first = next((index for index, line in enumerate(lines) if "Traceback" in line), None)
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "lines": len(bad),
        "first": bad[:5],
        "first_traceback": [] if first is None else lines[max(0, first - 2) : first + 40],
    }


@dataclass
class Busy:
    """Redis, traffic, the sampled site and its staff users, for one run (an ExitStack closes them)."""

    workdir: Path
    queues: int
    rate: float
    users: int
    every: float
    bullmq_dir: Path = BENCH
    stack: ExitStack = field(default_factory=ExitStack)

    def __enter__(self) -> Busy:
        self.log = self.workdir / "site.log"
        self.redis = self.stack.enter_context(ThrowawayRedis(own_session=True))
        self.traffic = self.stack.enter_context(
            Traffic(self.redis.url, self.queues, self.rate, self.workdir / "traffic.log", self.bullmq_dir)
        )
        database = SiteDatabase(self.workdir)
        database.prepare()
        self.usernames = add_users(database, self.redis.url, self.users)
        samples = self.workdir / "inside.jsonl"
        # The in-process sampler runs more often than the driver's, so each driver sample has a line
        # at most 5 s old.
        inside_every = min(self.every, 5.0)
        self.site = self.stack.enter_context(
            SampledSite(self.log, database, self.redis.url, samples, inside_every)
        )
        self.clients = staff_clients(self.site.base, self.usernames)
        return self

    def sampler(self) -> Sampler:
        """A sampler of this run's site and Redis (started)."""
        return Sampler(self.site, self.redis.url, self.traffic, self.every).start()

    def __exit__(self, *exc: object) -> None:
        for client in self.clients:
            client.close()
        self.stack.close()


def queue_names(count: int) -> list[str]:
    """The queues traffic.mjs fills: q0000 …"""
    return [f"q{index:04d}" for index in range(count)]


def jitter(seconds: float) -> float:
    """seconds ± 25%."""
    return seconds * random.uniform(0.75, 1.25)
