"""Failure fingerprints: normalisation of real-world messages and stack frames, and row parsing."""

from __future__ import annotations

import pytest

from queues.error_groups import (
    UNREAD_REASON,
    failure_of,
    fingerprint,
    normalize_frame,
    normalize_message,
    parse_trace,
)

NODE_TYPE_ERROR = """TypeError: Cannot read properties of undefined (reading 'id')
    at chargeCustomer (/srv/app/dist/billing.js:41:23)
    at Worker.processor (/srv/app/dist/worker.js:12:11)
    at Worker.callProcessJob (/srv/app/node_modules/bullmq/dist/cjs/classes/worker.js:490:28)"""


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Timeout after 3012ms contacting 10.0.0.7", "Timeout after <n>ms contacting <ip>"),
        ("Timeout after 45ms contacting 10.0.12.250:6379", "Timeout after <n>ms contacting <ip>"),
        (
            "Cannot read properties of undefined (reading 'id')",
            'Cannot read properties of undefined (reading "…")',
        ),
        ("connect ECONNREFUSED 127.0.0.1:5432", "connect ECONNREFUSED <ip>"),
        ("getaddrinfo ENOTFOUND api.example.com", "getaddrinfo ENOTFOUND api.example.com"),
        (
            "Request failed with status code 503 for https://api.stripe.com/v1/charges?id=42",
            "Request failed with status code <n> for <url>",
        ),
        ("User 8f14e45f-ceea-467f-a0a3-3c4b2bd9e4b1 not found", "User <uuid> not found"),
        ("Order #123456 not found", "Order #<n> not found"),
        ("order1234 failed", "order<n> failed"),
        (
            'E11000 duplicate key error collection: app.users index: email_1 dup key: { email: "a@b.co" }',
            'E<n> duplicate key error collection: app.users index: email_1 dup key: { email: "…" }',
        ),
        ("Could not deliver mail to jane.doe+test@example.org", "Could not deliver mail to <email>"),
        ("Document 507f1f77bcf86cd799439011 is locked", "Document <hex> is locked"),
        ("Segfault at 0x7ffd5fbff8a0", "Segfault at <hex>"),
        ("No such charge: 'ch_3MmlLrLkdIwHu7ix0snN0B15'", 'No such charge: "…"'),
        ("No such charge: ch_3MmlLrLkdIwHu7ix0snN0B15", "No such charge: <id>"),
        ("Rate limited, retry in 1.5 s", "Rate limited, retry in <n> s"),
        ("job expired at 2024-01-05T10:00:00.000Z", "job expired at <date>"),
        ("can't connect to `db-primary`", 'can\'t connect to "…"'),
        ("don't know what to do with it's value", "don't know what to do with it's value"),
        ("Unexpected token < in JSON at position 0", "Unexpected token < in JSON at position <n>"),
        (
            "Error [ERR_HTTP2_STREAM_CANCEL]: The pending stream",
            "Error [ERR_HTTP2_STREAM_CANCEL]: The pending stream",
        ),
        ("utf8 decode failed for base64 payload", "utf8 decode failed for base64 payload"),
        ("  spaced\n\tout   message  ", "spaced out message"),
        ("Invalid value “abc” for field", 'Invalid value "…" for field'),
        ("", ""),
    ],
)
def test_messages_are_normalised(message: str, expected: str) -> None:
    assert normalize_message(message) == expected


def test_varying_numbers_give_one_pattern() -> None:
    patterns = {
        normalize_message(f"Timeout after {ms}ms contacting 10.0.0.{host}")
        for ms in range(3000, 3030)
        for host in range(1, 9)
    }
    assert patterns == {"Timeout after <n>ms contacting <ip>"}


def test_distinct_messages_stay_distinct() -> None:
    messages = [
        "Cannot read properties of undefined (reading 'id')",
        "Cannot read properties of null (reading 'id')",
        "connect ECONNREFUSED 127.0.0.1:5432",
        "connect ETIMEDOUT 127.0.0.1:5432",
        "Payment declined",
    ]
    assert len({normalize_message(message) for message in messages}) == len(messages)


def test_node_stack_gives_type_and_top_frame() -> None:
    parsed = parse_trace(NODE_TYPE_ERROR)
    assert parsed.exception == "TypeError"
    assert parsed.frame == "at chargeCustomer (/srv/app/dist/billing.js:<n>)"


def test_frames_differing_only_in_line_and_column_are_equal() -> None:
    one = normalize_frame("    at chargeCustomer (/srv/app/dist/billing.js:41:23)")
    two = normalize_frame("at chargeCustomer (/srv/app/dist/billing.js:57:9)")
    assert one == two
    assert normalize_frame("at file:///app/worker.mjs:12:5") == "at file:///app/worker.mjs:<n>"
    assert normalize_frame("at async Promise.all (index 0)") == "at async Promise.all (index 0)"
    assert normalize_frame("at /app/releases/20240105123000/x.js:1:2") == "at /app/releases/<n>/x.js:<n>"


