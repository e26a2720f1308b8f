"""Defensive decoding of values other programs wrote into Redis: bytes, numbers and JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from queues.models import JsonValue, Text


def text(value: object) -> str:
    """A str from a Redis reply; invalid UTF-8 becomes U+FFFD instead of an error."""
    if value is None or value is False:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def identifier(value: object) -> tuple[str, bool]:
    """An id or key from a Redis reply, and whether it is valid UTF-8 (so that text can address it).

    An id that is not UTF-8 is shown with U+FFFD in place of the bad bytes; that text names another
    key, so such an id is never put in a link or an action.
    """
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8"), True
        except UnicodeDecodeError:
            return value.decode("utf-8", "replace"), False
    return text(value), True


def integer(value: object) -> int | None:
    """An int from a Redis reply, or None when missing or not a number (floats are floored)."""
    if isinstance(value, bytes | int) and not isinstance(value, bool):
        # Most replies are plain decimal bytes; int() reads them without decoding (a page has hundreds).
        try:
            return int(value)
        except ValueError:
            pass
    raw = text(value).strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        try:
            number = float(raw)
        except ValueError:
            return None
        return int(number) if number == number and abs(number) != float("inf") else None


def cut_text(value: object, size: object, *, read: bool = True) -> Text:
    """A Text from a possibly cut reply and the full byte size Redis reported; `read` is False for a
    value too long to be read at all (then only its size is known)."""
    raw = value if isinstance(value, bytes) else text(value).encode()
    full = integer(size)
    full_size = full if full is not None else len(raw)
    decoded, utf8 = identifier(raw)
    return Text(decoded, full_size, truncated=full_size > len(raw), unread=not read, utf8=utf8)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(literal: str) -> float:
    number = float(literal)
    if math.isinf(number):
        raise ValueError(f"{literal} is beyond a double")
    return number


def strict_json(raw: str) -> Any:
    """JSON as the standard has it: NaN and Infinity, which Python accepts and another program may have
    written, make it "not valid JSON" (shown as stored) rather than an answer strict parsers refuse; so
    does a number like 1e400, which Python would read as infinity and write back as Infinity."""
    return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)


def json_value(value: Text | None) -> JsonValue:
    """Parse a JSON field; a cut, missing or malformed value stays visible as its raw text."""
    if value is None:
        return JsonValue(Text("", 0), None, is_valid=False)
    if value.truncated:
        return JsonValue(value, None, is_valid=False)
    try:
        parsed = strict_json(value.value)
    except (ValueError, RecursionError):
        return JsonValue(value, None, is_valid=False)
    return JsonValue(value, parsed, is_valid=True)


def progress(value: object) -> Any:
    """A job's progress: a number or a JSON object as BullMQ stores it; raw text when not JSON."""
    raw = text(value)
    if not raw:
        return 0
    try:
        return strict_json(raw)
    except (ValueError, RecursionError):
        return raw


def first_line(value: str, limit: int = 300) -> str:
    """The first non-empty line of a message, cut to `limit` characters."""
    for line in value.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


# Characters that change how the text around them reads (line breaks, bidi overrides and isolates,
# other controls) or hide in it (zero-width spaces and joiners, the BOM): in a confirm dialog or a
# sentence, a name holding them could make "Remove job x?" say anything, or two ids look the same.
_PLAIN = {
    code: f"\\u{code:04x}"
    for code in [
        *range(0x00, 0x20),
        0x7F,
        *range(0x80, 0xA0),
        0x061C,
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x206A),
        0x2028,
        0x2029,
        0xFEFF,
    ]
}


def plain_text(value: object, limit: int = 120) -> str:
    """Text for a dialog, a label or a sentence: controls, bidi and zero-width marks shown as escapes,
    cut to `limit` characters."""
    text = str(value).translate(_PLAIN)
    return text if len(text) <= limit else text[: limit - 1] + "…"
