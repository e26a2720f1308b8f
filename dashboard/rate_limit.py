"""Counting events per key over the last minute (actions and refusals per user, scrapes per viewer)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import ClassVar


class RateLimit:
    """At most `per_minute` events per key in any minute; remembers a bounded number of keys."""

    every: ClassVar[list[RateLimit]] = []

    def __init__(self, per_minute: int, keys: int = 10_000) -> None:
        self.per_minute = per_minute
        self.keys = keys
        self._events: OrderedDict[str, list[float]] = OrderedDict()
        RateLimit.every.append(self)

    def allow(self, key: str) -> bool:
        """True if another event for `key` fits in the last minute (and count it)."""
        now = time.monotonic()
        recent = [moment for moment in self._events.pop(key, []) if now - moment < 60]
        allowed = len(recent) < self.per_minute
        if allowed:
            recent.append(now)
        self._events[key] = recent
        while len(self._events) > self.keys:
            self._events.popitem(last=False)
        return allowed

    def reset(self) -> None:
        """Forget every count (tests)."""
        self._events.clear()
