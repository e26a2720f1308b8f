"""The process's live hub: one events watcher shared by every websocket viewer of this process.

The first viewer starts the watcher and the last one stops it. The watcher reports what changed
once per refresh; the hub renders it once with the pages' partials and sends it to the Channels
group of each queue, job and the overview, so fan-out happens in the channel layer, never in a
loop over sockets. A viewer that joins gets a fresh snapshot of what its page shows from the next
refresh (the page may be older than the watcher's last look).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import weakref
from dataclasses import dataclass
from enum import Enum
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import translation

from dashboard import health, registry
from dashboard.conf import get_config
from dashboard.live import fragments, groups
from queues.events import EventWatcher, Interest, JobRef, LiveUpdate, WatcherOptions
from queues.health import Verdict
from queues.models import QueueCounts, QueueRef

logger = logging.getLogger("bullmq_dashboard.live")


class ViewKind(Enum):
    """The kinds of page a socket follows."""

    OVERVIEW = "overview"
    QUEUE = "queue"
    JOB = "job"


@dataclass(frozen=True)
class LiveView:
    """What one socket's page shows: the overview, a page of a queue's state, or a job."""

    kind: ViewKind
    queue: QueueRef | None = None
    # The overview's rows on the page (the watcher follows only those).
    queues: tuple[QueueRef, ...] = ()
    job_id: str | None = None
    state: str = "waiting"
    page: int = 1
    per_page: int = 25
    # The language the page was rendered in: what is pushed to it is rendered in the same one.
    language: str = ""

    @property
    def job(self) -> JobRef | None:
        """The job of a job page."""
        if self.kind is ViewKind.JOB and self.queue is not None and self.job_id is not None:
            return JobRef(self.queue, self.job_id)
        return None

    def interest(self) -> Interest:
        """What the watcher has to follow for this page."""
        if self.kind is ViewKind.OVERVIEW:
            return Interest(queues=self.queues)
        job = self.job
        if job is not None:
            return Interest(jobs=(job,))
        return Interest(queues=(self.queue,) if self.queue else ())

    def groups(self) -> list[str]:
        """The Channels groups this page listens to (in its language)."""
        names = [groups.everyone_group()]
        job = self.job
        if self.kind is ViewKind.OVERVIEW:
            names.append(groups.overview_group())
        elif job is not None:
            names.append(groups.job_group(job))
        elif self.queue is not None:
            names.append(groups.queue_group(self.queue))
        return [groups.in_language(name, self.language) for name in names]


class LiveHub:
    """Viewers of this process, its watcher, and the rendering of what the watcher reports."""

    def __init__(self) -> None:
        self._views: dict[str, LiveView] = {}
        # Page views without a socket (reloads, polling clients) keep the watcher for a while.
        self._leases: dict[LiveView, float] = {}
        self._lease_task: asyncio.Task[None] | None = None
        self._watcher: EventWatcher | None = None
        self._lock = asyncio.Lock()
        # (group, element id) -> a digest of the HTML last sent to that group, so only changed elements
        # go out (a digest: a job page's log pager alone can be megabytes of HTML).
        self._sent: dict[tuple[str, str], bytes] = {}
        self._down: set[str] = set()

    @property
    def viewers(self) -> int:
        """Open sockets of this process."""
        return len(self._views)

    @property
    def overview_viewers(self) -> int:
        """Open overview sockets of this process (the overview's census reads while there are any)."""
        return sum(view.kind is ViewKind.OVERVIEW for view in self._views.values())

    @property
    def watcher(self) -> EventWatcher | None:
        """The running watcher, while anyone views."""
        return self._watcher

    def status_html(self, language: str = "") -> str | None:
        """The Redis-down banner while a connection is unreachable."""
        if not self._down:
            return None
        with _language(language):
            return fragments.status_banner(sorted(self._down))

    def _languages(self) -> set[str]:
        """The languages the open sockets' pages are in."""
        return {view.language for view in self._views.values()}

    async def _ensure_watcher(self) -> EventWatcher:
        if self._watcher is None:
            config = get_config()
            self._watcher = EventWatcher(
                config.connections,
                self._publish,
                list_queues=registry.all_queues,
                on_status=self._status,
                options=WatcherOptions(
                    interval=config.live.refresh_interval,
                    count_interval=config.live.count_interval,
                    resync_interval=config.live.resync_interval,
                    max_queues=config.live.max_queues,
                    limits=config.limits,
                ),
            )
            await self._watcher.start()
        return self._watcher

    async def join(self, channel_name: str, view: LiveView) -> None:
        """Count a viewer in; the first one starts the watcher."""
        async with self._lock:
            watcher = await self._ensure_watcher()
            self._views[channel_name] = view
            await watcher.watch(view.interest(), token=channel_name)

    async def leave(self, channel_name: str) -> None:
        """Count a viewer out; the last one (with no page-view lease left) stops the watcher."""
        async with self._lock:
            view = self._views.pop(channel_name, None)
            if view is None or self._watcher is None:
                return
            self._watcher.unwatch(view.interest())
            if not self._views and not self._leases:
                await self._stop_if_unused()
                return
            in_use = {group for other in self._views.values() for group in other.groups()}
            for key in [key for key in self._sent if key[0] not in in_use]:
                del self._sent[key]

    async def lease(self, view: LiveView, seconds: float) -> EventWatcher:
        """Keep the watcher following what a page shows for `seconds` after a page view."""
        async with self._lock:
            watcher = await self._ensure_watcher()
            if view not in self._leases:
                await watcher.watch(view.interest())
            self._leases[view] = time.monotonic() + seconds
            if self._lease_task is None or self._lease_task.done():
                self._lease_task = asyncio.get_running_loop().create_task(self._expire_leases())
            return watcher

    async def _expire_leases(self) -> None:
        while self._leases:
            await asyncio.sleep(min(1.0, max(0.05, min(self._leases.values()) - time.monotonic())))
            async with self._lock:
                now = time.monotonic()
                for view in [view for view, until in self._leases.items() if until <= now]:
                    del self._leases[view]
                    if self._watcher is not None:
                        self._watcher.unwatch(view.interest())
                await self._stop_if_unused()

    async def _stop_if_unused(self) -> None:
        if self._views or self._leases or self._watcher is None:
            return
        watcher, self._watcher = self._watcher, None
        self._sent.clear()
        self._down.clear()
        await watcher.stop()

    async def shutdown(self) -> None:
        """Drop every lease and stop the watcher if no socket uses it (tests and shutdown)."""
        task, self._lease_task = self._lease_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._lock:
            if self._watcher is not None:
                for view in self._leases:
                    self._watcher.unwatch(view.interest())
            self._leases.clear()
            await self._stop_if_unused()

    def _changed(self, group: str, elements: dict[str, str]) -> dict[str, str]:
        """The elements whose HTML differs from what the group was last sent (and remember them)."""
        changed = {}
        for element_id, html in elements.items():
            mark = hashlib.blake2b(html.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            if self._sent.get((group, element_id)) != mark:
                self._sent[(group, element_id)] = mark
                changed[element_id] = html
        return changed

    async def _publish(self, update: LiveUpdate) -> None:
        """Render what changed once per language in use and send it to the groups; answer joining
        viewers directly."""
        layer = get_channel_layer()
        if layer is None or not self._views:
            return
        verdicts = await self._verdicts(update)
        for language in sorted(self._languages()):
            with _language(language):
                await self._publish_in(layer, update, language, verdicts)
        # Joining viewers of the same kind of page and language share one rendering of this refresh.
        snapshots: dict[tuple[LiveView, str], dict[str, Any] | None] = {}
        for token, _interest in update.answered:
            view = self._views.get(str(token))
            if view is None:
                continue
            shared = (LiveView(view.kind, view.queue, job_id=view.job_id), view.language)
            if shared not in snapshots:
                with _language(view.language):
                    snapshots[shared] = self._snapshot(view, update, verdicts)
            snapshot = snapshots[shared]
            if snapshot is not None:
                await layer.send(str(token), snapshot)

    @staticmethod
    async def _verdicts(update: LiveUpdate) -> dict[QueueRef, Verdict]:
        """The health of the queues this refresh counted, from the counts it read (each queue read at
        most once per HEALTH["CACHE_SECONDS"], dashboard.health); those not judged are left out (their
        pages keep what they show)."""
        if not update.counts:
            return {}
        try:
            judged = await health.queue_verdicts(sorted(update.counts), update.counts)
        except Exception:  # the counts still go out
            logger.exception("live updates: judging the queues' health failed")
            return {}
        return {queue: verdict for queue, verdict in judged.items() if verdict is not None}

    async def _publish_in(
        self, layer: Any, update: LiveUpdate, language: str, verdicts: dict[QueueRef, Verdict]
    ) -> None:
        def group(name: str) -> str:
            return groups.in_language(name, language)

        # The groups of this process's sockets: a queue page nobody here views is not rendered (its
        # groups are per process, and a socket that joins gets a fresh snapshot). With the overview
        # open and many busy queues, rendering every queue's tabs and health panel each refresh took
        # a third of the time spent publishing, for empty groups (bench/soak.py, under py-spy).
        viewed = {name for view in self._views.values() for name in view.groups()}
        cells: dict[QueueRef, str] = {}
        for queue in sorted(update.changed | set(update.arrivals) | set(verdicts)):
            row = update.counts.get(queue)
            queue_group = group(groups.queue_group(queue))
            on_page = queue_group in viewed
            tabs: dict[str, str] = {}
            elements: dict[str, str] = {}
            if row is not None and queue in update.changed:
                elements.update(fragments.overview_cells(row))
                if on_page:
                    tabs = self._changed(queue_group, fragments.tab_counts(row))
            if queue in verdicts:
                elements.update(fragments.health_cell(queue, verdicts[queue]))
                if on_page:
                    tabs.update(self._changed(queue_group, fragments.health_panel(queue, verdicts[queue])))
            changed_cells = self._changed(group(groups.overview_group()), elements)
            if changed_cells:
                cells[queue] = "".join(changed_cells.values())
            arrivals = update.arrivals.get(queue, {})
            if on_page and (tabs or arrivals):
                message = {"type": "live.queue", "html": "".join(tabs.values()), "arrivals": arrivals}
                await layer.group_send(queue_group, message)
        if cells:
            attention = {queue for queue in cells if queue in verdicts and verdicts[queue].needs_attention}
            await layer.group_send(group(groups.overview_group()), overview_message(cells, attention))
        for job, detail in sorted(update.jobs.items(), key=lambda item: item[0]):
            parts = self._changed(group(groups.job_group(job)), fragments.job_parts(job, detail))
            if parts:
                html = "".join(parts.values())
                await layer.group_send(group(groups.job_group(job)), {"type": "live.html", "html": html})

    def _snapshot(
        self, view: LiveView, update: LiveUpdate, verdicts: dict[QueueRef, Verdict]
    ) -> dict[str, Any] | None:
        """Everything a joining viewer's page shows, fresh from this refresh."""
        if view.kind is ViewKind.OVERVIEW:
            cells = {
                queue: "".join(fragments.overview_cells(row).values())
                + (
                    "".join(fragments.health_cell(queue, verdicts[queue]).values())
                    if queue in verdicts
                    else ""
                )
                for queue, row in update.counts.items()
            }
            return overview_message(cells)
        job = view.job
        if job is not None:
            if job not in update.jobs:
                return None
            html = "".join(fragments.job_parts(job, update.jobs[job]).values())
            return {"type": "live.html", "html": html}
        row = update.counts.get(view.queue) if view.queue else None
        if row is None:
            return None
        html = "".join(fragments.tab_counts(row).values())
        if row.queue in verdicts:
            html += "".join(fragments.health_panel(row.queue, verdicts[row.queue]).values())
        return {"type": "live.queue", "html": html, "arrivals": {}}

    async def publish_census(self, rows: dict[QueueRef, QueueCounts], troubled: set[QueueRef]) -> None:
        """Rows the overview's census read that changed, of queues the watcher does not follow (those
        it follows it pushes itself, fresher), with those of `troubled` marked as needing attention:
        overview sockets turn them into the "new queues" and "another queue needs attention" notes, and
        into cells where a page shows them. No health is read for them (the census reads thousands of
        queues; their verdicts are read when a page shows them)."""
        layer = get_channel_layer()
        if layer is None or not self._views or self._watcher is None:
            return
        followed = set(self._watcher.counted_queues())
        off_page = {queue: row for queue, row in rows.items() if queue not in followed}
        for language in sorted(self._languages()):
            with _language(language):
                group = groups.in_language(groups.overview_group(), language)
                cells = {}
                for queue, row in sorted(off_page.items()):
                    changed = self._changed(group, fragments.overview_cells(row))
                    if changed:
                        cells[queue] = "".join(changed.values())
                if cells:
                    await layer.group_send(group, overview_message(cells, troubled & set(cells)))

    async def nudge_alerts(self) -> None:
        """Tell the overview and queue pages of this process that the firing alerts changed; each page
        fetches its own banner (filtered by its user's permission)."""
        layer = get_channel_layer()
        if layer is None or not self._views:
            return
        html = f'<span id="bullmq-alerts-nudge" hidden data-changed="{time.time_ns()}"></span>'
        names = {groups.overview_group()} | {
            groups.queue_group(view.queue)
            for view in self._views.values()
            if view.kind is ViewKind.QUEUE and view.queue is not None
        }
        for language in sorted(self._languages()):
            for name in sorted(names):
                await layer.group_send(
                    groups.in_language(name, language), {"type": "live.html", "html": html}
                )

    async def _status(self, alias: str, up: bool) -> None:
        """Tell every viewer when a Redis connection goes away or comes back."""
        if up:
            self._down.discard(alias)
        else:
            self._down.add(alias)
        layer = get_channel_layer()
        if layer is not None:
            for language in sorted(self._languages()):
                with _language(language):
                    html = fragments.status_banner(sorted(self._down))
                group = groups.in_language(groups.everyone_group(), language)
                await layer.group_send(group, {"type": "live.html", "html": html})


def _language(language: str) -> Any:
    """Render in a page's language ("" for the project's LANGUAGE_CODE)."""
    return translation.override(language or settings.LANGUAGE_CODE)


def overview_message(cells: dict[QueueRef, str], attention: set[QueueRef] | None = None) -> dict[str, Any]:
    """An overview update: cells by queue element id, which queue each id is (each socket passes on only
    the queues its user may view), and the ids of those judged in need of attention just now."""
    return {
        "type": "live.overview",
        "cells": {fragments.queue_dom_id(queue): html for queue, html in cells.items()},
        "queues": {
            fragments.queue_dom_id(queue): [queue.connection, queue.prefix, queue.name] for queue in cells
        },
        "attention": sorted(fragments.queue_dom_id(queue) for queue in attention or ()),
    }


# One hub per event loop: daphne runs one loop per process; tests run one loop per test.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveHub] = weakref.WeakKeyDictionary()


def get_hub() -> LiveHub:
    """The hub of the running event loop."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = LiveHub()
    return hub
