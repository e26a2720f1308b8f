"""The machine, the versions, the JSON result files and the Markdown summary of a run."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.servers import BENCH, ROOT

START_MARK = "<!-- bench:results:start -->"
END_MARK = "<!-- bench:results:end -->"


def _run(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30).stdout.strip()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """Cores, CPU model and memory of this machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    total = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    return {
        "nproc": int(_run("nproc") or os.cpu_count() or 0),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "memory_gib": round(int(total.group(1)) / 1024 / 1024, 1) if total else None,
        "kernel": platform.release(),
    }


def _npm_version(package: str) -> str:
    manifest = BENCH / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"]) if manifest.exists() else "missing"


def versions() -> dict[str, str]:
    """Versions of everything measured."""
    redis_server = _run("redis-server", "--version")
    found = re.search(r"v=(\S+)", redis_server)
    return {
        "python": platform.python_version(),
        "django": metadata.version("django"),
        "daphne": metadata.version("daphne"),
        "redis-py": metadata.version("redis"),
        "redis-server": found.group(1) if found else redis_server,
        "node": _run("node", "--version").lstrip("v"),
        "bullmq": _npm_version("bullmq"),
        "ioredis": _npm_version("ioredis"),
        "@bull-board/api": _npm_version("@bull-board/api"),
        "@bull-board/express": _npm_version("@bull-board/express"),
        "express": _npm_version("express"),
    }


def source_revision() -> dict[str, Any]:
    """The commit of the dashboard measured, and whether the work tree had changes."""
    commit = _run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    dirty = bool(_run("git", "-C", str(ROOT), "status", "--porcelain", "--", "queues", "dashboard", "config"))
    return {"commit": commit, "uncommitted_changes_in_app": dirty}


