"""Garbage in, no garbage out: Hypothesis writes random and malformed BullMQ job hashes and queue keys into
the test Redis (tests/support/garbage.py says what), and every page, partial, API answer, the Prometheus
scrape and the live fragments must still answer below 500, in UTF-8, with no markup from the data, within a
bounded size and a bounded number of Redis commands.

Examples are derandomized and no example database is kept, so CI runs the same examples every time.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from django.test import AsyncClient, override_settings
from django.urls import resolve
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from dashboard import links
from dashboard.alerts import alerts_url
from dashboard.conf import DEFAULTS
from dashboard.monitor import Monitor
from dashboard.registry import reset_directories
from queues.keys import not_a_job
from queues.models import QueueRef
from queues.parsing import identifier
from queues.search import SearchLimits
from queues.states import BY_NAME
from tests.support.dashboard import dashboard_settings
from tests.support.garbage import (
    HUGE,
    JOB_FIELDS,
    MARK,
    MONSTERS,
    Answer,
    GarbageJob,
    GarbageQueue,
    ServerClient,
    garbage_queues,
    hostile_text,
    injected_markup,
    monster,
    problems_of,
    text_of,
    write_queue,
)
from tests.support.live import FAST, IN_MEMORY, LiveSocket, cookie_of
from tests.support.urls import dashboard_url, socket_path, ws_path

pytestmark = pytest.mark.host_compatible


def garbage_settings(examples: int) -> settings:
    """Reproducible in CI (derandomized, no example database) and sized so the module runs in < 120 s."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        # No shrinking: one example makes ~30 requests, and shrinking one took over 5 minutes (past the
        # per-test timeout). A failure names the URL and the problem; the example is printed as drawn.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        # The client and Redis fixtures are shared by the examples on purpose: each example empties the
        # Redis and forgets discovered queues itself (fresh()).
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# A page or API answer, even of a job holding 10 MB values and 100,000 log lines.
MAX_BODY = 2 * 1024 * 1024
# Commands per request, those inside the dashboard's scripts included (INFO commandstats), whatever the
# lists, logs and streams hold; views that scan a stated number of jobs may spend 3 commands a job more.
MAX_COMMANDS = 1500
_GROUPS = DEFAULTS["ERROR_GROUPS"]
# Jobs a view may scan (the dashboard's own bounds), with at most two queues in Redis (see GarbageQueue).
SCANNED_JOBS = {
    "errors": min(2, _GROUPS["MAX_QUEUES"]) * _GROUPS["SCAN_LIMIT"],
    "queue-errors": _GROUPS["SCAN_LIMIT"],
    "api-errors": _GROUPS["SCAN_LIMIT"],
    "overview": min(2, _GROUPS["OVERVIEW_QUEUES"]) * _GROUPS["OVERVIEW_SCAN_LIMIT"],
    "search": SearchLimits().max_scan,
    "api-search": SearchLimits().max_scan,
}


def view_of(url: str) -> str:
    """The URL name of the view that answers `url`."""
    return resolve(urlsplit(url).path).url_name or "?"


def command_budget(url: str) -> int:
    """Redis commands a request may make."""
    return MAX_COMMANDS + 3 * SCANNED_JOBS.get(view_of(url), 0)


# What Redis may send for one request: values are cut inside Redis at DISPLAY_LIMIT (64 KB) and a page view
# copies at most ReadLimits.budget_bytes (8 MB); a 10 MB value must never cross the wire for a page.
MAX_SENT = 8 * 1024 * 1024 + 256 * 1024
_serial = itertools.count()


