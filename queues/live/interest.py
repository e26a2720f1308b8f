"""What viewers look at, reference counted over the viewers of a process.

Viewers declare an `Interest` (every queue, some queues, some jobs); `Viewers` counts them in and
out, and from the counts follow the queues whose counts are read and the queues whose events
streams are tailed. Pure bookkeeping: no Redis here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from queues.models import QueueRef

logger = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class JobRef:
    """One job of one queue."""

    queue: QueueRef
    job_id: str


@dataclass(frozen=True)
class Interest:
    """What one viewer looks at: every queue (the overview), some queues, some jobs."""

    all_queues: bool = False
    queues: tuple[QueueRef, ...] = ()
    jobs: tuple[JobRef, ...] = ()


class Viewers:
    """The interests of every viewer, reference counted: a queue or job stays watched while one
    viewer still looks at it."""

    def __init__(self, aliases: Iterable[str], max_queues: int) -> None:
        self._aliases = frozenset(aliases)
        self._max_queues = max_queues
        self._all_queues = 0
        self._queues: Counter[QueueRef] = Counter()
        self._jobs: Counter[JobRef] = Counter()
        # Every queue, as last listed (for viewers of every queue).
        self.listed: list[QueueRef] = []
        self._capped_warned = False

    def add(self, interest: Interest) -> bool:
        """Count a viewer's interest in; True when it is the first viewer of every queue (the list of
        every queue is then due)."""
        first = False
        if interest.all_queues:
            self._all_queues += 1
            first = self._all_queues == 1
        self._queues.update(interest.queues)
        self._jobs.update(interest.jobs)
        return first

    def remove(self, interest: Interest) -> None:
        """Count a viewer's interest out (the inverse of one `add`)."""
        if interest.all_queues:
            self._all_queues = max(0, self._all_queues - 1)
        self._queues.subtract(interest.queues)
        self._jobs.subtract(interest.jobs)
        self._queues = +self._queues
        self._jobs = +self._jobs

    @property
    def all_queues(self) -> bool:
        """True while someone views every queue."""
        return self._all_queues > 0

    def watches(self, job: JobRef) -> bool:
        """True while someone views this job."""
        return job in self._jobs

    def watched_jobs(self) -> list[JobRef]:
        """Every job someone views, in the order they were first watched."""
        return list(self._jobs)

    def counted_queues(self) -> list[QueueRef]:
        """Queues whose counts someone views, viewed queues first, at most `max_queues`."""
        wanted = dict.fromkeys(sorted(self._queues))
        if self._all_queues:
            wanted.update(dict.fromkeys(self.listed))
        return list(wanted)[: self._max_queues]

    def tailed_queues(self) -> list[QueueRef]:
        """Queues whose events stream is read: counted ones and those of watched jobs."""
        wanted = dict.fromkeys(job.queue for job in sorted(self._jobs))
        wanted.update(dict.fromkeys(self.counted_queues()))
        queues = list(wanted)
        if len(queues) > self._max_queues and not self._capped_warned:
            self._capped_warned = True
            logger.warning(
                "live updates follow %d of %d queues (BULLMQ_DASHBOARD['LIVE']['MAX_QUEUES'])",
                self._max_queues,
                len(queues),
            )
        return [queue for queue in queues[: self._max_queues] if queue.connection in self._aliases]
