"""Work left for the next refresh by the stream readers, by new viewers and by a connection that came
back, and the event that wakes the refresh loop for it."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from queues.live.interest import Interest, JobRef
from queues.models import QueueRef


@dataclass
class PendingWork:
    """What the next refresh has to read and whom it has to answer."""

    # Queues and watched jobs that events touched since they were last read.
    queues: set[QueueRef] = field(default_factory=set)
    jobs: set[JobRef] = field(default_factory=set)
    # Per queue, how many jobs reached the head of each state's list since the queue was last read.
    arrivals: dict[QueueRef, Counter[str]] = field(default_factory=dict)
    # Viewers that joined, by the token they passed to `watch`: answered with fresh data of their
    # interest (their page may be older than the watcher's last look).
    requests: list[tuple[object, Interest]] = field(default_factory=list)
    # Everything viewed is re-read at the next refresh (a full resync failed).
    resync_due: bool = False
    # The viewed queues of these connections are re-read at the next refresh (they came back).
    resync_aliases: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def resync(self, alias: str | None = None) -> None:
        """Re-read everything viewed (of one connection, given its alias) at the next refresh, at once."""
        if alias is None:
            self.resync_due = True
        else:
            self.resync_aliases.add(alias)
        self.wake.set()