class Figures:
    """The largest body, command count and Redis reply size seen per view, printed after the module (-s)."""

    def __init__(self) -> None:
        self.most: dict[str, tuple[int, int, int]] = {}
        self.answers = 0
        self.fragments = 0
        self.alerts_fired = 0

    def note(self, answer: Answer, htmx: bool) -> None:
        view = view_of(answer.url) + (" (htmx)" if htmx else "")
        seen = self.most.get(view, (0, 0, 0))
        self.most[view] = (
            max(seen[0], len(answer.body)),
            max(seen[1], answer.commands),
            max(seen[2], answer.sent_bytes),
        )
        self.answers += 1

    def report(self) -> str:
        lines = [f"{self.answers} answers; per view the most body bytes, Redis commands, Redis reply bytes:"]
        lines += [f"  {view:24} {b:>10,} {c:>6,} {s:>11,}" for view, (b, c, s) in sorted(self.most.items())]
        lines.append(f"the largest live fragment message: {self.fragments:,} bytes")
        lines.append(f"alerts fired over malformed queues: {self.alerts_fired}")
        return "\n".join(lines)


FIGURES = Figures()


@pytest.fixture(scope="module", autouse=True)
def print_figures() -> Iterator[None]:
    started = time.monotonic()
    yield
    print(f"\n{FIGURES.report()}\nmodule took {time.monotonic() - started:.1f} s")


# Prometheus scrapes with the metrics token: a signed-in user may scrape only a few times a minute.
METRICS_TOKEN = "garbage-in-scraper"


@pytest.fixture
async def browser(client: AsyncClient, staff_user: Any, redis_url: str) -> AsyncIterator[AsyncClient]:
    """The staff user's client, with paths decoded as an ASGI server decodes them (see ServerClient)."""
    server_client = ServerClient()
    await server_client.aforce_login(staff_user)
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_url, METRICS_TOKEN=METRICS_TOKEN)):
        yield server_client


async def fresh(redis_client: Redis, queue: GarbageQueue) -> GarbageQueue:
    """Each example starts on an empty Redis and a dashboard that has not discovered any queue yet, and
    writes its queue under a name of its own: the dashboard keeps error groups, health inputs and
    sparklines per queue for some seconds, which must not answer for another example's data."""
    await redis_client.flushdb()
    reset_directories()
    return dataclasses.replace(queue, name=f"{queue.name}-{next(_serial)}")


async def redis_cost(redis_client: Redis) -> tuple[int, int]:
    """Commands Redis has run (inside scripts too) and bytes it has sent to clients, so far."""
    stats = await redis_client.info("commandstats")
    calls = sum(int(entry["calls"]) for entry in stats.values())
    sent = int((await redis_client.info("stats"))["total_net_output_bytes"])
    return calls, sent


async def fetch(client: AsyncClient, redis_client: Redis, url: str, *, htmx: bool = False) -> Answer:
    """GET a URL as a browser (or htmx) would, with what the request cost Redis: the difference of two
    measures around it, less what one measure costs (taken just before)."""
    calls_0, sent_0 = await redis_cost(redis_client)
    calls_1, sent_1 = await redis_cost(redis_client)
    headers = {"HX-Request": "true"} if htmx else {}
    if url.endswith("/metrics"):
        headers["Authorization"] = f"Bearer {METRICS_TOKEN}"
    response = await client.get(url, headers=headers)
    calls_2, sent_2 = await redis_cost(redis_client)
    return Answer(
        url=url,
        status=response.status_code,
        content_type=response.get("Content-Type", ""),
        csp=response.get("Content-Security-Policy", ""),
        nosniff=response.get("X-Content-Type-Options", ""),
        body=response.content,
        commands=(calls_2 - calls_1) - (calls_1 - calls_0),
        sent_bytes=(sent_2 - sent_1) - (sent_1 - sent_0),
    )


def queue_ref(queue: GarbageQueue) -> QueueRef:
    return QueueRef("default", queue.prefix, queue.name)


def job_urls(ref: QueueRef, job: GarbageJob) -> list[tuple[str, bool]]:
    """Every URL about one job: page, API, log pager partial, flow page and API, lookup; (url, htmx)."""
    job_id = identifier(job.job_id)[0]  # not UTF-8: the id as a person could type it (no such job)
    return [
        (links.job_url(ref, job_id), False),
        (links.job_api_url(ref, job_id), False),
        (links.logs_url(ref, job_id), True),
        (links.logs_url(ref, job_id) + "&log_page=2", True),
        (links.flow_url(ref, job_id), False),
        (links.flow_api_url(ref, job_id), False),
        (links.lookup_url(job_id), False),
    ]