def write_json(directory: Path, date: str, scenario: str, data: dict[str, Any]) -> Path:
    """bench/results/<date>-<scenario>.json."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{date}-{scenario}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def _ms(entry: dict[str, Any]) -> str:
    return f"{entry['median_ms']:.1f} / {entry['p95_ms']:.1f}"


def _ratio(numerator: float, denominator: float, digits: int = 2) -> str:
    return f"{numerator / denominator:.{digits}f}x" if denominator else "n/a"


def _kib(value: int) -> str:
    return f"{value / 1024:,.1f} KiB"


JOB_TARGETS = {
    "ours-partial": "ours partial (htmx paging)",
    "ours-api": "ours JSON API",
    "ours-html": "ours HTML page",
    "bullboard": "Bull Board `/api/queues?activeQueue=…`",
}


def markdown(run: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    """The results section of BENCHMARKS.md."""
    m, v = run["machine"], run["versions"]
    lines = [
        f"Run of {run['date']} (`--sizes {run['sizes']}`, viewers {run['viewer_seconds']:g} s, "
        f"dashboard at `{run['revision']['commit']}`"
        + (" with uncommitted changes" if run["revision"]["uncommitted_changes_in_app"] else "")
        + f", {run['elapsed_seconds'] / 60:.1f} min in all).",
        "",
        f"- Machine: {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, Linux {m['kernel']}.",
        f"- Ours: Python {v['python']}, Django {v['django']}, daphne {v['daphne']}, "
        f"redis-py {v['redis-py']}.",
        f"- Bull Board: @bull-board/api and /express {v['@bull-board/api']} on express {v['express']}, "
        f"Node {v['node']}; data written by bullmq {v['bullmq']} (ioredis {v['ioredis']}); "
        f"redis-server {v['redis-server']}.",
        "- Times are median / p95 in ms of wall time per request on a keep-alive connection, requests "
        "alternating between the servers. Commands are every `cmdstat_*` call of INFO commandstats "
        "(commands run inside Lua scripts included) per request.",
        "",
    ]
    overview = {name: data for name, data in results.items() if name.startswith("overview-")}
    if overview:
        lines += [
            "### Overview / queue list (N queues x 10 waiting jobs)",
            "Goals at 200 queues: time ratio ≤ 0.1, commands ratio ≤ 0.01.",
            "",
            "| queues | ours `GET /queues/` | ours `GET /queues/api/queues/` | Bull Board "
            "`/api/queues` | Bull Board, one shared connection | time: ours HTML ÷ Bull Board | "
            "commands: ours HTML / ours API / Bull Board / shared | commands: ours ÷ Bull Board |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for data in sorted(overview.values(), key=lambda item: int(item["queues"])):
            t = data["timing"]
            c = {label: entry["commands_per_request"] for label, entry in data["commands"].items()}
            lines.append(
                f"| {data['queues']:,} | {_ms(t['ours-html'])} | {_ms(t['ours-api'])} | "
                f"{_ms(t['bullboard'])} | {_ms(t['bullboard-shared'])} | "
                f"{_ratio(t['ours-html']['median_ms'], t['bullboard']['median_ms'], 3)} | "
                f"{c['ours-html']:,.0f} / {c['ours-api']:,.0f} / {c['bullboard']:,.0f} / "
                f"{c['bullboard-shared']:,.0f} | {_ratio(c['ours-html'], c['bullboard'], 3)} |"
            )
        lines.append("")
    jobs = sorted(
        (data for name, data in results.items() if name.startswith("jobs-")), key=lambda d: int(d["jobs"])
    )
    if jobs:
        lines += [
            "### One queue's job list: completed, 25 per page",
            "",
            "Page 5 again and again (`page 5`), then pages never asked for before (`new pages`: 6, 7, …, "
            "so nothing of them is rendered or cached on our side yet). `ours partial` is what paging "
            "sends from our queue page (htmx); `ours HTML` a full page load; Bull Board's UI renders its "
            "JSON in the browser. CPU is the server process's CPU time per request, all threads.",
            "",
            "| completed jobs | request | page 5 | new pages | server CPU ms | Redis commands |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for data in jobs:
            for label, title in JOB_TARGETS.items():
                lines.append(
                    f"| {data['jobs']:,} | {title} | {_ms(data['timing'][label])} | "
                    f"{_ms(data['new_pages'][label])} | {data['cpu_ms_per_request'][label]:.2f} | "
                    f"{data['commands'][label]['commands_per_request']:,.0f} |"
                )
        lines += [
            "",
            "Same 25 ids as Bull Board: "
            + ", ".join(f"{data['jobs']:,}: {'yes' if data['same_ids'] else 'NO'}" for data in jobs)
            + ".",
        ]
        if len(jobs) > 1:
            small, large = jobs[0], jobs[-1]
            parts = [
                f"{label} {_ratio(large['timing'][label]['median_ms'], small['timing'][label]['median_ms'])}"
                for label in JOB_TARGETS
            ]
            lines += ["", f"Median at {large['jobs']:,} ÷ at {small['jobs']:,}: " + ", ".join(parts) + "."]
        lines.append("")
        clicked = [data for data in jobs if data.get("paging_in_chromium")]
        if clicked:
            lines += [
                "### Paging in Chromium: click on the next page until it is on screen",
                "",
                "What the operator waits for: Bull Board fetches JSON and renders its job cards in the "
                "browser, ours fetches HTML that htmx swaps in. One Chromium, both dashboards at 25 jobs "
                "a page, clicked in turn, from the click to the next page's first job in the DOM and one "
                "frame drawn (bench/paging.py).",
                "",
                "| completed jobs | pages | ours | Bull Board | ours ÷ Bull Board |",
                "|---:|---|---:|---:|---:|",
            ]
            for data in clicked:
                ours, theirs = data["paging_in_chromium"]["ours"], data["paging_in_chromium"]["bullboard"]
                lines.append(
                    f"| {data['jobs']:,} | {ours['pages']} | {_ms(ours)} | {_ms(theirs)} | "
                    f"{_ratio(ours['median_ms'], theirs['median_ms'])} |"
                )
            lines.append("")
    detail = results.get("job-detail")
    if detail:
        lines += [
            f"### Job detail: one job with {detail['data_bytes'] / 1024 / 1024:.1f} MiB of data",
            "",
            "| request | body sent | time | Redis commands |",
            "|---|---:|---:|---:|",
        ]
        for label, entry in detail["timing"].items():
            lines.append(
                f"| {label} `{entry['path']}` | {_kib(entry['body_bytes'])} | {_ms(entry)} | "
                f"{detail['commands'][label]['commands_per_request']:,.0f} |"
            )
        lines.append("")
    viewers = results.get("viewers")
    if viewers:
        lines += [
            f"### Open viewers ({viewers['queues']} queues, {viewers['viewer_seconds']:g} s per window, "
            f"mode `{viewers['mode']}`)",
            "",
            VIEWER_MODE_TEXT.get(viewers["mode"], ""),
            "",
            f"Idle (no viewer): {viewers['idle']['commands_per_second']:g} commands/s.",
            "",
            "| viewers | ours: commands/s | ours: requests, median / p95 ms | Bull Board: commands/s | "
            "Bull Board: requests, median / p95 ms |",
            "|---:|---:|---:|---:|---:|",
        ]
        for ours, theirs in zip(viewers["ours"], viewers["bullboard"], strict=True):
            lines.append(
                f"| {ours['viewers']} | {ours['commands_per_second']:,.1f} | {ours['requests']}, "
                f"{_ms(ours['request_time'])} | {theirs['commands_per_second']:,.1f} | {theirs['requests']}, "
                f"{_ms(theirs['request_time'])} |"
            )
        lines.append("")
    lines += [
        "### Memory (VmRSS after the scenario's runs)",
        "",
        "| scenario | ours (daphne) | Bull Board (node) |",
        "|---|---:|---:|",
    ]
    for name, data in results.items():
        rss = data.get("rss_kib_after")
        if rss:
            lines.append(
                f"| {name} | {rss['ours'] / 1024:,.0f} MiB | {rss['bullboard'] / 1024:,.0f} MiB"
                + (
                    f" (shared conn.: {rss['bullboard-shared'] / 1024:,.0f} MiB)"
                    if "bullboard-shared" in rss
                    else ""
                )
                + " |"
            )
    lines += ["", "### Goals of issue 6", "", *goal_lines(results), ""]
    return "\n".join(lines)


VIEWER_MODE_TEXT = {
    "ws": "Our tabs load the overview once and keep its live socket open (pushes counted, no polling); "
    "Bull Board's tabs poll its queue list every 5 s, as its UI does. The data does not change during "
    "the windows: bench/live.py measures both under steady traffic.",
    "poll": "Every tab, ours and Bull Board's, polls its queue list every 5 s (our pages' fallback when "
    "websockets are blocked).",
}


def ratio_text(ours: float, theirs: float) -> str:
    """`1/N`, or `0` when ours is nothing at all."""
    return f"1/{theirs / ours:.1f}" if ours else "0"


def goal_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """Each goal of issue 6 with the measured numbers and whether it holds."""
    lines = []

    def verdict(ok: bool) -> str:
        return "**holds**" if ok else "**does not hold**"

    overviews = [data for name, data in results.items() if name.startswith("overview-")]
    reference = next((data for data in overviews if int(data["queues"]) == 200), None)
    if reference is None and overviews:
        reference = max(overviews, key=lambda data: int(data["queues"]))
    if reference:
        t, c = reference["timing"], reference["commands"]
        for label in ("ours-html", "ours-api"):
            ours_ms, theirs_ms = t[label]["median_ms"], t["bullboard"]["median_ms"]
            ours_c, theirs_c = c[label]["commands_per_request"], c["bullboard"]["commands_per_request"]
            lines.append(
                f"- Overview of {reference['queues']} queues ({label}) in ≤ 1/10 of Bull Board's time: "
                f"{ours_ms:.1f} ms vs {theirs_ms:.1f} ms = 1/{theirs_ms / ours_ms:.1f} — "
                f"{verdict(ours_ms * 10 <= theirs_ms)}."
            )
            lines.append(
                f"- … and ≤ 1/100 of its Redis commands: {ours_c:,.2f} vs {theirs_c:,.0f} = "
                f"{ratio_text(ours_c, theirs_c)} — {verdict(ours_c * 100 <= theirs_c)}."
            )
    jobs = sorted(
        (data for name, data in results.items() if name.startswith("jobs-")), key=lambda d: int(d["jobs"])
    )
    if len(jobs) > 1:
        small, large = jobs[0], jobs[-1]
        for label in ("ours-partial", "ours-api", "ours-html"):
            a, b = small["timing"][label]["median_ms"], large["timing"][label]["median_ms"]
            theirs = large["timing"]["bullboard"]["median_ms"]
            fresh, theirs_fresh = (
                large["new_pages"][label]["median_ms"],
                large["new_pages"]["bullboard"]["median_ms"],
            )
            lines.append(
                f"- Job page ({label}) at {large['jobs']:,} ≤ 1.5x at {small['jobs']:,}: {b:.1f} ms vs "
                f"{a:.1f} ms = {b / a:.2f}x — {verdict(b <= 1.5 * a)}."
            )
            lines.append(
                f"- … and no slower than Bull Board's job list at {large['jobs']:,}: {b:.1f} ms vs "
                f"{theirs:.1f} ms — {verdict(b <= theirs)}; on pages never shown before {fresh:.1f} ms vs "
                f"{theirs_fresh:.1f} ms — {verdict(fresh <= theirs_fresh)}."
            )
    clicked = large.get("paging_in_chromium") if len(jobs) > 1 else None
    if clicked:
        ours_ms, theirs_ms = clicked["ours"]["median_ms"], clicked["bullboard"]["median_ms"]
        lines.append(
            f"- … and as the operator sees it, click to next page in Chromium at {large['jobs']:,}: "
            f"{ours_ms:.1f} ms vs {theirs_ms:.1f} ms — {verdict(ours_ms <= theirs_ms)}."
        )
    detail = results.get("job-detail")
    if detail:
        for label in ("ours-job-html", "ours-job-api"):
            sent = detail["timing"][label]["body_bytes"]
            lines.append(
                f"- Job detail with {detail['data_bytes'] / 1024 / 1024:.1f} MiB of data under 100 KB sent "
                f"({label}): {sent:,} bytes — {verdict(sent < 100_000)}."
            )
    viewers = results.get("viewers")
    if viewers and len(viewers["ours"]) > 1:
        one, many = viewers["ours"][0], viewers["ours"][-1]
        ratio = many["commands_per_second"] / one["commands_per_second"] if one["commands_per_second"] else 0
        lines.append(
            f"- With {many['viewers']} viewers no more than 1.2x the Redis commands/s of {one['viewers']} "
            f"(mode `{viewers['mode']}`): {many['commands_per_second']:,.1f} vs "
            f"{one['commands_per_second']:,.1f} = {ratio:.1f}x — {verdict(ratio <= 1.2)}" + "."
        )
    return lines


def update_benchmarks_md(path: Path, section: str) -> None:
    """Replace the generated section of BENCHMARKS.md (between its markers), or append it."""
    block = f"{START_MARK}\n{section}\n{END_MARK}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if START_MARK in text and END_MARK in text:
        head, rest = text.split(START_MARK, 1)
        tail = rest.split(END_MARK, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + block + "\n"
    path.write_text(text)
