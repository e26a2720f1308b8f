"""Websocket consumers of live pages: they join the groups of what their page shows and relay fragments.

Every message a page receives is HTML made of elements with ids the page has; the htmx ws extension
swaps them out of band. Refused sockets are closed before the handshake completes, with a code:
4401 nobody logged in, 4403 no view permission, 4404 unknown connection or queue, 4410 live
updates disabled in settings (or no channel layer configured).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from dashboard import registry
from dashboard.conf import get_config
from dashboard.live import fragments
from dashboard.live.hub import JOB, OVERVIEW, QUEUE, LiveView, get_hub
from dashboard.permissions import VIEW, has_permission
from queues.events import REDIS_FAULTS
from queues.models import QueueRef
from queues.states import STATES

CLOSE_ANONYMOUS = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_DISABLED = 4410


class Refused(Exception):
    """The socket may not open; carries the close code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class LiveConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """The part every live page shares: access checks, joining the hub and relaying fragments."""

    view: LiveView | None = None

    async def connect(self) -> None:
        """Check the user like the pages do, then join the groups and the hub."""
        try:
            await self.check_access()
            view = await self.resolve_view()
        except Refused as refused:
            await self.close(code=refused.code)
            return
        await self.accept()
        self.view = view
        for group in view.groups():
            await self.channel_layer.group_add(group, self.channel_name)
        hub = get_hub()
        await hub.join(self.channel_name, view)
        banner = hub.status_html()
        if banner:
            await self.send(text_data=banner)

    async def disconnect(self, code: int) -> None:
        """Leave the groups and the hub (the last viewer stops the watcher)."""
        if self.view is None:
            return
        for group in self.view.groups():
            await self.channel_layer.group_discard(group, self.channel_name)
        self.view = None
        await get_hub().leave(self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Pages send nothing that matters; ignore whatever arrives."""

    async def check_access(self) -> None:
        """Refuse anonymous users, users without the view permission, and disabled live updates."""
        user = self.scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            raise Refused(CLOSE_ANONYMOUS)
        if not await database_sync_to_async(has_permission)(user, VIEW, None):
            raise Refused(CLOSE_FORBIDDEN)
        if not get_config().live.enabled or self.channel_layer is None:
            raise Refused(CLOSE_DISABLED)

    async def resolve_view(self) -> LiveView:
        """What this socket's page shows, from its URL."""
        raise NotImplementedError

    def url_kwargs(self) -> dict[str, str]:
        """The captured parts of the socket's path."""
        return dict(self.scope.get("url_route", {}).get("kwargs", {}))

    def query(self, name: str) -> str:
        """A query string parameter of the socket URL."""
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get(name)
        return values[0] if values else ""

    async def find_queue(self, connection: str, key: str) -> QueueRef:
        """The queue of the URL, confirmed like the pages do; unconfirmed while Redis is away."""
        try:
            return await registry.find_queue(connection, key)
        except (registry.UnknownQueue, registry.UnknownConnection):
            raise Refused(CLOSE_NOT_FOUND) from None
        except REDIS_FAULTS:
            # The page loaded, so the queue existed; the watcher says when Redis is back.
            try:
                return QueueRef.from_key(connection, key)
            except ValueError:
                raise Refused(CLOSE_NOT_FOUND) from None

    async def live_html(self, event: dict[str, Any]) -> None:
        """Fragments for everyone in a group (job parts, status banners)."""
        if event.get("html"):
            await self.send(text_data=event["html"])


class OverviewConsumer(LiveConsumer):
    """The overview: counts and paused flags of every queue the page lists."""

    known: set[str] | None = None
    noted_new = False

    async def resolve_view(self) -> LiveView:
        """The overview; remembers the queues its page lists, to push only cells it has."""
        try:
            self.known = {fragments.queue_dom_id(queue) for queue in await registry.all_queues()}
        except REDIS_FAULTS:
            self.known = None  # the page could not list queues either; accept every cell
        return LiveView(OVERVIEW)

    async def live_overview(self, event: dict[str, Any]) -> None:
        """Count cells by queue; cells of queues the page does not list become a "new queues" note."""
        cells: dict[str, str] = event.get("cells", {})
        known = self.known
        html = "".join(cell for queue_id, cell in cells.items() if known is None or queue_id in known)
        if known is not None and not self.noted_new and any(queue_id not in known for queue_id in cells):
            self.noted_new = True
            html += fragments.new_queues_note()
        if html:
            await self.send(text_data=html)


class QueueConsumer(LiveConsumer):
    """A queue page: tab counts, and on a first page a marker of jobs that arrived."""

    arrived = 0

    async def resolve_view(self) -> LiveView:
        """The queue, state, page and page size the page shows."""
        kwargs = self.url_kwargs()
        queue = await self.find_queue(kwargs.get("connection", ""), kwargs.get("queue_key", ""))
        state = self.query("state") if self.query("state") in STATES else "waiting"
        return LiveView(
            QUEUE,
            queue,
            state=state,
            page=positive(self.query("page"), 1),
            per_page=positive(self.query("per_page"), get_config().default_page_size),
        )

    async def live_queue(self, event: dict[str, Any]) -> None:
        """New tab counts, plus the "n new jobs" marker when jobs reached the head of this page's list."""
        view = self.view
        if view is None or view.queue is None:
            return
        html = event.get("html", "")
        arrived = int(event.get("arrivals", {}).get(view.state, 0))
        if arrived and view.page == 1:
            self.arrived += arrived
            html += fragments.new_jobs_marker(view.queue, view.state, view.per_page, self.arrived)
        if html:
            await self.send(text_data=html)


class JobConsumer(LiveConsumer):
    """A job page: state, timings, attempts, progress, failure and the last page of logs."""

    async def resolve_view(self) -> LiveView:
        """The job the page shows."""
        kwargs = self.url_kwargs()
        queue = await self.find_queue(kwargs.get("connection", ""), kwargs.get("queue_key", ""))
        job_id = kwargs.get("job_id", "")
        if not job_id:
            raise Refused(CLOSE_NOT_FOUND)
        return LiveView(JOB, queue, job_id=job_id)


def positive(raw: str, default: int) -> int:
    """A positive integer query parameter, or the default."""
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= 1 else default