def queue_urls(ref: QueueRef, states: set[str], search: str) -> list[tuple[str, bool]]:
    """Every URL about one queue that reads its jobs: pages, partials and API answers; (url, htmx)."""
    urls = [
        (links.queue_url(ref), False),
        (links.queue_url(ref), True),
        (links.queue_api_url(ref), False),
        (links.error_groups_url(ref), False),
        (links.error_groups_api_url(ref), False),
        (links.queue_metrics_url(ref), False),
        (links.queue_metrics_url(ref, "week"), False),
        (links.queue_metrics_api_url(ref), False),
        (links.schedulers_url(ref), False),
        (links.schedulers_api_url(ref), False),
        (links.health_api_url(ref), False),
        (links.workers_url(ref), False),
    ]
    for state in sorted(states):
        urls.append((links.queue_list_url(ref, state), False))
        urls.append((links.jobs_api_url(ref) + f"?state={state}", False))
    for query in ("bqx", search):
        encoded = f"?q={quote_param(query)}"
        urls.append((links.search_url(ref) + encoded, False))
        urls.append((links.search_api_url(ref) + encoded, False))
    return urls


def quote_param(value: str) -> str:
    return quote(value, safe="")


SITE_URLS = [("", False), ("", True), ("api/queues/", False), ("errors/", False), ("metrics", False)]


def check_metrics(answer: Answer, names: set[str]) -> list[str]:
    """The scrape parses as Prometheus text and names each queue exactly, hostile names included."""
    if answer.status != 200:
        return [f"{answer.url} -> {answer.status}"]
    seen = set()
    try:
        for family in text_string_to_metric_families(answer.body.decode("utf-8")):
            for sample in family.samples:
                if "queue" in sample.labels:
                    seen.add(sample.labels["queue"])
    except ValueError as exc:
        return [f"{answer.url}: not Prometheus text ({exc})"]
    return [] if names <= seen else [f"{answer.url}: queues {names - seen!r} missing from {seen!r}"]


def is_shown(queue: GarbageQueue, job: GarbageJob) -> bool:
    """A job the dashboard must show, however malformed: a job-shaped hash (BullMQ's `timestamp`) whose
    id is UTF-8 and names none of the queue's own keys."""
    job_id, utf8 = identifier(job.job_id)
    overwritten = job is queue.jobs[0] and "{job}" in queue.wrong_types
    return "timestamp" in job.fields and utf8 and not_a_job(job_id) is None and not overwritten


def not_shown(answer: Answer, job: GarbageJob) -> list[str]:
    """The job page shows a malformed job (200) and its hostile name as text, escaped, not dropped."""
    if answer.status != 200:
        return [f"{answer.url} -> {answer.status} for a job-shaped hash"]
    name, utf8 = identifier(job.fields.get("name", b""))
    if utf8 and MARK in name and MARK not in text_of(answer.body.decode("utf-8", "replace")):
        return [f"{answer.url}: the name {name!r} is not shown as text"]
    return []


async def check_raw_fields(
    client: AsyncClient, redis_client: Redis, ref: QueueRef, job: GarbageJob, shown: bool
) -> list[str]:
    """The "full value" link serves the stored bytes exactly (up to ReadLimits.raw_bytes), as sandboxed
    plain text that no browser renders: the one answer that may be neither UTF-8 nor small."""
    job_id, utf8 = identifier(job.job_id)
    if not utf8:
        return []
    problems = []
    for name in ("data", "name", "stacktrace"):
        url = links.raw_field_url(ref, job_id, name)
        answer = await fetch(client, redis_client, url)
        stored = job.fields.get(name)
        headers = (answer.content_type, answer.csp, answer.nosniff)
        if answer.status >= 500 or answer.commands > MAX_COMMANDS:
            problems.append(f"{url} -> {answer.status}, {answer.commands} commands")
        elif answer.status == 200 and (answer.body != stored or headers != RAW_HEADERS):
            problems.append(f"{url}: {len(answer.body):,} bytes, {headers!r}, stored {len(stored or b''):,}")
        elif answer.status != 200 and shown and stored is not None:
            problems.append(f"{url} -> {answer.status} for a stored field")
    return problems


