"""Durations typed at the terminal: `30s`, `10m`, `1h`, `2d`, `250ms` or a bare number of milliseconds."""

from __future__ import annotations

import re

UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"(\d{1,15})(ms|s|m|h|d)?")


def duration_ms(text: str) -> int:
    """The milliseconds a duration names; ValueError for anything else (negative numbers included)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 1h, 2d or milliseconds)")
    number, unit = match.groups()
    return int(number) * UNITS_MS[unit or "ms"]
