"""The events watcher of a process: the facade the dashboard uses, composed of the parts of this
package (see `queues.live`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from queues.connections import ConnectionSettings
from queues.live.count_cache import CountCache
from queues.live.interest import Interest, Viewers
from queues.live.options import WatcherOptions
from queues.live.pending import PendingWork
from queues.live.reachability import REDIS_FAULTS, Reachability, StatusChange
from queues.live.refresh import Publish, Refresher
from queues.live.streams import StreamTailer
from queues.models import QueueCounts, QueueRef

logger = logging.getLogger(__name__)

ListQueues = Callable[[], Awaitable[list[QueueRef]]]


class EventWatcher:
    """Tails the events streams of watched queues and publishes what changed, for a whole process."""

    def __init__(
        self,
        connections: Mapping[str, ConnectionSettings],
        publish: Publish,
        *,
        list_queues: ListQueues | None = None,
        on_status: StatusChange | None = None,
        options: WatcherOptions | None = None,
    ) -> None:
        self.connections = dict(connections)
        self.options = options or WatcherOptions()
        self._list_queues = list_queues
        self._stopping = asyncio.Event()
        self._viewers = Viewers(self.connections, self.options.max_queues)
        self._pending = PendingWork()
        self._reachability = Reachability(self._pending, on_status)
        self._counts = CountCache(self.options)
        self._streams = StreamTailer(
            self.connections, self.options, self._viewers, self._pending, self._reachability, self._stopping
        )
        self._refresher = Refresher(
            self.connections,
            self.options,
            self._viewers,
            self._pending,
            self._counts,
            self._reachability,
            publish,
            self._relist_and_follow,
            self._stopping,
            tailed=self._streams.tails,
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return bool(self._tasks)

    @property
    def down(self) -> frozenset[str]:
        """Connection aliases that are unreachable right now."""
        return self._reachability.down

    async def start(self) -> None:
        """Start one reader per connection and the refresh loop on the running loop."""
        if self._tasks:
            return
        self._stopping.clear()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._refresher.loop(), name="live-refresh")]
        for alias in self.connections:
            self._tasks.append(loop.create_task(self._streams.read_loop(alias), name=f"live-events-{alias}"))

    async def stop(self) -> None:
        """Stop the readers and the refresh loop and wait until their connections are closed."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        self._pending.wake.set()
        self._streams.wake_readers()
        for task in tasks:
            task.cancel()
        pending = set(tasks)
        while pending:
            _done, pending = await asyncio.wait(pending, timeout=1.0)
            for task in pending:
                task.cancel()  # a library swallowed the first request (a read and its timeout raced)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                logger.error("live updates: %s had failed", task.get_name(), exc_info=task.exception())

    async def watch(self, interest: Interest, token: object | None = None) -> None:
        """Add a viewer's interest; with a token, the next refresh answers it with fresh data."""
        if self._viewers.add(interest):
            await self._relist()
        await self._follow()
        if token is not None:
            self._pending.requests.append((token, interest))
        self._pending.wake.set()

    def unwatch(self, interest: Interest) -> None:
        """Remove a viewer's interest (the inverse of one `watch`)."""
        self._viewers.remove(interest)
        self._refresher.forget_unwatched_jobs()
        self._retarget()

    def fresh_counts(self, queues: list[QueueRef]) -> dict[QueueRef, QueueCounts]:
        """Counts this watcher knows to be current: read within the interval, or read since the last
        event of the queue's stream (the stream is tailed, so a later change would have marked it).

        Page views use these instead of reading Redis, so their cost does not grow with viewers.
        """
        down = self._reachability.down
        return self._counts.fresh(
            [queue for queue in queues if queue.connection not in down],
            quiet=lambda queue: queue not in self._pending.queues and self._streams.tails(queue),
        )

    def remember_counts(self, rows: list[QueueCounts], read_at: float) -> None:
        """Counts a page view read itself (at `read_at`, after the streams were tailed): kept like the
        watcher's own reads, so the next view of a quiet queue needs no Redis read."""
        self._counts.remember(rows, read_at, tailed=self._streams.tails)

    def counted_queues(self) -> list[QueueRef]:
        """Queues whose counts someone views, viewed queues first, at most `max_queues`."""
        return self._viewers.counted_queues()

    def tailed_queues(self) -> list[QueueRef]:
        """Queues whose events stream is read: counted ones and those of watched jobs."""
        return self._viewers.tailed_queues()

    def _retarget(self) -> list[str]:
        """Align the tailed streams with the interest; returns the stream keys added."""
        added, dropped = self._streams.retarget(self._viewers.tailed_queues())
        for queue in dropped:
            self._counts.forget(queue)
            self._refresher.forget_queue(queue)
        return added

    async def _follow(self) -> None:
        """Tail what the interest needs, new streams starting after their newest entry."""
        added = self._retarget()
        if added:
            await self._streams.resolve_offsets(added)

    async def _relist(self) -> None:
        """Refresh the list of every queue (for overview viewers)."""
        if self._list_queues is None:
            return
        try:
            self._viewers.listed = sorted(await self._list_queues())
        except REDIS_FAULTS as exc:
            logger.warning("live updates could not list queues: %s", exc)

    async def _relist_and_follow(self) -> None:
        """List every queue again and tail the new ones (a resync while the overview is viewed)."""
        await self._relist()
        await self._follow()