RAW_HEADERS = ("text/plain; charset=utf-8", "default-src 'none'; sandbox", "nosniff")


async def visit_all(client: AsyncClient, redis_client: Redis, queue: GarbageQueue, search: str) -> list[str]:
    """Request every target about a drawn queue and its jobs; the problems found."""
    ref = queue_ref(queue)
    states = {job.state.name for job in queue.jobs}
    urls = [(dashboard_url(rest), htmx) for rest, htmx in SITE_URLS] + queue_urls(ref, states, search)
    for job in queue.jobs:
        urls += job_urls(ref, job)
    for dedup_id in queue.dedup:
        text = identifier(dedup_id)[0]
        urls += [(links.dedup_lookup_url(ref, text), False), (links.dedup_api_url(ref, text), False)]
    problems: list[str] = []
    for job in queue.jobs:
        problems += await check_raw_fields(client, redis_client, ref, job, is_shown(queue, job))
    shown = {links.job_url(ref, identifier(job.job_id)[0]): job for job in queue.jobs if is_shown(queue, job)}
    for url, htmx in urls:
        answer = await fetch(client, redis_client, url, htmx=htmx)
        FIGURES.note(answer, htmx)
        problems += problems_of(
            answer, max_body=MAX_BODY, max_commands=command_budget(url), max_sent=MAX_SENT
        )
        if url in shown:
            problems += not_shown(answer, shown[url])
        if url.endswith("/metrics"):
            problems += check_metrics(answer, {queue.name})
    return problems


@given(queue=garbage_queues(), search=hostile_text())
@garbage_settings(examples=60)
async def test_malformed_jobs_and_queue_keys_render_everywhere(
    browser: AsyncClient, redis_client: Redis, queue: GarbageQueue, search: str
) -> None:
    queue = await fresh(redis_client, queue)
    await write_queue(redis_client, queue)
    problems = await visit_all(browser, redis_client, queue, search)
    assert not problems, "\n".join(problems)


@given(
    queue=garbage_queues(max_jobs=1),
    field=st.sampled_from(sorted(JOB_FIELDS)),
    kind=st.sampled_from(MONSTERS),
)
@garbage_settings(examples=25)
async def test_monster_values_are_cut_never_copied_whole(
    browser: AsyncClient, redis_client: Redis, queue: GarbageQueue, field: str, kind: str
) -> None:
    job = queue.jobs[0]
    job.fields[field] = monster(kind)
    # The same value where the overview's health and failure recency read events, and in a scheduler.
    queue.events.append({b"event": b"failed", b"jobId": job.job_id, b"failedReason": monster(kind)})
    queue.schedulers[b"big"] = {"name": b"big", "every": b"1000", "data": monster(kind)}
    queue = await fresh(redis_client, queue)
    await write_queue(redis_client, queue)
    problems = await visit_all(browser, redis_client, queue, "bqx")
    assert not problems, "\n".join(problems)


@given(queue=garbage_queues(max_jobs=1), kind=st.sampled_from(MONSTERS))
@garbage_settings(examples=5)
async def test_a_hundred_thousand_log_lines_events_and_ids_are_paged(
    browser: AsyncClient, redis_client: Redis, queue: GarbageQueue, kind: str
) -> None:
    queue = await fresh(redis_client, queue)
    await write_queue(redis_client, queue)
    job = queue.jobs[0]
    head = f"{queue.prefix}:{queue.name}:".encode()
    logs = head + job.job_id + b":logs"
    await redis_client.delete(logs)
    line = b"<script>bqx()</script> \xff line"
    for suffix, key_type in ((b"wait", b"list"), (b"failed", b"zset"), (b"events", b"stream")):
        if await redis_client.type(head + suffix) not in (key_type, b"none"):  # drawn as another type
            await redis_client.delete(head + suffix)
    for start in range(0, HUGE, 10_000):
        await redis_client.rpush(logs, *([line] * 10_000))
        # Ids of jobs that are not there (or are the drawn job), in a list and a zset state.
        ids = [b"<b>%d</b>" % n for n in range(start, start + 10_000)]
        await redis_client.rpush(head + b"wait", *ids)
        await redis_client.zadd(head + b"failed", {job_id: n for n, job_id in enumerate(ids, start)})
        pipe = redis_client.pipeline(transaction=False)
        for n in range(start, start + 10_000):
            pipe.xadd(
                head + b"events", {b"event": b"failed", b"jobId": b"<b>%d</b>" % n, b"failedReason": line}
            )
        await pipe.execute()
    await redis_client.lset(logs, 0, monster(kind))  # type: ignore[arg-type]  # one line a monster
    problems = await visit_all(browser, redis_client, queue, "bqx")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------- alerts

