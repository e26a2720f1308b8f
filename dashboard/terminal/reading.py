"""What the terminal shows, read as the overview and the API read it: each connection's queues from
its directory, their counts in one pipelined round trip per connection (`queues.counts.fetch_counts`),
and for the live view the first few active jobs of a bounded number of queues (`fetch_job_page`).

Failures stay local: a connection that cannot be read becomes that connection's problem, a queue with
broken keys its own row's (QueueCounts.problem); the others are read as usual.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard import registry
from dashboard.conf import get_config
from dashboard.overview_order import matching
from dashboard.permissions import avisible
from dashboard.users import User
from queues.counts import fetch_counts
from queues.jobs import fetch_job_page
from queues.messages import gettext_lazy
from queues.models import JobSummary, QueueCounts, QueueRef

# The live view reads the active jobs of at most this many queues (those with active jobs, in the
# table's order), at most ACTIVE_JOBS each: a refresh costs Redis the same whatever the queues hold.
ACTIVE_QUEUES = 10
ACTIVE_JOBS = 5


@dataclass(frozen=True)
class Selection:
    """Which queues to show: a connection alias, a prefix, a filter text (as the overview's `?q=`),
    and with a dashboard user only the queues it may view."""

    connection: str | None = None
    prefix: str | None = None
    text: str = ""
    user: User | None = None

    def keeps(self, queue: QueueRef) -> bool:
        """True when the connection and prefix options let this queue through."""
        if self.connection is not None and queue.connection != self.connection:
            return False
        return self.prefix is None or queue.prefix == self.prefix


@dataclass(frozen=True)
class ConnectionRead:
    """One connection's queues with their counts, in the directory's order, or why none were read."""

    alias: str
    rows: list[QueueCounts] = field(default_factory=list)
    problem: str = ""


@dataclass(frozen=True)
class Snapshot:
    """Every selected connection's read, and when it was taken (time.monotonic(), for rates)."""

    connections: list[ConnectionRead]
    at: float

    @property
    def rows(self) -> list[QueueCounts]:
        """The rows of all connections, in order."""
        return [row for read in self.connections for row in read.rows]

    @property
    def down(self) -> list[ConnectionRead]:
        """The connections that could not be read."""
        return [read for read in self.connections if read.problem]


@dataclass(frozen=True)
class ActiveJobs:
    """The first active jobs of one queue (newest first, as the queue page lists them) and how many
    it has, or why they could not be read."""

    queue: QueueRef
    jobs: list[JobSummary]
    total: int
    problem: str = ""


def aliases(selection: Selection) -> list[str]:
    """The connection aliases a selection reads, in the settings' order."""
    configured = list(get_config().connections)
    if selection.connection is None:
        return configured
    return [alias for alias in configured if alias == selection.connection]


async def read_snapshot(selection: Selection) -> Snapshot:
    """Counts of every selected queue, one pipelined round trip per connection, connections in
    parallel (as the overview reads them)."""
    reads = await asyncio.gather(*(_read_connection(alias, selection) for alias in aliases(selection)))
    return Snapshot(list(reads), time.monotonic())


async def known_queues(selection: Selection) -> tuple[list[QueueRef], list[ConnectionRead]]:
    """The selected queues of every connection that answered, and the connections that did not."""
    reads = await asyncio.gather(*(_list_connection(alias, selection) for alias in aliases(selection)))
    queues = [queue for found, _down in reads for queue in found]
    return queues, [down for _found, down in reads if down is not None]


async def _list_connection(alias: str, selection: Selection) -> tuple[list[QueueRef], ConnectionRead | None]:
    try:
        return await _selected(alias, selection), None
    except (RedisError, OSError) as exc:
        return [], ConnectionRead(alias, problem=unreadable(exc))


async def _selected(alias: str, selection: Selection) -> list[QueueRef]:
    queues = [queue for queue in await registry.directory(alias).get() if selection.keeps(queue)]
    queues = matching(queues, selection.text.strip())
    if selection.user is not None:
        queues = await avisible(selection.user, queues)
    return queues


async def _read_connection(alias: str, selection: Selection) -> ConnectionRead:
    try:
        queues = await _selected(alias, selection)
        return ConnectionRead(alias, await fetch_counts(registry.client(alias), queues))
    except (RedisError, OSError) as exc:
        return ConnectionRead(alias, problem=unreadable(exc))


def unreadable(exc: BaseException) -> str:
    """Why a connection could not be read, with Redis' (or the socket's) own words."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        return gettext_lazy("Redis is unreachable: %(error)s", error=str(exc) or type(exc).__name__)
    return gettext_lazy("Redis answered with an error: %(error)s", error=str(exc))


async def read_active(snapshot: Snapshot) -> list[ActiveJobs]:
    """The first ACTIVE_JOBS active jobs of the first ACTIVE_QUEUES queues that have any (one script
    call each, the queue page's own read)."""
    busy = [row.queue for row in snapshot.rows if not row.error and row.counts.get("active", 0) > 0]
    chosen = busy[:ACTIVE_QUEUES]
    limits = get_config().limits
    pages = await asyncio.gather(
        *(
            fetch_job_page(registry.client(queue.connection), queue, "active", 1, ACTIVE_JOBS, limits)
            for queue in chosen
        ),
        return_exceptions=True,
    )
    active: list[ActiveJobs] = []
    for queue, page in zip(chosen, pages, strict=True):
        if isinstance(page, RedisError | OSError):
            active.append(ActiveJobs(queue, [], 0, unreadable(page)))
        elif isinstance(page, BaseException):
            raise page
        else:
            active.append(ActiveJobs(queue, page.jobs, page.total, page.problem))
    return active
