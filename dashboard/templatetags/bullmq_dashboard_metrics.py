"""Template filters of the metrics page."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils.translation import pgettext

register = template.Library()


@register.filter
def utc_minute(ms: int | None) -> str:
    """Milliseconds since the epoch as the UTC minute, `2026-12-02 03:18`."""
    if ms is None:
        return pgettext("no value", "—")
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