# Every condition, at thresholds any queue reaches: what fires shows the queue's drawn name and numbers.
ALERT_RULES = [
    {"QUEUES": ["*"], "BACKLOG": 1, "OLDEST_WAITING": "1s", "NO_WORKERS": "1s", "STALLED": 1},
    {"QUEUES": ["*"], "FAILURE_RATE": 0.01, "MIN_FINISHED": 1, "WINDOW": "1m"},
    {"QUEUES": ["*"], "PAUSED": True, "RATE_LIMITED": True, "AT_CAPACITY": True, "STUCK": True},
]


@given(queue=garbage_queues())
@garbage_settings(examples=20)
async def test_alerts_over_malformed_queues(
    browser: AsyncClient, redis_url: str, redis_client: Redis, queue: GarbageQueue
) -> None:
    queue = await fresh(redis_client, queue)
    await write_queue(redis_client, queue)
    ref = queue_ref(queue)
    alerts = {"RULES": ALERT_RULES, "INTERVAL": 1, "EVALUATE": False}
    with override_settings(
        BULLMQ_DASHBOARD=dashboard_settings(redis_url, ALERTS=alerts, METRICS_TOKEN=METRICS_TOKEN)
    ):
        tick = await Monitor().tick()
        assert tick.failed == {}, tick.failed
        problems = []
        for url in (dashboard_url(), alerts_url(None), links.queue_url(ref), alerts_url(ref)):
            answer = await fetch(browser, redis_client, url)
            FIGURES.note(answer, False)
            problems += problems_of(
                answer, max_body=MAX_BODY, max_commands=command_budget(url), max_sent=MAX_SENT
            )
    assert not problems, "\n".join(problems)
    FIGURES.alerts_fired += len(tick.firing)


# ------------------------------------------------------------------------------------- live fragments


@pytest.fixture
def live(redis_url: str) -> Iterator[str]:
    """Fast live settings and a fresh in-memory channel layer on the test Redis."""
    with override_settings(
        CHANNEL_LAYERS=IN_MEMORY, BULLMQ_DASHBOARD=dashboard_settings(redis_url, LIVE=FAST)
    ):
        yield redis_url


async def snapshot(path: str, cookie: str, wanted: str) -> list[str]:
    """What a page's socket is sent on joining, up to the message holding `wanted`."""
    socket = LiveSocket(path, cookie)
    try:
        assert (await socket.connect())[0], path
        await socket.wait_for(wanted, within=20)
        return socket.received
    finally:
        await socket.close()


