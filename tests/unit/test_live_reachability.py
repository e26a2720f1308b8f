"""Connections going down and coming back: each change reported once, a resync after it is back."""

from __future__ import annotations

from queues.live.pending import PendingWork
from queues.live.reachability import Reachability


async def test_each_change_is_reported_once_and_a_return_asks_for_a_resync() -> None:
    reported: list[tuple[str, bool]] = []

    async def on_status(alias: str, up: bool) -> None:
        reported.append((alias, up))

    pending = PendingWork()
    reachability = Reachability(pending, on_status)
    await reachability.set_up("default")  # never down: nothing to tell
    await reachability.set_down("default", OSError("refused"))
    await reachability.set_down("default", OSError("refused"))
    assert reachability.down == {"default"}
    assert not pending.resync_due and not pending.resync_aliases
    await reachability.set_up("default")
    await reachability.set_up("default")
    assert reported == [("default", False), ("default", True)]
    assert reachability.down == frozenset()
    # The connection that came back is re-read whole, not every connection.
    assert pending.resync_aliases == {"default"} and not pending.resync_due and pending.wake.is_set()
