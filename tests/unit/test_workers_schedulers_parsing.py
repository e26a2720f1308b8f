"""Parsing CLIENT LIST for worker names, and scheduler rows, without Redis."""

from __future__ import annotations

import base64

from queues import workers
from queues.models import QueueRef
from queues.schedulers import parse_legacy, parse_row
from queues.workers import match_client_name, parse_client_list

MAIL = QueueRef("default", "bull", "mail")
TENANT = QueueRef("default", "{t}:w:x", "jobs")


def line(client_id: int, name: str) -> bytes:
    return f"id={client_id} addr=10.0.0.1:{client_id} fd=8 name={name} age=7 idle=2 flags=N db=0".encode()


def b64(name: str) -> str:
    return base64.b64encode(name.encode()).decode()


def test_names_match_as_bullmq_get_workers_matches_them() -> None:
    wanted = workers._wanted([MAIL, TENANT])
    assert match_client_name(f"bull:{b64('mail')}", wanted) == [(MAIL, "")]
    assert match_client_name(f"bull:{b64('mail')}:w:a:w:b", wanted) == [(MAIL, "a:w:b")]
    assert match_client_name("bull:mail:w:py", wanted) == [(MAIL, "py")]
    assert match_client_name(f"{{t}}:w:x:{b64('jobs')}:w:n", wanted) == [(TENANT, "n")]
    assert match_client_name(f"bull:{b64('mail')}:qe", wanted) == []
    assert match_client_name(f"bull:{b64('mail')}x", wanted) == []
    assert match_client_name("", wanted) == []


def test_fields_are_read_and_unnamed_clients_skipped() -> None:
    raw = b"\n".join([line(1, f"bull:{b64('mail')}:w:w1"), line(2, ""), b"id=3 addr=x name", b""])
    matched = parse_client_list(raw, [MAIL])
    (worker,) = matched.workers[MAIL]
    assert (worker.name, worker.client_id, worker.address, worker.age_seconds, worker.idle_seconds) == (
        "w1",
        "1",
        "10.0.0.1:1",
        7,
        2,
    )
    assert matched.parsed == 3 and not matched.capped


def test_the_parse_is_capped_and_says_so() -> None:
    name = f"bull:{b64('mail')}:w:w"
    raw = b"\n".join(line(index, name) for index in range(50))
    matched = parse_client_list(raw, [MAIL], max_workers=10)
    assert len(matched.workers[MAIL]) == 10 and matched.capped
    big = b"\n".join(line(index, "other-" + "x" * 200) for index in range(30_000))
    assert len(big) > workers.MAX_CLIENT_LIST_BYTES
    capped = parse_client_list(big + b"\n" + line(99_999, name), [MAIL])
    assert capped.capped and MAIL not in capped.workers and capped.parsed < 30_000


def test_legacy_keys_and_rows_of_odd_shapes() -> None:
    legacy = parse_legacy("n:id:0::60000", 5, True)
    assert (legacy.kind, legacy.name, legacy.every, legacy.pattern, legacy.end_date) == (
        "legacy",
        "n",
        60000,
        "",
        0,
    )
    assert parse_legacy("plain", None, True).kind == "broken"
    assert parse_row([b"x"]) is None
    row = parse_row([b"s", b"12", b"hash", None, None, b"n", b"1", None, b"2000", b"every", b"5"])
    assert row is not None and row.every is None and row.problem
