"""Benchmark of the dashboard against Bull Board on the same Redis data: `python -m bench.run`.

Every scenario gets its own throwaway Redis filled by Node BullMQ 6 (bench/build.mjs), our site on
daphne and Bull Board (bench/bullboard.mjs) on free loopback ports; results go to
bench/results/<date>-<scenario>.json and, for the full sizes, into BENCHMARKS.md. Nothing here
asserts anything about speed: the run exits 0 when every measurement ran.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import paging, report
from bench.client import HttpClient, login
from bench.measure import (
    CommandStats,
    PollingViewer,
    Target,
    Viewer,
    WebSocketViewer,
    commands_per_request,
    cpu_per_request,
    time_alternating,
    time_pages,
    viewers_window,
)
from bench.servers import (
    BENCH,
    PASSWORD,
    ROOT,
    USERNAME,
    BullBoard,
    OurSite,
    SiteDatabase,
    build_data,
    rss_kib,
)
from queues.throwaway_redis import ThrowawayRedis
from tests.support.chromium import CHROMIUM

POLL_INTERVAL = 5.0  # Bull Board's default pollingInterval (seconds), and our overview's refresh
# What Bull Board's UI polls on its overview (no queue open): activeQueue and status are undefined and
# axios leaves them out; page and jobsPerPage are the UI's defaults.
BOARD_LIST = "/api/queues?page=1&jobsPerPage=10"
HTMX = {"HX-Request": "true"}
# What a click on a page number sends from our queue page: htmx swaps only the job list.
PAGING = {"HX-Request": "true", "HX-Target": "job-list"}


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is and how many requests it makes."""

    name: str
    overview_queues: tuple[int, ...]
    waiting_per_queue: int
    job_counts: tuple[int, ...]
    detail_bytes: int
    detail_others: int
    viewer_queues: int
    viewer_counts: tuple[int, ...]
    viewer_seconds: float
    job_rounds: int
    detail_rounds: int
    profile_rounds: int
    paging_steps: int
    overview_budget: int  # rounds x queues per overview scenario (fewer rounds for more queues)

    def overview_rounds(self, queues: int) -> int:
        """Timed rounds of one overview scenario."""
        return max(5, min(100, self.overview_budget // queues))

    def overview_command_requests(self, queues: int) -> int:
        """Requests per target inside one INFO commandstats window."""
        return max(2, min(10, 2000 // queues))


SIZES = {
    "full": Sizes(
        name="full",
        overview_queues=(10, 200, 1000),
        waiting_per_queue=10,
        job_counts=(10_000, 1_000_000),
        detail_bytes=2 * 1024 * 1024,
        detail_others=30,
        viewer_queues=200,
        viewer_counts=(1, 10, 50),
        viewer_seconds=60.0,
        job_rounds=100,
        detail_rounds=20,
        profile_rounds=20,
        paging_steps=30,
        overview_budget=8000,
    ),
    "small": Sizes(
        name="small",
        overview_queues=(10, 20),
        waiting_per_queue=10,
        job_counts=(1_000, 5_000),
        detail_bytes=2 * 1024 * 1024,
        detail_others=30,
        viewer_queues=20,
        viewer_counts=(1, 10, 50),
        viewer_seconds=5.0,
        job_rounds=20,
        detail_rounds=5,
        profile_rounds=10,
        paging_steps=10,
        overview_budget=200,
    ),
}


def short(count: int) -> str:
    """10000 → 10k, 1000000 → 1m."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count >= 1000 and count % 1000 == 0:
        return f"{count // 1000}k"
    return str(count)


def say(message: str) -> None:
    """Progress on stdout, flushed (make shows it as it comes)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Run:
    """What every scenario of one run shares."""

    sizes: Sizes
    viewer_seconds: float
    viewer_mode: str
    workdir: Path
    database: SiteDatabase
    profile: bool
    results_dir: Path
    date: str

    def log(self, scenario: str) -> Path:
        """The log file of a scenario's child processes."""
        return self.workdir / f"{scenario}.log"


class Scenario:
    """One Redis with one data set, our site and Bull Board over it."""

    def __init__(self, run: Run, name: str, spec: dict[str, Any]) -> None:
        self.run = run
        self.name = name
        self.spec = spec
        self.stack = ExitStack()

    def __enter__(self) -> Scenario:
        self.log = self.run.log(self.name)
        self.redis = self.stack.enter_context(ThrowawayRedis())
        say(f"{self.name}: building data with Node BullMQ ({json.dumps(self.spec)})")
        self.built = build_data(self.redis.url, self.spec, self.log)
        say(
            f"{self.name}: built in {self.built['seconds']:.1f} s, {self.built['keys']:,} keys, "
            f"{self.built['usedMemory'] / 1024 / 1024:,.0f} MiB in Redis"
        )
        self.names_file = self.run.workdir / f"{self.name}-queues.json"
        self.names_file.write_text(json.dumps(self.built["queues"]))
        self.ours = self.stack.enter_context(OurSite(self.log, self.run.database, self.redis.url))
        self.board = self.stack.enter_context(BullBoard(self.log, self.redis.url, self.names_file))
        self.me = login(self.ours.base, USERNAME, PASSWORD)
        self.stats = CommandStats(self.redis.url)
        self.stack.callback(self.stats.close)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def replace_board(self, mode: str) -> BullBoard:
        """Stop Bull Board and start it again in another connection mode (its sockets gone first)."""
        self.board.stop()
        self.board = self.stack.enter_context(BullBoard(self.log, self.redis.url, self.names_file, mode))
        return self.board

    def rss(self) -> dict[str, int]:
        """VmRSS of the servers now, in KiB."""
        return {"ours": rss_kib(self.ours.pid), "bullboard": rss_kib(self.board.pid)}

    def result(self, **fields: Any) -> dict[str, Any]:
        """The scenario's JSON with what every scenario records."""
        return {
            "scenario": self.name,
            "sizes": self.run.sizes.name,
            "data": {key: value for key, value in self.built.items() if key != "queues"},
            **fields,
        }


def overview(run: Run, queues: int) -> dict[str, Any]:
    """The queue list with N queues x 10 waiting jobs: ours (HTML, partial, API) vs Bull Board.

    Bull Board runs twice: first as its README sets it up (a connection per queue), then, once
    those sockets are closed, with one shared connection, so neither's CLIENT LIST sees the other.
    """
    name = f"overview-{queues}"
    spec = {"kind": "overview", "queues": queues, "waiting": run.sizes.waiting_per_queue}
    with Scenario(run, name, spec) as sc:
        targets = [
            Target("ours-html", "ours", sc.me, "/queues/"),
            Target("ours-partial", "ours", sc.me.clone(), "/queues/", HTMX),
            Target("ours-api", "ours", sc.me.clone(), "/queues/api/queues/"),
            Target("bullboard", "bullboard", HttpClient(sc.board.base), BOARD_LIST),
        ]
        rounds = run.sizes.overview_rounds(queues)
        warmup = 1 if queues >= 1000 else 3
        per = run.sizes.overview_command_requests(queues)
        say(f"{name}: timing {rounds} rounds of {len(targets)} requests")
        timing = time_alternating(targets, rounds, warmup)
        commands = {target.label: commands_per_request(sc.stats, target, per) for target in targets}
        rss = sc.rss()
        shared = Target(
            "bullboard-shared", "bullboard-shared", HttpClient(sc.replace_board("shared").base), BOARD_LIST
        )
        say(f"{name}: Bull Board with one shared connection: {rounds} rounds, alternating with ours-html")
        again = time_alternating([targets[0], shared], rounds, warmup)
        timing["bullboard-shared"] = again["bullboard-shared"]
        timing["bullboard-shared"]["ours-html alongside"] = {
            key: value for key, value in again["ours-html"].items() if key.endswith("_ms")
        }
        commands["bullboard-shared"] = commands_per_request(sc.stats, shared, per)
        rss["bullboard-shared"] = rss_kib(sc.board.pid)
        for label in [target.label for target in targets] + ["bullboard-shared"]:
            say(
                f"{name}: {label:17} median {timing[label]['median_ms']:8.1f} ms, "
                f"p95 {timing[label]['p95_ms']:8.1f} ms, "
                f"{commands[label]['commands_per_request']:8,.0f} commands, "
                f"{timing[label]['body_bytes']:,} bytes"
            )
        profile = None
        if run.profile and queues == run.sizes.viewer_queues:
            profile = profile_overview(run, sc)
        return sc.result(queues=queues, timing=timing, commands=commands, rss_kib_after=rss, profile=profile)


def profile_overview(run: Run, sc: Scenario) -> dict[str, Any]:
    """bench/profile_overview.py in a child process against this scenario's Redis."""
    out = run.workdir / f"profile-{sc.name}"
    say(f"{sc.name}: profiling our overview in-process ({run.sizes.profile_rounds} rounds)")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.profile_overview",
            "--rounds",
            str(run.sizes.profile_rounds),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env={**run.database.env(sc.redis.url), "DJANGO_ALLOWED_HOSTS": "testserver"},
        check=True,
    )
    listing = run.results_dir / f"{run.date}-profile-{sc.name}.txt"
    run.results_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out.with_suffix(".txt"), listing)
    say(f"{sc.name}: profile listing in {listing}")
    return dict(json.loads(out.with_suffix(".json").read_text()))


def job_list(run: Run, count: int) -> dict[str, Any]:
    """One queue with N completed jobs: page 5 of 25, ours vs Bull Board; then pages never shown before."""
    name = f"jobs-{short(count)}"
    with Scenario(run, name, {"kind": "completed", "queue": "jobs", "count": count}) as sc:
        query = "state=completed&page={page}&per_page=25"
        board_query = "activeQueue=jobs&status=completed&page={page}&jobsPerPage=25"
        # ours-partial is what paging sends from the queue page (htmx); ours-html a full page load.
        pages = [
            Target("ours-html", "ours", sc.me, f"/queues/default/bull:jobs/?{query}"),
            Target("ours-partial", "ours", sc.me.clone(), f"/queues/default/bull:jobs/?{query}", PAGING),
            Target("ours-api", "ours", sc.me.clone(), f"/queues/api/queues/default/bull:jobs/jobs/?{query}"),
            Target("bullboard", "bullboard", HttpClient(sc.board.base), f"/api/queues?{board_query}"),
        ]
        targets = [replace(target, path=target.path.format(page=5)) for target in pages]
        say(f"{name}: timing {run.sizes.job_rounds} rounds of {len(targets)} requests")
        timing = time_alternating(targets, run.sizes.job_rounds)
        commands = {target.label: commands_per_request(sc.stats, target, 10) for target in targets}
        pids = {"ours": sc.ours.pid, "bullboard": sc.board.pid}
        cpu = {
            target.label: cpu_per_request(target, pids[target.server], run.sizes.job_rounds)
            for target in targets
        }
        # Pages 6, 7, … were never asked for: nothing of them is rendered or cached yet on our side.
        first_new = 6
        say(f"{name}: {run.sizes.job_rounds} pages never shown before, alternating")
        walk = time_pages(pages, range(first_new, first_new + run.sizes.job_rounds))
        ours_ids = [job["id"] for job in json.loads(targets[2].fetch().body)["jobs"]]
        board = json.loads(targets[3].fetch().body)
        board_ids = [job["id"] for job in board["queues"][0]["jobs"]]
        clicks = browser_paging(run, sc, count) if count == max(run.sizes.job_counts) else None
        for target in targets:
            say(
                f"{name}: {target.label:12} median {timing[target.label]['median_ms']:7.2f} ms "
                f"(new pages {walk[target.label]['median_ms']:7.2f} ms), "
                f"server CPU {cpu[target.label]:6.2f} ms, "
                f"{commands[target.label]['commands_per_request']:6,.0f} commands"
            )
        return sc.result(
            jobs=count,
            timing=timing,
            new_pages=walk,
            cpu_ms_per_request=cpu,
            commands=commands,
            same_ids=ours_ids == board_ids and len(ours_ids) == 25,
            page_ids=ours_ids,
            paging_in_chromium=clicks,
            rss_kib_after=sc.rss(),
        )


def browser_paging(run: Run, sc: Scenario, count: int) -> dict[str, Any] | None:
    """Click "next page" in Chromium on both dashboards, from a page far from those timed above."""
    if not Path(CHROMIUM).exists():
        say(f"jobs-{short(count)}: no {CHROMIUM}, paging in Chromium skipped")
        return None
    steps = run.sizes.paging_steps
    first = min(1000, count // 25 - steps - 1)
    api = HttpClient(sc.ours.base, dict(sc.me.cookies))
    first_ids = {}
    for page in range(first + 1, first + 1 + steps):
        path = f"/queues/api/queues/default/bull:jobs/jobs/?state=completed&per_page=25&page={page}"
        first_ids[page] = json.loads(api.get(path).body)["jobs"][0]["id"]
    api.close()
    say(f"jobs-{short(count)}: paging in Chromium, {steps} clicks on each dashboard from page {first}")
    result = paging.measure(sc.ours.base, dict(sc.me.cookies), sc.board.base, first, first_ids)
    say(
        f"jobs-{short(count)}: click to next page: ours {result['ours']['median_ms']:.1f} ms, "
        f"Bull Board {result['bullboard']['median_ms']:.1f} ms (medians)"
    )
    return result


def job_detail(run: Run) -> dict[str, Any]:
    """One job with ~2 MB of data: bytes sent and time of its page, our API and Bull Board's."""
    name = "job-detail"
    spec = {
        "kind": "detail",
        "queue": "big",
        "bytes": run.sizes.detail_bytes,
        "others": run.sizes.detail_others,
    }
    with Scenario(run, name, spec) as sc:
        job_id = str(sc.built["jobIds"]["big"])
        targets = [
            Target("ours-job-html", "ours", sc.me, f"/queues/default/bull:big/job/?id={job_id}"),
            Target(
                "ours-job-api", "ours", sc.me.clone(), f"/queues/api/queues/default/bull:big/job/?id={job_id}"
            ),
            Target("bullboard-job", "bullboard", HttpClient(sc.board.base), f"/api/queues/big/{job_id}"),
            Target(
                "bullboard-queue",
                "bullboard",
                HttpClient(sc.board.base),
                "/api/queues?activeQueue=big&status=completed&page=1&jobsPerPage=10",
            ),
        ]
        say(f"{name}: timing {run.sizes.detail_rounds} rounds of {len(targets)} requests")
        timing = time_alternating(targets, run.sizes.detail_rounds)
        commands = {target.label: commands_per_request(sc.stats, target, 3) for target in targets}
        for target in targets:
            say(
                f"{name}: {target.label:15} {timing[target.label]['body_bytes']:>10,} bytes, "
                f"median {timing[target.label]['median_ms']:7.2f} ms"
            )
        return sc.result(
            data_bytes=sc.built["jobIds"]["bigDataBytes"],
            job_id=job_id,
            timing=timing,
            commands=commands,
            rss_kib_after=sc.rss(),
        )


def polling_viewers(sc: Scenario) -> dict[str, Callable[[int, int], Viewer]]:
    """Viewer factories per server: each tab polls its queue list every 5 s, spread over the interval."""

    def ours(index: int, count: int) -> Viewer:
        target = Target("ours", "ours", sc.me.clone(), "/queues/", HTMX)
        return PollingViewer(target, POLL_INTERVAL, POLL_INTERVAL * index / count)

    def board(index: int, count: int) -> Viewer:
        target = Target("bullboard", "bullboard", HttpClient(sc.board.base), BOARD_LIST)
        return PollingViewer(target, POLL_INTERVAL, POLL_INTERVAL * index / count)

    return {"ours": ours, "bullboard": board}


def socket_viewers(sc: Scenario) -> dict[str, Callable[[int, int], Viewer]]:
    """Ours as a browser tab keeps it (the overview's live socket open); Bull Board has none and polls."""
    socket_url = sc.ours.base.replace("http://", "ws://", 1) + "/queues/ws/"

    def ours(index: int, count: int) -> Viewer:
        return WebSocketViewer(Target("ours", "ours", sc.me.clone(), "/queues/"), socket_url)

    return {"ours": ours, "bullboard": polling_viewers(sc)["bullboard"]}


# How each kind of viewer is made: `ws` is how our pages run; `poll` makes our tabs poll like Bull
# Board's (the fallback our pages use when websockets are blocked).
VIEWER_MODES: dict[str, Callable[[Scenario], dict[str, Callable[[int, int], Viewer]]]] = {
    "ws": socket_viewers,
    "poll": polling_viewers,
}


def viewers(run: Run) -> dict[str, Any]:
    """Redis commands per second with 1, 10 and 50 open viewers of each dashboard."""
    name = "viewers"
    queues = run.sizes.viewer_queues
    spec = {"kind": "overview", "queues": queues, "waiting": run.sizes.waiting_per_queue}
    with Scenario(run, name, spec) as sc:
        factories = VIEWER_MODES[run.viewer_mode](sc)
        # Warm both servers (scripts loaded, connections open, discovery done) before any window.
        warm = [
            Target("ours", "ours", sc.me, "/queues/", HTMX),
            Target("bullboard", "bullboard", HttpClient(sc.board.base), BOARD_LIST),
        ]
        time_alternating(warm, rounds=1)
        idle_seconds = min(10.0, run.viewer_seconds)
        say(f"{name}: idle window of {idle_seconds:g} s (no viewer)")
        idle = viewers_window(sc.stats, factories["ours"], 0, idle_seconds)
        found: dict[str, list[dict[str, Any]]] = {server: [] for server in factories}
        for count in run.sizes.viewer_counts:
            for server, make in factories.items():
                say(f"{name}: {count} {server} viewer(s) for {run.viewer_seconds:g} s")
                window = viewers_window(sc.stats, make, count, run.viewer_seconds)
                found[server].append(window)
                median = window["request_time"].get("median_ms", 0)
                say(
                    f"{name}: {count} {server} viewer(s): {window['commands_per_second']:,.1f} commands/s, "
                    f"{window['requests']} requests, median {median:.1f} ms"
                )
                time.sleep(1.0)
        return sc.result(
            queues=queues,
            mode=run.viewer_mode,
            viewer_seconds=run.viewer_seconds,
            poll_interval=POLL_INTERVAL,
            idle=idle,
            rss_kib_after=sc.rss(),
            **found,
        )


SCENARIOS = ("overview", "jobs", "detail", "viewers")


def rerender(date: str) -> int:
    """Rewrite the summary and BENCHMARKS.md from a full run's stored results."""
    results_dir = ROOT / "bench" / "results"
    results = {
        path.stem.removeprefix(f"{date}-"): json.loads(path.read_text())
        for path in sorted(results_dir.glob(f"{date}-*.json"))
    }
    if not results:
        print(f"no results of {date} in {results_dir}", file=sys.stderr)
        return 2
    meta = next(iter(results.values()))
    section = report.markdown(meta, results)
    (results_dir / f"{date}-summary.md").write_text(section + "\n")
    report.update_benchmarks_md(ROOT / "BENCHMARKS.md", section)
    print(section)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios and write their results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", choices=sorted(SIZES), default="full")
    parser.add_argument(
        "--viewer-seconds",
        type=float,
        default=None,
        help="length of each viewers window (default 60; 5 for small)",
    )
    parser.add_argument("--viewer-mode", choices=sorted(VIEWER_MODES), default="ws")
    parser.add_argument(
        "--report-only",
        metavar="DATE",
        help="measure nothing: render BENCHMARKS.md again from bench/results/<DATE>-*.json",
    )
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process profile")
    parser.add_argument(
        "--no-update", action="store_true", help="do not rewrite the results section of BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        return rerender(args.report_only)
    sizes = SIZES[args.sizes]
    results_dir = args.results_dir or (
        BENCH / "results" if sizes.name == "full" else BENCH / "results" / "smoke"
    )
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        database = SiteDatabase(workdir)
        say(f"preparing the site's database in {workdir}")
        database.prepare()
        run = Run(
            sizes=sizes,
            viewer_seconds=args.viewer_seconds if args.viewer_seconds is not None else sizes.viewer_seconds,
            viewer_mode=args.viewer_mode,
            workdir=workdir,
            database=database,
            profile=not args.no_profile,
            results_dir=results_dir,
            date=date,
        )
        results: dict[str, dict[str, Any]] = {}
        if "overview" in args.only:
            for queues in sizes.overview_queues:
                results[f"overview-{queues}"] = overview(run, queues)
        if "jobs" in args.only:
            for count in sizes.job_counts:
                results[f"jobs-{short(count)}"] = job_list(run, count)
        if "detail" in args.only:
            results["job-detail"] = job_detail(run)
        if "viewers" in args.only:
            results["viewers"] = viewers(run)
        meta = {
            "date": date,
            "sizes": sizes.name,
            "viewer_seconds": run.viewer_seconds,
            "machine": report.machine(),
            "versions": report.versions(),
            "revision": report.source_revision(),
            "elapsed_seconds": round(time.monotonic() - started, 1),
        }
        for scenario, data in results.items():
            path = report.write_json(results_dir, date, scenario, {**meta, **data})
            say(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        section = report.markdown(meta, results)
        summary_path = results_dir / f"{date}-summary.md"
        summary_path.write_text(section + "\n")
        if sizes.name == "full" and not args.no_update and set(args.only) == set(SCENARIOS):
            report.update_benchmarks_md(ROOT / "BENCHMARKS.md", section)
            say("updated the results section of BENCHMARKS.md")
        print()
        print(section)
        say(f"done in {(time.monotonic() - started) / 60:.1f} min")
        return 0
    except Exception:
        logs = sorted(workdir.glob("*.log"))
        for log in logs:
            tail = log.read_text(errors="replace")[-3000:]
            if tail.strip():
                print(f"--- tail of {log.name} ---\n{tail}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