@pytest.mark.parametrize(
    ("first_line", "exception"),
    [
        ("Error: boom", "Error"),
        ("TypeError: x is not a function", "TypeError"),
        ("Error [ERR_INVALID_ARG_TYPE]: The argument", "Error"),
        ("AxiosError: Request failed", "AxiosError"),
        ("UnrecoverableError", "UnrecoverableError"),
        ("errors.ValidationError: bad", "errors.ValidationError"),
        ("just some text, no type", ""),
    ],
)
def test_exception_types(first_line: str, exception: str) -> None:
    assert parse_trace(first_line + "\n    at f (/x.js:1:1)").exception == exception


def test_python_traceback() -> None:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/app/bullmq/worker.py", line 210, in processJob\n'
        "    result = await self.processor(job, token)\n"
        '  File "/app/tasks.py", line 17, in process\n'
        "    raise ValueError(f'bad amount {amount}')\n"
        "ValueError: bad amount 12\n"
    )
    parsed = parse_trace(trace)
    assert parsed.exception == "ValueError"
    assert parsed.frame == 'File "/app/tasks.py", line <n>, in process'


def test_empty_and_frameless_traces() -> None:
    assert parse_trace("") == parse_trace("\n\n")
    assert parse_trace("Error: no frames").frame == ""


def test_fingerprint_is_stable_and_sensitive() -> None:
    assert fingerprint("TypeError", "m", "at f") == fingerprint("TypeError", "m", "at f")
    assert len(fingerprint("", "", "")) == 16
    assert (
        len(
            {
                fingerprint("A", "m", "f"),
                fingerprint("B", "m", "f"),
                fingerprint("A", "n", "f"),
                fingerprint("A", "m", "g"),
            }
        )
        == 4
    )
    # No separator ambiguity: the parts are joined by NUL.
    assert fingerprint("ab", "c", "") != fingerprint("a", "bc", "")


def row(**values: object) -> list[object]:
    base: dict[str, object] = {
        "id": b"1",
        "score": b"1700000000000",
        "reason": b"boom",
        "size": 4,
        "kind": b"ok",
        "stack": NODE_TYPE_ERROR.encode(),
        "flag": b"",
    }
    base.update(values)
    return [
        base["id"],
        base["score"],
        base["reason"],
        base["size"],
        base["kind"],
        base["stack"],
        base["flag"],
    ]


def test_rows_of_the_scan() -> None:
    failure = failure_of(row())
    assert failure is not None
    assert (failure.job_id, failure.finished_on, failure.exception, failure.message) == (
        "1",
        1700000000000,
        "TypeError",
        "boom",
    )
    assert failure.partial == "" and failure.addressable


def test_hostile_rows() -> None:
    not_utf8 = failure_of(row(id=b"\xff\xfe", reason=b"bad \xff\xfe bytes 42"))
    assert not_utf8 is not None
    assert not not_utf8.addressable
    assert not_utf8.message == "bad \ufffd\ufffd bytes <n>"

    big_stack = failure_of(row(kind=b"big", stack=b"5242880", reason=b"Timeout after 12ms"))
    assert big_stack is not None
    assert (big_stack.partial, big_stack.exception, big_stack.frame) == ("stack-big", "", "")
    assert big_stack.message == "Timeout after <n>ms"

    not_json = failure_of(row(kind=b"not-json", stack=b""))
    assert not_json is not None and not_json.partial == "stack-unreadable"

    big_reason = failure_of(row(reason=False, size=100_000))
    assert big_reason is not None
    assert big_reason.partial == "reason-big"
    # The message then comes from the stack's first line.
    assert big_reason.message == 'Cannot read properties of undefined (reading "…")'

    unread = failure_of(row(reason=False, size=100_000, kind=b"none", stack=b""))
    assert unread is not None and unread.message == UNREAD_REASON

    missing = failure_of(row(reason=False, size=0, kind=b"none", stack=b"", score=None))
    assert missing is not None
    assert (missing.message, missing.exception, missing.finished_on) == ("", "", None)

    assert failure_of(row(flag=b"not-a-hash")) is None
    assert failure_of(row(id=b"meta")).addressable is False  # type: ignore[union-attr]
    assert failure_of(row(flag=b"long-id")).addressable is False  # type: ignore[union-attr]
    assert failure_of([b"short"]) is not None


def test_long_runs_are_normalised_only_in_their_first_part() -> None:
    """8 KB of digits without an `@` (a job author's failedReason) took the unanchored e-mail pattern
    0.2 s a message: only the first MAX_NORMALISED characters are normalised, by anchored patterns."""
    from queues.error_groups import MAX_NORMALISED, MAX_PATTERN

    assert normalize_message("0" * 8000 + "x") == "<n>"
    words = normalize_message("a." * 6000 + "b")
    assert len(words) == MAX_PATTERN and words == ("a." * MAX_NORMALISED)[:MAX_PATTERN]
    assert normalize_message("mail to first.last+tag@mail.example.com bounced") == "mail to <email> bounced"
    assert normalize_message("x" * 3000 + " jane@example.org") == "x" * MAX_PATTERN
