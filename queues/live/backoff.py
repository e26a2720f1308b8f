"""Delays between retries while Redis does not answer: growing, jittered, reset on success."""

from __future__ import annotations

import random


class Backoff:
    """Exponential delays with jitter (each between half and all of its ceiling), reset on success."""

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high
        self.attempt = 0

    def next(self) -> float:
        """The next delay in seconds."""
        ceiling = min(self.high, self.low * 2.0**self.attempt)
        self.attempt += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.attempt = 0
