"""Delays between retries of the watcher's reads."""

from __future__ import annotations

import random

import pytest

from queues.live.backoff import Backoff


def test_delays_double_up_to_the_ceiling_and_start_again_after_a_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    delays = Backoff(0.25, 1.0)
    assert [delays.next() for _ in range(5)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    delays.reset()
    assert delays.next() == 0.25


def test_each_delay_lies_between_half_and_all_of_its_ceiling() -> None:
    delays = Backoff(0.25, 10.0)
    for ceiling in [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]:
        assert ceiling / 2 <= delays.next() <= ceiling
