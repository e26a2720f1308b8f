"""Decoding of values other programs wrote: bytes, numbers, JSON, traces, parents."""

from __future__ import annotations

import pytest

from queues.discovery import candidate_from_meta_key
from queues.jobs import parse_parent, parse_stacktrace, parse_summary, resolve_job_key
from queues.models import QueueRef, Text
from queues.parsing import cut_text, first_line, integer, json_value, progress, text


def test_text_survives_invalid_utf8() -> None:
    assert text(b"ok \xff\xfe") == "ok \ufffd\ufffd"
    assert text(None) == "" and text(False) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"12", 12), (b"1.9", 1), (b"", None), (None, None), (b"nan", None), (b"inf", None), (b"x", None)],
)
def test_integer(raw: bytes | None, expected: int | None) -> None:
    assert integer(raw) == expected


def test_cut_text_knows_its_full_size() -> None:
    value = cut_text(b"abc", 10)
    assert value == Text("abc", 10, truncated=True)
    assert cut_text(b"abc", 3).truncated is False


def test_json_value_keeps_invalid_and_cut_values_raw() -> None:
    assert json_value(Text.whole('{"a": 1}')).parsed == {"a": 1}
    broken = json_value(Text.whole('{"a": '))
    assert not broken.is_valid and broken.pretty == '{"a": '
    assert not json_value(Text('{"a": 1}', 100, truncated=True)).is_valid
    assert json_value(Text.whole("[" * 100_000)).is_valid is False  # recursion bomb


def test_progress_number_object_or_text() -> None:
    assert progress(b"42") == 42
    assert progress(b'{"stage": "ocr"}') == {"stage": "ocr"}
    assert progress(b"{bad") == "{bad"
    assert progress(None) == 0


def test_first_line_skips_blank_lines_and_cuts() -> None:
    assert first_line("\n\n  Error: boom\nat x") == "Error: boom"
    assert len(first_line("x" * 1000)) == 300


def test_stacktrace_newest_first_or_raw() -> None:
    traces, raw = parse_stacktrace(Text.whole('["first", "second", null]'))
    assert traces == ["second", "first"] and raw is None
    traces, raw = parse_stacktrace(Text.whole("not json"))
    assert traces == [] and raw is not None and raw.value == "not json"


def test_parent_is_parent_key_as_bullmq_follows_it_else_the_parent_json() -> None:
    only_json = parse_parent({"parent": Text.whole('{"id": "p1", "queueKey": "bull:reports"}')})
    assert only_json is not None and only_json.job_key == "bull:reports:p1"
    decoy = Text.whole('{"id": "decoy", "queueKey": "bull:x"}')
    both = parse_parent({"parentKey": Text.whole("bull:real:p2"), "parent": decoy})
    assert both is not None and both.job_key == "bull:real:p2" and both.addressable
    # An id with ':' resolves against the known queues, by the longest queue prefix.
    known = [QueueRef("c", "{t}", "reports"), QueueRef("c", "{t}:reports", "a")]
    keyed = parse_parent({"parentKey": Text.whole("{t}:reports:x:b")})
    assert keyed is not None and resolve_job_key(known, keyed.job_key) == (known[0], "x:b")
    # Bytes that are not UTF-8 name another key once replaced: shown, never linked.
    broken = parse_parent({"parentKey": cut_text(b"bull:real:pay\xff", 14)})
    assert broken is not None and not broken.addressable
    assert parse_parent({}) is None


def test_summary_prefers_atm_and_reads_attempts_from_opts() -> None:
    row = [b"7", [b"send", b"1000", b"1100", b"1300", b"2", b"9", b"50", b"0", b"0", b"Boom\nstack"], 3]
    summary = parse_summary(row)
    assert (summary.id, summary.attempts_made, summary.attempts_allowed) == ("7", 2, 3)
    assert summary.duration_ms == 200 and summary.failed_reason == "Boom"


def test_meta_key_candidates() -> None:
    assert candidate_from_meta_key("c", "bull:email:meta") == QueueRef("c", "bull", "email")
    assert candidate_from_meta_key("c", "a:b:c:email:meta") == QueueRef("c", "a:b:c", "email")
    assert candidate_from_meta_key("c", "{t}:billing:meta") == QueueRef("c", "{t}", "billing")
    assert candidate_from_meta_key("c", "email:meta") is None
    assert candidate_from_meta_key("c", "bull:email:metadata") is None


def test_queue_key_round_trip_and_job_key_resolution() -> None:
    queue = QueueRef.from_key("default", "a:b:email")
    assert (queue.prefix, queue.name, queue.key) == ("a:b", "email", "a:b:email")
    with pytest.raises(ValueError):
        QueueRef.from_key("default", "nocolon")
    known = [QueueRef("d", "bull", "pages"), QueueRef("d", "bull", "pages:x")]
    assert resolve_job_key(known, "bull:pages:x:42") == (known[1], "42")
    assert resolve_job_key(known, "bull:pages:7") == (known[0], "7")
    assert resolve_job_key(known, "other:q:1") is None
