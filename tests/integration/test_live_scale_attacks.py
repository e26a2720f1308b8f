"""Attacks on issue 17's watcher changes: the resync in slices, gathered XREAD wakes and the "more"
marker of events.lua, with a connection down or flapping and with odd streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

import queues.live.refresh as refresh_module
from queues.connections import ConnectionSettings, close_clients
from queues.live.count_cache import QUIET_RESYNC_FACTOR, CountCache
from queues.live.interest import Interest, Viewers
from queues.live.options import WatcherOptions
from queues.live.pending import PendingWork
from queues.live.reachability import Reachability
from queues.live.refresh import RESYNC_SLICES, LiveUpdate, Refresher
from queues.live.watcher import EventWatcher
from queues.models import QueueRef
from queues.throwaway_redis import free_port
from tests.support.builders import add_jobs

EMAIL = QueueRef("a", "bull", "email")


async def _noop(*_args: Any) -> None:
    return None


def _refresher(
    options: WatcherOptions, tailed: Callable[[QueueRef], bool] = lambda queue: False
) -> Refresher:
    pending = PendingWork()
    return Refresher(
        {},
        options,
        Viewers([], options.max_queues),
        pending,
        CountCache(options),
        Reachability(pending),
        _noop,
        _noop,
        asyncio.Event(),
        tailed=tailed,
    )


# ----------------------------------------------------------------------------- resync in slices


@pytest.mark.parametrize("count", [10, 50, 2000])
def test_every_viewed_queue_is_recounted_within_about_one_resync_interval_after_a_burst(count: int) -> None:
    """All viewed queues were counted at the same moment (a page opened: its request counts every row;
    Redis came back: a full resync). Slices every interval/10 then re-count each one: the stalest must
    not wait much longer than RESYNC_INTERVAL (a trimmed stream's count heals only this way).

    Simulated on _resync_slice with exact tick times (the loop's ticks are interval/10 plus the refresh's
    own duration, so real waits are longer still)."""
    period = 10.0
    refresher = _refresher(WatcherOptions(resync_interval=period))
    queues = {QueueRef("a", "bull", f"q{i:05}") for i in range(count)}
    for queue in queues:
        refresher._counted_at[queue] = 0.0
    tick = period / RESYNC_SLICES
    worst = 0.0
    now = 0.0
    for _ in range(5 * RESYNC_SLICES):
        now += tick
        for queue in refresher._resync_slice(queues, now):
            worst = max(worst, now - refresher._counted_at[queue])
            refresher._counted_at[queue] = now
    worst = max(worst, *(now - refresher._counted_at[q] for q in queues))
    assert worst <= 1.2 * period, f"a queue went {worst / period:.1f} resync intervals without a count"


@pytest.mark.parametrize("count", [10, 50, 2000])
def test_quiet_queues_are_recounted_every_few_intervals_and_the_others_every_interval(count: int) -> None:
    """Half the viewed queues are quiet (tailed, no event since their count): each is re-counted within
    about QUIET_RESYNC_FACTOR resync intervals, the others within about one, and the quiet ones cost
    about 1/QUIET_RESYNC_FACTOR of the counts they cost before."""
    period = 10.0
    queues = {QueueRef("a", "bull", f"q{i:05}") for i in range(count)}
    quiet = {queue for queue in queues if int(queue.name[1:]) % 2}
    refresher = _refresher(WatcherOptions(resync_interval=period), tailed=quiet.__contains__)
    for queue in queues:
        refresher._counted_at[queue] = 0.0
    tick = period / RESYNC_SLICES
    worst = {True: 0.0, False: 0.0}
    counted = {True: 0, False: 0}
    now = 0.0
    ticks = 12 * RESYNC_SLICES
    for _ in range(ticks):
        now += tick
        for queue in refresher._resync_slice(queues, now):
            worst[queue in quiet] = max(worst[queue in quiet], now - refresher._counted_at[queue])
            counted[queue in quiet] += 1
            refresher._counted_at[queue] = now
    for queue in queues:
        worst[queue in quiet] = max(worst[queue in quiet], now - refresher._counted_at[queue])
    assert worst[False] <= 1.2 * period, f"a busy queue went {worst[False] / period:.1f} intervals"
    assert worst[True] <= 1.2 * period * QUIET_RESYNC_FACTOR, f"a quiet one {worst[True] / period:.1f}"
    # Over 12 intervals each quiet queue is counted about 12 / QUIET_RESYNC_FACTOR times, not 12.
    per_quiet = counted[True] / max(1, len(quiet))
    assert per_quiet <= 12 / QUIET_RESYNC_FACTOR + 1.5, per_quiet


# ------------------------------------------------------------------- a second connection down


@pytest.fixture
async def recorded(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[tuple[str, int]]]:
    """Every fetch_counts call of the refresher as (alias, queues counted)."""
    calls: list[tuple[str, int]] = []
    real = refresh_module.fetch_counts  # type: ignore[attr-defined]

    async def spy(client: Redis, queues: list[QueueRef], now: int | None = None) -> Any:
        if queues:
            calls.append((queues[0].connection, len(queues)))
        return await real(client, queues, now)

    monkeypatch.setattr(refresh_module, "fetch_counts", spy)
    yield calls
    await close_clients()


def _two_connections(redis_url: str) -> dict[str, ConnectionSettings]:
    down = f"redis://127.0.0.1:{free_port()}/0"
    return {
        "a": ConnectionSettings("a", redis_url),
        "b": ConnectionSettings("b", down, connect_timeout=0.2, socket_timeout=0.2),
    }


async def test_a_connection_down_does_not_turn_every_resync_into_a_full_one(
    redis_url: str, recorded: list[tuple[str, int]]
) -> None:
    """Connection b is down; a has 40 viewed queues. The slice resync counts about a tenth of a's queues
    a tick: a failed slice (b's queue in it) puts back only b's queues, it does not turn the next
    refresh into a full resync of every connection."""
    a_queues = tuple(QueueRef("a", "bull", f"q{i:02}") for i in range(40))
    options = WatcherOptions(resync_interval=1.0, backoff_min=0.05, backoff_max=0.2)
    watcher = EventWatcher(_two_connections(redis_url), _noop, options=options)
    await watcher.start()
    try:
        await watcher.watch(Interest(queues=a_queues), token="page")
        await watcher.watch(Interest(queues=(QueueRef("b", "bull", "x"),)))
        await asyncio.sleep(4.0)
    finally:
        await asyncio.wait_for(watcher.stop(), 10)
    a_calls = [n for alias, n in recorded if alias == "a"]
    full = [n for n in a_calls[1:] if n >= len(a_queues)]  # the first one answers the page's request
    assert not full, f"{len(full)} full re-counts of a's {len(a_queues)} queues in 4 s: {a_calls}"


async def test_a_connection_coming_back_resyncs_only_its_own_queues(
    redis_url: str, recorded: list[tuple[str, int]]
) -> None:
    """b flaps: each time it comes back, only b's viewed queues are re-counted at once, not a's 40."""
    a_queues = tuple(QueueRef("a", "bull", f"q{i:02}") for i in range(40))
    options = WatcherOptions(resync_interval=10.0)
    connections = {"a": ConnectionSettings("a", redis_url), "b": ConnectionSettings("b", redis_url)}
    watcher = EventWatcher(connections, _noop, options=options)
    await watcher.start()
    try:
        await watcher.watch(Interest(queues=a_queues), token="page")
        await watcher.watch(Interest(queues=(QueueRef("b", "bull", "x"),)))
        await asyncio.sleep(0.5)
        recorded.clear()
        for _ in range(3):  # b goes away and comes back (as a reader's failed XREAD then a good one)
            await watcher._reachability.set_down("b", OSError("flap"))
            await watcher._reachability.set_up("b")
            await asyncio.sleep(0.3)
    finally:
        await asyncio.wait_for(watcher.stop(), 10)
    a_full = [n for alias, n in recorded if alias == "a" and n >= len(a_queues)]
    assert not a_full, f"b's flaps re-counted all of a's queues {len(a_full)} times: {recorded}"


# ------------------------------------------------------------------------------ odd streams


async def _arrivals(redis_url: str, prepare: Any, within: float = 4.0) -> list[LiveUpdate]:
    """Updates with email's arrivals after `prepare(redis)` ran and one job was added."""
    published: list[LiveUpdate] = []

    async def publish(update: LiveUpdate) -> None:
        published.append(update)

    options = WatcherOptions(resync_interval=1.0)
    watcher = EventWatcher({"a": ConnectionSettings("a", redis_url)}, publish, options=options)
    await add_jobs(redis_url, "email", [("x", {}, {})])
    raw = Redis.from_url(redis_url)
    await watcher.start()
    try:
        await watcher.watch(Interest(queues=(EMAIL,)), token="page")
        await asyncio.sleep(0.5)
        await prepare(raw)
        await asyncio.sleep(0.5)
        published.clear()
        await add_jobs(redis_url, "email", [("x", {}, {})])
        for _ in range(int(within / 0.05)):
            await asyncio.sleep(0.05)
            if any(EMAIL in u.arrivals for u in published):
                break
    finally:
        await asyncio.wait_for(watcher.stop(), 10)
        await raw.aclose()
        await close_clients()
    return [u for u in published if EMAIL in u.arrivals]


async def test_odd_entries_do_not_stop_the_reader(redis_url: str) -> None:
    """Entries without fields the watcher uses, with binary and 100 KB values, one of 2 MB, and 1,200
    small ones (more than a batch): the job added after them still arrives."""

    async def prepare(raw: Redis) -> None:
        pipe = raw.pipeline(transaction=False)
        pipe.xadd("bull:email:events", {"other": "x"})
        pipe.xadd("bull:email:events", {b"event": b"\xff\xfe", b"jobId": b"\x00" * 100_000})
        pipe.xadd("bull:email:events", {"event": "progress", "jobId": "j", "data": "x" * 2_000_000})
        pipe.xadd("bull:email:events", {"jobId": "only", "event": "x" * 100_000, "more": "more"})
        for i in range(1200):
            pipe.xadd("bull:email:events", {"event": "progress", "jobId": str(i)})
        await pipe.execute()

    assert await _arrivals(redis_url, prepare)


async def test_a_stream_replaced_by_another_type_and_restored_is_read_again(redis_url: str) -> None:
    async def prepare(raw: Redis) -> None:
        await raw.delete("bull:email:events")
        await raw.set("bull:email:events", "not a stream")
        await asyncio.sleep(0.5)
        await raw.delete("bull:email:events")

    assert await _arrivals(redis_url, prepare, within=4.0)


async def _commands(raw: Redis) -> int:
    stats: dict[str, Any] = await raw.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


async def test_odd_stream_states_do_not_make_the_reader_spin(redis_url: str) -> None:
    """Idle cost with a clean stream versus with a stream that is a string, a far-future offset and a
    1,000-entry stream of 2 KB entries trimmed to 10 mid-read: at most a few times the clean cost."""
    options = WatcherOptions(resync_interval=1.0)
    watcher = EventWatcher({"a": ConnectionSettings("a", redis_url)}, _noop, options=options)
    odd = [QueueRef("a", "bull", name) for name in ("email", "typed", "future", "trimmed")]
    for queue in odd:
        await add_jobs(redis_url, queue.name, [("x", {}, {})])
    raw = Redis.from_url(redis_url)
    await watcher.start()
    try:
        await watcher.watch(Interest(queues=tuple(odd)), token="page")
        await asyncio.sleep(1.0)
        before = await _commands(raw)
        await asyncio.sleep(2.0)
        clean = await _commands(raw) - before
        await raw.delete("bull:typed:events")
        await raw.set("bull:typed:events", "x")
        await raw.xadd("bull:future:events", {"event": "waiting"}, id="99999999999999-0")
        pipe = raw.pipeline(transaction=False)
        for _ in range(1000):
            pipe.xadd("bull:trimmed:events", {"event": "progress", "data": "x" * 2048})
        pipe.xtrim("bull:trimmed:events", maxlen=10)
        await pipe.execute()
        await asyncio.sleep(1.0)
        before = await _commands(raw)
        await asyncio.sleep(2.0)
        attacked = await _commands(raw) - before
    finally:
        await asyncio.wait_for(watcher.stop(), 10)
        with contextlib.suppress(Exception):
            await raw.aclose()
        await close_clients()
    assert attacked <= 3 * clean + 30, (clean, attacked)


async def test_no_entry_can_forge_or_lose_the_more_marker(redis_url: str, redis_client: Redis) -> None:
    """events.lua answers triples, plus "more" only when the byte budget stopped the read: entries with
    missing, duplicated, binary or 'more'-valued fields never make the list 1 mod 3 under the budget."""
    from queues.live.streams import EVENTS

    key = "bull:forge:events"
    entries: list[dict[Any, Any]] = [
        {"x": "more"},
        {"event": "more"},
        {"jobId": "more", "event": "more", "more": "more"},
        {b"event": b"\xff", b"jobId": b"\x00"},
        {"event": "x" * 5000, "jobId": "y" * 5000},
    ]
    for fields in entries:
        await redis_client.xadd(key, fields)
    client = Redis.from_url(redis_url)
    try:
        (flat,) = await EVENTS.call(client, [key], [500, "0-0"])
        assert len(flat) == 3 * len(entries), flat
        assert all(len(value) <= 1024 for value in flat)
        await redis_client.xadd(key, {"event": "progress", "data": "x" * 1_100_000})
        for _ in range(3):
            await redis_client.xadd(key, {"event": "progress", "jobId": "after"})
        (flat,) = await EVENTS.call(client, [key], [500, "0-0"])
        assert len(flat) % 3 == 1 and flat[-1] == b"more", len(flat)
    finally:
        await client.aclose()
