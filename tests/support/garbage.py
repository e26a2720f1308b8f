"""Malformed BullMQ data for the property tests of tests/integration/test_garbage_in.py: Hypothesis strategies
of job hashes and queue keys as another program (or a broken one) could leave them, the writer that puts them
into Redis under BullMQ's key layout, and the checks every answer of the dashboard must pass.

Payloads carry the marker `bqx`, so that markup that came from the data can be told from the page's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

from django.test import AsyncClient
from hypothesis import strategies as st
from redis.asyncio import Redis

from queues.states import STATE_KEYS, StateKey

MARK = "bqx"
# Markup, template syntax and characters that change how text reads, each carrying the marker.
HOSTILE = [
    "<script>bqx()</script>",
    '"><img src=x onerror=bqx()>',
    "'><svg onload=bqx()>",
    "</textarea></pre></td><bqxtag>",
    "<a href=javascript:bqx()>x</a>",
    "{{ bqx }}",
    "{% bqx %}",
    "{# bqx #}",
    "${bqx}",
    "\u202ebqx\u202c",
    "bqx\x00nul",
    "bqx\r\nSet-Cookie: x=1",
    "\x1b[31mbqx",
    "bqx\u2028\u2029\ufeff\u200b",
    "&lt;bqx&gt;&#60;",
    "<!--bqx-->",
    "<![CDATA[bqx]]>",
]
# Bytes no UTF-8 decoder takes: a lone surrogate (CESU), an overlong '/', stray continuation bytes.
BAD_BYTES = [b"\xed\xa0\x80bqx", b"\xc0\xafbqx", b"\xff\xfebqx", b"bqx\x80", b"\xf4\x90\x80\x80"]
TRICKY_IDS = ["a:b", "x/y", "..", ".", "%2F", "%2e%2e", "sp ace", "a b:c/d", "?q=1", "#frag", "&id=2", "1"]


def hostile_text() -> st.SearchStrategy[str]:
    """Short text: a hostile payload, arbitrary Unicode (surrogates left out: Redis gets bytes), or both."""
    unicode = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
    return st.one_of(
        st.sampled_from(HOSTILE),
        unicode,
        st.tuples(st.sampled_from(HOSTILE), unicode).map("".join),
    )


def hostile_bytes() -> st.SearchStrategy[bytes]:
    """Bytes of a hostile text or bytes that are not UTF-8."""
    return st.one_of(
        hostile_text().map(str.encode),
        st.sampled_from(BAD_BYTES),
        st.binary(max_size=40),
    )


NUMBERS = [b"-1", b"0", b"1.5", b"-0.0", b"1e400", b"NaN", b"inf", b"-inf", b"abc", b"", b" 7 ", b"0x10"]
NUMBERS += [str(10**30).encode(), str(2**63).encode(), str(-(2**63) - 1).encode(), b"99999999999999999999.5"]
# Integers Python reads but no float holds, and one longer than Python's int() reads (4,300 digits).
NUMBERS += [b"9" * 400, b"-" + b"9" * 400, b"1" * 5000, b"1e308", b"-1e308", b"5e-324"]


def number_field() -> st.SearchStrategy[bytes]:
    """A counter or timestamp field: sometimes a number, often not one."""
    return st.one_of(
        st.sampled_from(NUMBERS),
        st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: str(n).encode()),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()),
        hostile_bytes(),
    )


def json_values() -> st.SearchStrategy[Any]:
    """Small JSON documents holding hostile strings at any depth and as keys."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_text(),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(hostile_text(), inner, max_size=4)
        ),
        max_leaves=12,
    )