@given(queue=garbage_queues(max_jobs=1), big=st.sampled_from([None, *MONSTERS]))
@garbage_settings(examples=15)
async def test_live_fragments_of_malformed_jobs_and_queues(
    live: str, client: AsyncClient, redis_client: Redis, queue: GarbageQueue, big: str | None
) -> None:
    job = queue.jobs[0]
    if big is not None:
        job.fields.update(failedReason=monster(big), data=monster(big), timestamp=b"1")
    queue = await fresh(redis_client, queue)
    await write_queue(redis_client, queue)
    ref = queue_ref(queue)
    cookie = cookie_of(client)
    overview = await snapshot(socket_path(), cookie, 'data-state="waiting"')
    queue_page = await snapshot(ws_path(links.queue_url(ref), "state=failed"), cookie, 'data-state="failed"')
    # A job the dashboard shows gets all its live parts (state, attempts, progress, failure, logs).
    parts = 'id="log-pager"' if is_shown(queue, job) else 'id="job-state"'
    job_page = await snapshot(ws_path(links.job_url(ref, identifier(job.job_id)[0])), cookie, parts)
    problems = []
    for text in [*overview, *queue_page, *job_page]:
        problems += injected_markup(text)
        if len(text.encode()) > MAX_BODY:
            problems.append(f"a fragment of {len(text.encode()):,} bytes")
    assert not problems, "\n".join(problems)
    FIGURES.fragments = max(FIGURES.fragments, *(len(text.encode()) for text in job_page))


@pytest.mark.parametrize(
    "number",
    [b"9" * 400, b"-" + b"9" * 400, b"1e400", b"1" * 5000, b'{"a": 1e400}', b"[1e999]"],
    ids=["10**400", "-10**400", "1e400", "5000 digits", "object with 1e400", "list with 1e999"],
)
async def test_numbers_no_double_holds_in_every_field(
    browser: AsyncClient, redis_client: Redis, number: bytes
) -> None:
    """Found by the properties above: a duration of 10**400 ms raised OverflowError in the `duration`
    filter (a 500 on the job and schedulers pages), and JSON holding 1e400 was read as infinity and
    written back by the API as `Infinity`, which is not JSON."""
    fields = {name: number for name in JOB_FIELDS if name != "parentKey"}
    queue = GarbageQueue(
        name="numbers",
        meta={"concurrency": number, "max": number, "duration": number},
        max_len_events=number,
        events=[{b"event": b"failed", b"jobId": b"j1", b"count": number}],
        id_counter=number,
        limiter_ttl=None,
        jobs=[
            GarbageJob(b"j1", fields, BY_NAME["failed"], 1.0),
            GarbageJob(b"j2", {**fields, "timestamp": b"1"}, BY_NAME["waiting"], 1.0),
        ],
        schedulers={
            b"s": {name: number for name in ("every", "ic", "startDate", "endDate", "offset", "limit")}
        },
        scheduler_scores=[1.0],
        metrics={"completed": {"count": number, "prevTS": number, "prevCount": number}},
        metrics_data={"completed": [number, number]},
        dedup={b"d": b"j1"},
    )
    queue = await fresh(redis_client, queue)
    await write_queue(redis_client, queue)
    problems = await visit_all(browser, redis_client, queue, "bqx")
    assert not problems, "\n".join(problems)


def test_the_checks_find_what_they_look_for() -> None:
    """The checks above can fail: each kind of bad answer is caught, an escaped one passes."""
    page = '<html><script src="/static/app.js"></script><p title="&lt;script&gt;bqx()">{}</p></html>'
    escaped = page.format("&lt;script&gt;bqx()&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=bqx()&gt;")
    assert injected_markup(escaped) == []
    assert text_of(escaped).count("<script>bqx()</script>") == 1
    for payload in (
        "<script>bqx()</script>",
        '"><img src=x onerror=bqx()>',
        "<bqxtag>",
        "<a href=javascript:x>",
    ):
        assert injected_markup(page.format(payload)), payload

    def answer(body: bytes, status: int = 200, content_type: str = "text/html; charset=utf-8") -> Answer:
        return Answer("/u", status, content_type, "", "", body, commands=10, sent_bytes=100)

    def problems(one: Answer) -> list[str]:
        return problems_of(one, max_body=1000, max_commands=5, max_sent=50)

    assert len(problems(answer(escaped.encode()))) == 2  # commands and bytes over these bounds
    assert any("server error" in p for p in problems(answer(b"", status=502)))
    assert any("not UTF-8" in p for p in problems(answer(b"\xff")))
    assert any("traceback" in p for p in problems(answer(b"Traceback (most recent call last):")))
    assert any("body" in p for p in problems(answer(b"x" * 1001)))
    assert any("not JSON" in p for p in problems(answer(b"{", content_type="application/json")))
