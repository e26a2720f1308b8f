"""The path converter of queue keys: `<prefix>:<name>` as one path segment, whatever the name holds.

Queue names never hold `:`, but they may hold `/`, which no path segment can carry (servers decode
`%2F` before routing). A key with `/`, or one that starts with the escape mark, is written as `~` and
its base64url; every other key is written as it is, so ordinary URLs stay readable.
"""

from __future__ import annotations

import base64
import binascii

from django.urls import register_converter

ESCAPE = "~"


class QueueKeyConverter:
    """`<prefix>:<name>` in one segment; `~<base64url>` for keys a segment cannot carry as they are."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> str:
        """The queue key a segment names (ValueError, so a 404, for a broken escape)."""
        if not value.startswith(ESCAPE):
            return value
        encoded = value[len(ESCAPE) :]
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            return raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"not an escaped queue key: {value!r}") from exc

    def to_url(self, value: str) -> str:
        """The segment of a queue key."""
        if "/" not in value and not value.startswith(ESCAPE) and value not in (".", ".."):
            return value
        return ESCAPE + base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii").rstrip("=")


# Registered once, under a name no host project's converters are likely to use.
register_converter(QueueKeyConverter, "bullmq_queue")