def json_field() -> st.SearchStrategy[bytes]:
    """A field BullMQ stores as JSON: JSON of any shape, JSON with NaN, truncated JSON, not JSON."""
    encoded = json_values().map(lambda value: json.dumps(value).encode())
    return st.one_of(
        encoded,
        encoded.map(lambda raw: raw[: max(1, len(raw) // 2)]),
        st.sampled_from([b"NaN", b'{"a": NaN}', b"[Infinity]", b"{", b"[1,", b'"unterminated', b"null"]),
        st.sampled_from([b"1e400", b'{"a": -1e400}', b"[1e999, 1]", b"1" * 5000, b"-0", b"1E+2"]),
        hostile_bytes(),
    )


def stacktrace_field() -> st.SearchStrategy[bytes]:
    """A stacktrace: BullMQ's JSON list of strings, or a list of other things, or not a list."""
    traces = st.lists(hostile_text().map(lambda t: f"Error: {t}\n    at {t} (file.js:1:1)"), max_size=4)
    return st.one_of(
        traces.map(lambda items: json.dumps(items).encode()),
        json_field(),
    )


# Replaced by the queue's own `<prefix>:<name>:` when written, so that flow keys can name its jobs.
SELF = b"{self}"


def parent_key_field() -> st.SearchStrategy[bytes]:
    """A parentKey or child key: a job key of this or another queue, of a queue's own key, or no key."""
    return st.one_of(
        st.sampled_from(
            [SELF + b"p1", SELF + b"a:b", SELF + b"meta", SELF + b"a:logs", SELF, b"bull::", b":"]
        ),
        st.sampled_from([b"bull:other:1", b"{t}:x:1"]),
        hostile_bytes().map(lambda raw: SELF + raw),
        hostile_bytes(),
    )


# Each field of a job hash, as BullMQ writes it, by what another program might put there instead.
JOB_FIELDS: dict[str, st.SearchStrategy[bytes]] = {
    "name": st.one_of(hostile_bytes(), number_field()),
    "data": json_field(),
    "opts": st.one_of(
        json_field(),
        st.sampled_from([b"[1,2,3]", b'{"attempts": "many"}', b'{"attempts": -1, "backoff": []}']),
        st.sampled_from([b'{"repeat": "x", "parent": 5}', b'{"delay": 1e400, "priority": "<b>"}']),
    ),
    "timestamp": number_field(),
    "processedOn": number_field(),
    "finishedOn": number_field(),
    "delay": number_field(),
    "priority": number_field(),
    "atm": number_field(),
    "attemptsMade": number_field(),
    "ats": number_field(),
    "progress": st.one_of(json_field(), number_field()),
    "returnvalue": json_field(),
    "failedReason": hostile_bytes(),
    "stacktrace": stacktrace_field(),
    "parentKey": parent_key_field(),
    "parent": st.one_of(
        json_field(),
        parent_key_field().map(
            lambda key: json.dumps({"id": "p1", "queueKey": key.decode("latin-1")}).encode()
        ),
        st.just(json.dumps({"id": "p1", "queueKey": SELF.decode()}).encode()),
    ),
    "pb": hostile_bytes(),
    "id": hostile_bytes(),
}


def job_ids() -> st.SearchStrategy[bytes]:
    """Job ids: tricky for URLs and keys, hostile text, and bytes that are not UTF-8."""
    return st.one_of(
        st.sampled_from(TRICKY_IDS).map(str.encode),
        hostile_text().filter(bool).map(str.encode),
        st.sampled_from(BAD_BYTES),
    )


@dataclass
class GarbageJob:
    """One job hash, where it is listed, and its logs and flow keys (each as hostile as drawn)."""

    job_id: bytes
    fields: dict[str, bytes]
    state: StateKey
    score: float
    extra_fields: dict[bytes, bytes] = field(default_factory=dict)
    logs: list[bytes] = field(default_factory=list)
    dependencies: list[bytes] = field(default_factory=list)
    processed: dict[bytes, bytes] = field(default_factory=dict)


@st.composite
def garbage_jobs(draw: st.DrawFn) -> GarbageJob:
    """A job hash with any of BullMQ's fields missing or malformed, and its logs and children."""
    fields = draw(st.fixed_dictionaries({}, optional=JOB_FIELDS))
    # BullMQ's `timestamp` makes a hash job-shaped (without it a job is a 404): present in most jobs.
    if draw(st.sampled_from([True, True, True, False])):
        fields.setdefault("timestamp", draw(JOB_FIELDS["timestamp"]))
    return GarbageJob(
        job_id=draw(job_ids()),
        fields=fields,
        state=draw(st.sampled_from(STATE_KEYS)),
        score=draw(st.one_of(st.floats(allow_nan=False), st.sampled_from([-1.0, 0.0, 2.0**62]))),
        extra_fields=draw(st.dictionaries(hostile_bytes().filter(bool), hostile_bytes(), max_size=3)),
        logs=draw(st.lists(hostile_bytes(), max_size=5)),
        dependencies=draw(st.lists(parent_key_field(), max_size=3)),
        processed=draw(st.dictionaries(parent_key_field(), json_field(), max_size=3)),
    )


def queue_names() -> st.SearchStrategy[str]:
    """Queue names as BullMQ allows them (no ':'), hostile ones included."""
    return hostile_text().map(lambda name: name.replace(":", "")).filter(lambda name: name.strip())


META_FIELDS: dict[str, st.SearchStrategy[bytes]] = {
    "paused": st.one_of(st.sampled_from([b"1", b"0", b"yes"]), hostile_bytes()),
    "concurrency": number_field(),
    "max": number_field(),
    "duration": number_field(),
    "version": st.one_of(st.just(b"bullmq:6.7.0"), hostile_bytes().map(lambda raw: b"bullmq:" + raw)),
}

EVENT_NAMES = [b"added", b"completed", b"failed", b"progress", b"stalled", b"deduplicated", b"removed"]


@dataclass
class GarbageQueue:
    """A queue's own keys as drawn: its meta hash, events stream, id counter and limiter."""

    name: str
    meta: dict[str, bytes]
    max_len_events: bytes
    events: list[dict[bytes, bytes]]
    id_counter: bytes | None
    limiter_ttl: int | None
    jobs: list[GarbageJob]
    # Job schedulers: `repeat` zset members (scored by next run) and their `repeat:<id>` hashes.
    schedulers: dict[bytes, dict[str, bytes]] = field(default_factory=dict)
    scheduler_scores: list[float] = field(default_factory=list)
    # BullMQ's metrics: `metrics:<kind>` hashes and `metrics:<kind>:data` lists of per-minute counts.
    metrics: dict[str, dict[str, bytes]] = field(default_factory=dict)
    metrics_data: dict[str, list[bytes]] = field(default_factory=dict)
    # Deduplication keys `de:<id>` holding a job id.
    dedup: dict[bytes, bytes] = field(default_factory=dict)
    # Keys written as another type than BullMQ's (see WRONG_TYPES).
    wrong_types: list[str] = field(default_factory=list)
    # Another queue beside it whose name is not UTF-8 (its keys cannot be named by text).
    neighbour: bytes | None = None
    # BullMQ's default, a cluster hash tag, one holding ':' (a prefix may), one holding markup.
    prefix: str = "bull"


@st.composite
def garbage_queues(draw: st.DrawFn, max_jobs: int = 3) -> GarbageQueue:
    """A queue with malformed meta, events and counters, holding a few malformed jobs."""
    event = st.fixed_dictionaries(
        {"event": st.one_of(st.sampled_from(EVENT_NAMES), hostile_bytes().filter(bool))},
        optional={
            "jobId": hostile_bytes(),
            "failedReason": hostile_bytes(),
            "returnvalue": json_field(),
            "data": json_field(),
            "prev": hostile_bytes(),
            "count": number_field(),
            "deduplicationId": hostile_bytes(),
        },
    ).map(lambda fields: {key.encode(): value for key, value in fields.items()})
    return GarbageQueue(
        name=draw(queue_names()),
        meta=draw(st.fixed_dictionaries({}, optional=META_FIELDS)),
        max_len_events=draw(number_field().filter(bool)),
        events=draw(st.lists(event, max_size=4)),
        id_counter=draw(st.none() | number_field()),
        limiter_ttl=draw(st.none() | st.integers(min_value=1, max_value=10**6)),
        jobs=draw(st.lists(garbage_jobs(), min_size=1, max_size=max_jobs, unique_by=lambda job: job.job_id)),
        schedulers=draw(
            st.dictionaries(hostile_bytes(), st.fixed_dictionaries({}, optional=SCHEDULER_FIELDS), max_size=2)
        ),
        scheduler_scores=draw(st.lists(st.floats(allow_nan=False), min_size=2, max_size=2)),
        metrics=draw(
            st.dictionaries(
                st.sampled_from(["completed", "failed"]),
                st.fixed_dictionaries({}, optional=METRICS_FIELDS),
                max_size=2,
            )
        ),
        metrics_data=draw(
            st.dictionaries(
                st.sampled_from(["completed", "failed"]), st.lists(number_field(), max_size=5), max_size=2
            )
        ),
        dedup=draw(st.dictionaries(hostile_bytes(), job_ids(), max_size=2)),
        wrong_types=draw(st.lists(st.sampled_from(sorted(WRONG_TYPES)), unique=True, max_size=3)),
        neighbour=draw(st.none() | st.sampled_from(BAD_BYTES).map(lambda raw: raw.replace(b":", b""))),
        prefix=draw(st.sampled_from(PREFIXES)),
    )


# A key of the queue (or of its first job, `{job}`) and the type it is written as instead of BullMQ's.
WRONG_TYPES = {
    "{job}:logs": "hash",
    "{job}:dependencies": "string",
    "{job}:processed": "list",
    "{job}": "string",
    "events": "hash",
    "repeat": "hash",
    "metrics:completed": "list",
    "metrics:failed:data": "zset",
    "id": "hash",
    "limiter": "list",
    "stalled": "hash",
    "marker": "string",
    "wait": "zset",
    "failed": "list",
    "completed": "string",
    "delayed": "hash",
    "waiting-children": "set",
    "de:d": "hash",
    "pc": "hash",
}


PREFIXES = ["bull", "{tenant-1}", "my:app", "<b>bqx</b>"]
SCHEDULER_FIELDS: dict[str, st.SearchStrategy[bytes]] = {
    "name": hostile_bytes(),
    "pattern": hostile_bytes(),
    "tz": hostile_bytes(),
    "every": number_field(),
    "limit": number_field(),
    "ic": number_field(),
    "startDate": number_field(),
    "endDate": number_field(),
    "offset": number_field(),
    "data": json_field(),
    "opts": json_field(),
}
METRICS_FIELDS: dict[str, st.SearchStrategy[bytes]] = {
    "count": number_field(),
    "prevTS": number_field(),
    "prevCount": number_field(),
}


async def write_queue(client: Redis, queue: GarbageQueue) -> None:
    """Write a drawn queue with BullMQ's key layout (`<prefix>:<name>:<type>`, `<prefix>:<name>:<id>`)."""
    head = f"{queue.prefix}:{queue.name}:".encode()
    pipe = client.pipeline(transaction=False)
    # `opts.maxLenEvents` is BullMQ's fingerprint of a queue's meta: discovery needs it to find the queue.
    meta: dict[str, bytes] = {"opts.maxLenEvents": queue.max_len_events, **queue.meta}
    pipe.hset(head + b"meta", mapping=meta)  # type: ignore[arg-type]
    for event in queue.events:
        pipe.xadd(head + b"events", event)  # type: ignore[arg-type]
    if queue.id_counter is not None:
        pipe.set(head + b"id", queue.id_counter)
    if queue.limiter_ttl is not None:
        pipe.set(head + b"limiter", b"5", px=queue.limiter_ttl)
    for job in queue.jobs:
        write_job(pipe, head, job)
    for number, (scheduler_id, fields) in enumerate(queue.schedulers.items()):
        pipe.zadd(
            head + b"repeat", {scheduler_id: queue.scheduler_scores[number % len(queue.scheduler_scores)]}
        )
        if fields:
            pipe.hset(head + b"repeat:" + scheduler_id, mapping=fields)  # type: ignore[arg-type]
    for kind, fields in queue.metrics.items():
        if fields:
            pipe.hset(head + f"metrics:{kind}".encode(), mapping=fields)  # type: ignore[arg-type]
    for kind, points in queue.metrics_data.items():
        if points:
            pipe.rpush(head + f"metrics:{kind}:data".encode(), *points)
    for dedup_id, job_id in queue.dedup.items():
        pipe.set(head + b"de:" + dedup_id, job_id)
    if queue.neighbour is not None:
        other = f"{queue.prefix}:".encode() + queue.neighbour + b":"
        pipe.hset(other + b"meta", mapping={"opts.maxLenEvents": b"10000"})
        pipe.hset(other + b"1", mapping={"name": b"<script>bqx()</script>", "timestamp": b"1"})
        pipe.lpush(other + b"wait", b"1")
    for name in queue.wrong_types:
        key = head + name.encode().replace(b"{job}", queue.jobs[0].job_id)
        pipe.delete(key)
        write_as(pipe, key, WRONG_TYPES[name])
    await pipe.execute()


def write_as(pipe: Any, key: bytes, kind: str) -> None:
    """Queue the command that makes `key` a small value of a type: markup inside, where a value is."""
    value = b"<script>bqx()</script>"
    if kind == "string":
        pipe.set(key, value)
    elif kind == "hash":
        pipe.hset(key, mapping={b"timestamp": b"1", b"name": value})
    elif kind == "list":
        pipe.rpush(key, value, b"1")
    elif kind == "set":
        pipe.sadd(key, value)
    else:
        pipe.zadd(key, {value: 1})


def write_job(pipe: Any, head: bytes, job: GarbageJob) -> None:
    """Queue the commands that write one drawn job."""
    key = head + job.job_id

    def own(raw: bytes) -> bytes:
        return raw.replace(SELF, head)

    mapping = {
        own(k): own(v)
        for k, v in {**job.extra_fields, **{k.encode(): v for k, v in job.fields.items()}}.items()
    }
    if mapping:
        pipe.hset(key, mapping=mapping)
    if job.state.is_list:
        pipe.lpush(head + job.state.suffix.encode(), job.job_id)
    else:
        pipe.zadd(head + job.state.suffix.encode(), {job.job_id: job.score})
    if job.logs:
        pipe.rpush(key + b":logs", *job.logs)
    if job.dependencies:
        pipe.sadd(key + b":dependencies", *map(own, job.dependencies))
    if job.processed:
        pipe.hset(key + b":processed", mapping={own(k): v for k, v in job.processed.items()})


# --------------------------------------------------------------------------- values too big to draw


TEN_MB = 10 * 1024 * 1024


@cache
def monster(kind: str) -> bytes:
    """One of the values no page may copy whole: built once, as bytes."""
    if kind == "10 MB of markup":
        chunk = b'<script>bqx()</script>"><img src=x onerror=bqx()>\n'
        return (chunk * (TEN_MB // len(chunk) + 1))[:TEN_MB]
    if kind == "10,000 nested arrays":
        return b"[" * 10_000 + b"]" * 10_000
    if kind == "10,000 nested objects":
        return b'{"<bqx>":' * 10_000 + b"1" + b"}" * 10_000
    if kind == "enormous JSON":
        return json.dumps({f"<b>k{i}</b>": ["<script>bqx()</script>", i] for i in range(120_000)}).encode()
    if kind == "one long line":
        return b"Error: <bqxtag>" + b"a" * (3 * 1024 * 1024)
    raise KeyError(kind)


MONSTERS = [
    "10 MB of markup",
    "10,000 nested arrays",
    "10,000 nested objects",
    "enormous JSON",
    "one long line",
]
# Log lines, events and listed ids of the test of many.
HUGE = 100_000


# --------------------------------------------------------------------------- what every answer must be


class ServerClient(AsyncClient):
    """A test client whose paths reach the app as an ASGI server hands them over: percent-decoded as UTF-8
    (the ASGI spec; daphne's `unquote`). Django's AsyncClient decodes them as ISO-8859-1, WSGI's
    convention, so a queue named `é` or `\x80` would be a 404 there and nowhere else."""

    def _get_path(self, parsed: Any) -> str:
        return unquote(parsed.path)


class Elements(HTMLParser):
    """The elements, attributes and script bodies of an HTML document or fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_script:
            self.scripts[-1] += data


def text_of(html: str) -> str:
    """The text of an HTML document as a browser shows it (character references decoded)."""
    parser = Elements()
    parser.feed(html)
    parser.close()
    return "".join(parser.text)


# Attributes through which markup runs code or loads a URL.
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "hx-get", "hx-post", "ws-connect", "srcdoc"}


def injected_markup(html: str) -> list[str]:
    """What in an HTML answer came from the data as markup rather than as text (empty when nothing)."""
    parser = Elements()
    parser.feed(html)
    parser.close()
    found: list[str] = []
    for tag, attrs in parser.tags:
        from_data = tag in {"img", "svg", "iframe"} and any(MARK in (v or "") for _, v in attrs)
        if MARK in tag or from_data:
            found.append(f"element <{tag}>")
        for name, value in attrs:
            if MARK in name or name.startswith("on"):
                found.append(f"attribute {name}={value!r} on <{tag}>")
            if name in _URL_ATTRIBUTES and (value or "").strip().lower().startswith(("javascript:", "data:")):
                found.append(f"URL {name}={value!r} on <{tag}>")
    for body in parser.scripts:
        if MARK in body:
            found.append(f"script {body[:80]!r}")
    # Escaped data shows as text; markup from the data would have been parsed into elements above.
    return found


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


@dataclass(frozen=True)
class Answer:
    """One request's answer and what it cost Redis."""

    url: str
    status: int
    content_type: str
    csp: str
    nosniff: str
    body: bytes
    commands: int
    sent_bytes: int


def problems_of(answer: Answer, *, max_body: int, max_commands: int, max_sent: int) -> list[str]:
    """Everything wrong with an answer: a server error, not UTF-8, traceback text, markup from the
    data, or a body, command count or Redis reply size over its bound."""
    found: list[str] = []
    where = f"{answer.url} -> {answer.status}"
    if answer.status >= 500:
        found.append(f"{where}: server error {answer.body[:300]!r}")
    try:
        body = answer.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [*found, f"{where}: not UTF-8 ({exc})"]
    if "Traceback (most recent call last)" in body or 'File "/' in body:
        found.append(f"{where}: traceback text")
    if len(answer.body) > max_body:
        found.append(f"{where}: body {len(answer.body):,} bytes > {max_body:,}")
    if answer.commands > max_commands:
        found.append(f"{where}: {answer.commands:,} Redis commands > {max_commands:,}")
    if answer.sent_bytes > max_sent:
        found.append(f"{where}: Redis sent {answer.sent_bytes:,} bytes > {max_sent:,}")
    if answer.content_type.startswith("text/html"):
        found.extend(f"{where}: {problem}" for problem in injected_markup(body))
    elif answer.content_type.startswith("application/json"):
        try:
            json.loads(body, parse_constant=_not_json)
        except ValueError as exc:
            found.append(f"{where}: not JSON ({exc})")
    return found
