"""Where our overview's time goes: each phase timed on its own, then cProfile of whole requests.

Run by bench/run.py in a child process with the site's environment (DATABASE_URL, REDIS_URL, …) and
the Redis of an overview scenario; writes <out>.json (phases and the top functions) and <out>.txt
(the pstats listings). In-process: Django's AsyncClient drives the same ASGI application daphne
serves, minus the HTTP parsing and the socket.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import django


def median_ms(samples: list[float]) -> float:
    """Median of seconds, in milliseconds."""
    return round(statistics.median(samples) * 1000, 3)


async def timed(rounds: int, call: Callable[[], Awaitable[object]]) -> float:
    """Median wall time of `rounds` awaits of `call`, in ms (after one warm-up)."""
    await call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return median_ms(samples)


async def phases(rounds: int) -> dict[str, Any]:
    """Median ms of each step of an overview, measured separately."""
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from django.http import JsonResponse
    from django.template.loader import render_to_string
    from django.test import AsyncClient, RequestFactory

    from dashboard import registry, serializers
    from dashboard.overview import all_counts, group, totals
    from queues.counts import COUNTS, parse_counts
    from queues.scripts import run_pipeline
    from queues.states import STATES

    user = await get_user_model().objects.aget(username="bench")
    client = AsyncClient()
    await client.aforce_login(user)
    queues = await registry.all_queues()
    redis = registry.client("default")
    rows = await all_counts(queues)

    async def raw_pipeline() -> object:
        def build(pipe: Any) -> None:
            for queue in queues:
                COUNTS.queue(pipe, [queue.key_prefix], [])

        return await run_pipeline(redis, build, [COUNTS])

    replies: list[Any] = await raw_pipeline()  # type: ignore[assignment]

    async def parse() -> object:
        return [parse_counts(queue, reply) for queue, reply in zip(queues, replies, strict=True)]

    request = RequestFactory().get("/queues/")
    request.user = user
    context = {
        "groups": group(rows),
        "totals": totals(rows),
        "queue_count": len(rows),
        "states": STATES,
        "query": "",
    }

    async def context_build() -> object:
        return {"groups": group(rows), "totals": totals(rows)}

    def render_page() -> str:
        return render_to_string("bullmq_dashboard/overview.html", context, request)

    def render_partial() -> str:
        return render_to_string("bullmq_dashboard/partials/overview_groups.html", context, request)

    def api_json() -> bytes:
        return JsonResponse({"queues": [serializers.queue_json(row) for row in rows]}).content

    async def sync_call(function: Callable[[], object]) -> object:
        return function()

    stats_before: dict[str, Any] = await redis.info("commandstats")
    await raw_pipeline()
    stats_after: dict[str, Any] = await redis.info("commandstats")
    evalsha = {
        key: stats_after[f"cmdstat_{key}"]["usec"] - stats_before.get(f"cmdstat_{key}", {}).get("usec", 0)
        for key in ("evalsha",)
    }
    return {
        "queues": len(queues),
        "median_ms": {
            "discovery (cached list)": await timed(rounds, registry.all_queues),
            "counts: all_counts() (pipeline + parse)": await timed(rounds, lambda: all_counts(queues)),
            "counts: pipeline of EVALSHA only": await timed(rounds, raw_pipeline),
            "counts: parse replies only": await timed(rounds, parse),
            "group() + totals()": await timed(rounds, context_build),
            "render overview.html": await timed(rounds, lambda: sync_call(render_page)),
            "render partials/overview_groups.html": await timed(rounds, lambda: sync_call(render_partial)),
            "API JSON (queue_json + JsonResponse)": await timed(rounds, lambda: sync_call(api_json)),
            "whole request GET /queues/ (AsyncClient)": await timed(rounds, lambda: client.get("/queues/")),
            "whole request, htmx partial": await timed(
                rounds, lambda: client.get("/queues/", headers={"HX-Request": "true"})
            ),
            "whole request GET /queues/api/queues/": await timed(
                rounds, lambda: client.get("/queues/api/queues/")
            ),
            "session + user lookup (sync_to_async)": await timed(
                rounds, lambda: sync_to_async(get_user_model().objects.get)(username="bench")
            ),
        },
        "redis_server_usec_per_overview": evalsha,
        "html_bytes": len(render_page().encode()),
        "partial_bytes": len(render_partial().encode()),
    }


_thread_profile: cProfile.Profile | None = None


def _enable_here() -> None:
    global _thread_profile
    _thread_profile = cProfile.Profile()
    _thread_profile.enable()


def _disable_here() -> None:
    assert _thread_profile is not None
    _thread_profile.disable()


async def profiled_requests(rounds: int, path: str, headers: dict[str, str]) -> pstats.Stats:
    """cProfile of `rounds` whole requests in both threads that serve them.

    An async Django view runs on the event loop, but the session and user lookups and the rendering
    of a TemplateResponse run in asgiref's thread-sensitive executor: a profiler is started in that
    thread too (by a call that runs there) and the two are added up.
    """
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from django.test import AsyncClient

    user = await get_user_model().objects.aget(username="bench")
    client = AsyncClient()
    await client.aforce_login(user)
    await client.get(path, headers=headers)
    loop_profile = cProfile.Profile()
    await sync_to_async(_enable_here, thread_sensitive=True)()
    loop_profile.enable()
    for _ in range(rounds):
        await client.get(path, headers=headers)
    loop_profile.disable()
    await sync_to_async(_disable_here, thread_sensitive=True)()
    assert _thread_profile is not None
    stats = pstats.Stats(loop_profile)
    stats.add(_thread_profile)
    return stats


def top(stats: pstats.Stats, key: str, limit: int) -> tuple[str, list[dict[str, Any]]]:
    """The pstats listing sorted by `key` and its first rows as data."""
    stream = io.StringIO()
    stats.stream = stream  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats(key).print_stats(limit)
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    ordered = sorted(raw.items(), key=lambda item: -(item[1][2] if key == "tottime" else item[1][3]))
    for (filename, line, function), (_, calls, tottime, cumtime, _) in ordered[:limit]:
        rows.append(
            {
                "function": f"{filename}:{line}({function})",
                "calls": calls,
                "tottime_ms": round(tottime * 1000, 2),
                "cumtime_ms": round(cumtime * 1000, 2),
            }
        )
    return stream.getvalue(), rows


def main() -> None:
    """Measure phases, profile whole requests, write <out>.json and <out>.txt."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    django.setup()

    from queues.connections import close_clients

    async def all_of_it() -> tuple[dict[str, Any], pstats.Stats, pstats.Stats]:
        try:
            measured = await phases(args.rounds)
            page = await profiled_requests(args.rounds, "/queues/", {})
            api = await profiled_requests(args.rounds, "/queues/api/queues/", {})
            return measured, page, api
        finally:
            await close_clients()

    measured, page, api = asyncio.run(all_of_it())
    text = []
    result: dict[str, Any] = {"phases": measured, "rounds": args.rounds}
    for name, stats in (("GET /queues/", page), ("GET /queues/api/queues/", api)):
        for key in ("tottime", "cumulative"):
            listing, rows = top(stats, key, 40)
            text.append(f"===== {name}: {args.rounds} requests, sorted by {key} =====\n{listing}")
            result[f"{name} top by {key}"] = rows[:15]
    args.out.with_suffix(".txt").write_text("\n".join(text))
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
