"""Durations written by people, in settings and at the terminal: `500ms`, `30s`, `10m`, `1h`, `2d`, or a bare
number in the unit the caller says (milliseconds for a clean's grace, as on the web; seconds in settings)."""

from __future__ import annotations

import re

UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"(\d{1,15}(?:\.\d{1,6})?)\s*(ms|s|min|m|h|d)?")


def duration_ms(text: str, bare_unit: str = "ms") -> int:
    """The milliseconds a duration names; ValueError for anything else (negative numbers included)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 1h, 2d or milliseconds)")
    number, unit = match.groups()
    return round(float(number) * UNITS_MS[unit or bare_unit])
