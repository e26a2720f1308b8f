"""Websocket consumers of live pages: they join the groups of what their page shows and relay fragments.

Every message a page receives is HTML made of elements with ids the page has; the htmx ws extension
swaps them out of band. A socket gets exactly what its user may see on the page: the same view
permission as the page, per queue. Refused sockets are closed before the handshake completes, with
a code: 4401 nobody logged in, 4403 no view permission, 4404 unknown connection, queue or job id,
4410 live updates disabled in settings (or no channel layer configured), 4429 too many sockets open
for this user. An open socket is closed (4401/4403) at once when its session logs out, and within
`LIVE["RECHECK_INTERVAL"]` seconds when its user loses the permission or the session ends otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from channels.auth import get_user
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.urls import LocalePrefixPattern, get_resolver
from django.utils import translation

from dashboard import registry
from dashboard.census import get_census
from dashboard.conf import get_config
from dashboard.live import fragments, groups
from dashboard.live.hub import LiveView, ViewKind, get_hub
from dashboard.overview_order import ORDER_PARAMETERS, order_of
from dashboard.overview_page import OverviewPage, pick_page
from dashboard.permissions import VIEW, has_permission, visible
from dashboard.users import User
from dashboard.views.base import BadRequest
from queues.events import REDIS_FAULTS
from queues.keys import not_a_job
from queues.models import QueueRef
from queues.states import STATES

CLOSE_ANONYMOUS = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_DISABLED = 4410
CLOSE_TOO_MANY = 4429
CLOSE_UNAVAILABLE = 1011
logger = logging.getLogger("bullmq_dashboard.live")

# Open sockets per user in this process (their key: the user's primary key).
_open_sockets: Counter[object] = Counter()


class Refused(Exception):
    """The socket may not open (or stay open); carries the close code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _may_view(user: User, queue: QueueRef | None) -> bool:
    """May view the dashboard and, given a queue, that queue."""
    return has_permission(user, VIEW, None) and (queue is None or has_permission(user, VIEW, queue))


_amay_view = database_sync_to_async(_may_view)


class LiveConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """The part every live page shares: access checks, joining the hub and relaying fragments."""

    view: LiveView | None = None
    user_key: object = None
    recheck: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Check the user like the pages do, then join the groups and the hub."""
        try:
            user = self.check_login()
            if not get_config().live.enabled or self.channel_layer is None:
                raise Refused(CLOSE_DISABLED)
            if not await _amay_view(user, None):
                raise Refused(CLOSE_FORBIDDEN)
            view = await self.resolve_view()
            if not await _amay_view(user, view.queue):
                raise Refused(CLOSE_FORBIDDEN if view.queue is None else CLOSE_NOT_FOUND)
            self.take_slot(user)
        except Refused as refused:
            await self.close(code=refused.code)
            return
        await self.accept()
        self.view = view
        hub = get_hub()
        try:
            for group in [*view.groups(), *self.session_groups()]:
                await self.channel_layer.group_add(group, self.channel_name)
            await hub.join(self.channel_name, view)
        except Exception:  # Redis busy or away, a channel layer error: give everything back
            logger.warning("a live socket could not join", exc_info=True)
            await self.disconnect(CLOSE_UNAVAILABLE)
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        self.recheck = asyncio.get_running_loop().create_task(self.recheck_access())
        banner = hub.status_html(view.language)
        if banner:
            await self.send(text_data=banner)

    async def disconnect(self, code: int) -> None:
        """Leave the groups and the hub (the last viewer stops the watcher)."""
        if self.recheck is not None and self.recheck is not asyncio.current_task():
            self.recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.recheck
        self.recheck = None
        if self.user_key is not None:
            _open_sockets[self.user_key] -= 1
            if _open_sockets[self.user_key] <= 0:
                del _open_sockets[self.user_key]
            self.user_key = None
        if self.view is None:
            return
        for group in [*self.view.groups(), *self.session_groups()]:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.view = None
        await get_hub().leave(self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Pages send nothing that matters; ignore whatever arrives."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Hand a push (`live.*`) to its handler without channels' `aclose_old_connections()` first.

        channels runs `close_old_connections` in the thread-sensitive executor before every message, a
        thread hop per push per socket: with 50 overview sockets on 200 busy queues, over a thousand a
        second and about a tenth of the process's time (bench/load.py, under py-spy). The push
        handlers use the database only through `database_sync_to_async`, which closes old connections
        itself. Connects, receives and disconnects go through channels' own dispatch."""
        message_type = str(message.get("type", ""))
        handler = getattr(self, get_handler_name(message), None) if message_type.startswith("live.") else None
        if handler is None:
            await super().dispatch(message)
            return
        await handler(message)

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        """Send, and leave at once when the server refuses because the socket is already closing.

        A push can meet a socket between its close handshake and the server's disconnect message;
        daphne then raises autobahn's `Disconnected` (other servers their own errors). Raised out of a
        handler it would end the consumer before `disconnect()` ran, keeping the viewer in the hub, its
        groups and its per-user socket slot for good. `disconnect()` runs again (doing nothing) when the
        server's disconnect message arrives."""
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Exception:
            logger.debug("a live push met a closing socket", exc_info=True)
            await self.disconnect(CLOSE_UNAVAILABLE)

    def check_login(self) -> Any:
        """The logged-in user of the socket's session, or Refused(4401)."""
        user = self.scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            raise Refused(CLOSE_ANONYMOUS)
        return user

    def take_slot(self, user: Any) -> None:
        """Count this socket for its user; Refused(4429) beyond the per-user cap."""
        key = user.pk
        if _open_sockets[key] >= get_config().live.max_sockets_per_user:
            raise Refused(CLOSE_TOO_MANY)
        _open_sockets[key] += 1
        self.user_key = key

    def session_groups(self) -> list[str]:
        """The group that hears when this socket's session logs out."""
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        return [groups.session_group(key)] if key else []

    async def recheck_access(self) -> None:
        """Close the socket once its session no longer has a user allowed to see the page."""
        interval = get_config().live.recheck_interval
        while True:
            await asyncio.sleep(interval)
            view = self.view
            if view is None:
                return
            user = await get_user(fresh_session_scope(self.scope))
            if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) != self.user_key:
                await self.close(code=CLOSE_ANONYMOUS)
                return
            self.scope["user"] = user
            if not await _amay_view(user, view.queue):
                await self.close(code=CLOSE_FORBIDDEN)
                return
            await self.refresh_visibility()

    async def refresh_visibility(self) -> None:
        """Re-decide what the page may show, after a re-check (the overview: which queues)."""

    async def resolve_view(self) -> LiveView:
        """What this socket's page shows, from its URL."""
        raise NotImplementedError

    def url_kwargs(self) -> dict[str, str]:
        """The captured parts of the socket's path."""
        return dict(self.scope.get("url_route", {}).get("kwargs", {}))

    def page_language(self) -> str:
        """The language the page was rendered in (its `lang` query value), when the project supports it
        and the dashboard has words for it; "" (the project's LANGUAGE_CODE) otherwise. Each language in
        use costs one more rendering of every push, so a socket cannot ask for any language it likes."""
        wanted = self.query("lang")
        if not wanted:
            return ""
        try:
            language = translation.get_supported_language_variant(wanted)
        except LookupError:
            return ""
        if language.split("-")[0] in catalog_languages() or language_prefixed_urls():
            # With i18n_patterns the language is in every link a push renders: keep the page's own,
            # even without words for it (the host's LANGUAGES bounds how many there can be).
            return language
        return ""

    def query_names(self) -> set[str]:
        """The names of the socket URL's query string parameters."""
        return set(parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))

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
            # Redis is away: a queue the last discovery listed is taken as it was (the watcher says
            # when Redis is back); any other key is refused, as it could not be confirmed.
            try:
                queue = QueueRef.from_key(connection, key)
                listed = registry.directory(connection).queues or []
            except (ValueError, registry.UnknownConnection):
                raise Refused(CLOSE_NOT_FOUND) from None
            if queue not in listed:
                raise Refused(CLOSE_NOT_FOUND) from None
            return queue

    async def live_html(self, event: dict[str, Any]) -> None:
        """Fragments for everyone in a group (job parts, status banners)."""
        if event.get("html"):
            await self.send(text_data=event["html"])

    async def live_logout(self, event: dict[str, Any]) -> None:
        """The session logged out: close at once."""
        await self.close(code=CLOSE_ANONYMOUS)


class OverviewConsumer(LiveConsumer):
    """The overview: counts and paused flags of every queue the page lists and its user may view."""

    # The queues the page lists that this user may view (None while Redis was away: each queue is then
    # asked about once), and the answers for queues the page does not list.
    known: set[QueueRef] | None = None
    visible: dict[QueueRef, bool]
    noted_new = False
    # The rows the page shows (only their cells are passed on, only they are followed). On a "needs
    # attention" page also those it may list (its user's, matching its `q`) and those it lists on any
    # of its pages: one of the others coming to need attention is said in a note. None when Redis
    # could not say.
    listed: set[QueueRef] | None = None
    attention_pool: set[QueueRef] | None = None
    attention_listed: set[QueueRef] | None = None
    noted_attention = False

    async def resolve_view(self) -> LiveView:
        """The rows the page shows, as its `rows` parameter names them (element ids), of the queues this
        user may view: followed whatever order the census has come to since the page was rendered.
        Without `rows` (a client of its own), the page its other parameters name, picked now."""
        await self.refresh_visibility()
        get_census().keep_reading()
        shown: tuple[QueueRef, ...] = ()
        if self.known is not None:
            if "rows" in self.query_names():
                wanted = set(self.query("rows").split(",")[: get_config().max_page_size * 4])
                shown = tuple(sorted(q for q in self.known if fragments.queue_dom_id(q) in wanted))
            else:
                page = await self.pick(positive(self.query("page"), 1))
                shown = tuple(page.shown) if page is not None else ()
            self.listed = set(shown)
            if self.query("attention") == "1" and self.query("failing") != "1":
                page = await self.pick(1)
                if page is not None:
                    self.attention_pool = set(self.pool)
                    self.attention_listed = set(page.ordered)
        return LiveView(ViewKind.OVERVIEW, queues=shown, language=self.page_language())

    # The queues this socket's page may list (set by `pick`).
    pool: tuple[QueueRef, ...] = ()

    async def pick(self, number: int) -> OverviewPage | None:
        """Page `number` of the overview this socket's parameters name, picked as the page view picks
        it (its queues matching `q` in `pool`); None when Redis could not say or a parameter is bad."""
        try:
            order = order_of({name: self.query(name) for name in ORDER_PARAMETERS}, self.query("q"))
        except BadRequest:  # the page itself answered 400
            return None
        try:
            known = self.known or set()
            pool = order.select([q for q in await registry.all_queues() if q in known])
            self.pool = tuple(pool)
            return await pick_page(pool, order, number)
        except REDIS_FAULTS:  # the page's cells are passed on as on any overview
            return None

    async def refresh_visibility(self) -> None:
        """The listed queues this user may view (again after each re-check: a permission can go)."""
        self.visible = {}
        try:
            queues = await registry.all_queues()
        except REDIS_FAULTS:
            self.known = None
            return
        user = self.scope["user"]
        self.known = set(await database_sync_to_async(visible)(user, queues))

    def language(self) -> str:
        """The language of this socket's page."""
        return (self.view.language if self.view else "") or settings.LANGUAGE_CODE

    async def may_see(self, queue: QueueRef) -> bool:
        """Whether this socket's user may view a queue the page does not list (asked once per queue)."""
        if queue not in self.visible:
            self.visible[queue] = await _amay_view(self.scope["user"], queue)
        return self.visible[queue]

    async def live_overview(self, event: dict[str, Any]) -> None:
        """Count cells by queue; cells of queues the page does not list become a "new queues" note.

        Each cell is matched by the queue the message names (never by its element id alone, a short
        digest), and passed on only for a queue this user may view."""
        cells: dict[str, str] = event.get("cells", {})
        queues: dict[str, list[str]] = event.get("queues", {})
        attention = set(event.get("attention", ()))
        html = ""
        appeared = False
        for queue_id, cell in cells.items():
            queue = named_queue(queues.get(queue_id))
            if queue is None or fragments.queue_dom_id(queue) != queue_id:
                continue
            if self.known is not None and queue not in self.known:
                # A queue that appeared since the page was rendered: a note, when this user may view it.
                appeared = appeared or await self.may_see(queue)
                continue
            if self.listed is not None and queue not in self.listed:
                # Not a row of this page: no cells, but a note when it may be listed, is not listed on
                # another page already, and now needs attention.
                pool = (self.attention_pool or set()) - (self.attention_listed or set())
                if queue in pool and queue_id in attention and not self.noted_attention:
                    self.noted_attention = True
                    with translation.override(self.language()):
                        html += fragments.attention_more_note()
                continue
            if self.known is not None or await self.may_see(queue):
                html += cell
        if appeared and not self.noted_new:
            self.noted_new = True
            with translation.override(self.language()):
                html += fragments.new_queues_note()
        if html:
            await self.send(text_data=html)


def named_queue(parts: object) -> QueueRef | None:
    """The queue an overview message names as [connection, prefix, name]."""
    if isinstance(parts, list) and len(parts) == 3 and all(isinstance(part, str) for part in parts):
        return QueueRef(*parts)
    return None


class QueueConsumer(LiveConsumer):
    """A queue page: tab counts, and on a first page a marker of jobs that arrived."""

    arrived = 0

    async def resolve_view(self) -> LiveView:
        """The queue, state, page and page size the page shows."""
        kwargs = self.url_kwargs()
        queue = await self.find_queue(kwargs.get("connection", ""), kwargs.get("queue_key", ""))
        state = self.query("state") if self.query("state") in STATES else "waiting"
        return LiveView(
            ViewKind.QUEUE,
            queue,
            state=state,
            page=positive(self.query("page"), 1),
            per_page=min(
                positive(self.query("per_page"), get_config().default_page_size), get_config().max_page_size
            ),
            language=self.page_language(),
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
            with translation.override(view.language or settings.LANGUAGE_CODE):
                html += fragments.new_jobs_marker(view.queue, view.state, view.per_page, self.arrived)
        if html:
            await self.send(text_data=html)


class JobConsumer(LiveConsumer):
    """A job page (`?id=`): state, timings, attempts, progress, failure and the last page of logs."""

    async def resolve_view(self) -> LiveView:
        """The job the page shows."""
        kwargs = self.url_kwargs()
        queue = await self.find_queue(kwargs.get("connection", ""), kwargs.get("queue_key", ""))
        job_id = socket_job_id(self.scope.get("query_string", b""))
        if job_id is None or not_a_job(job_id) is not None:
            raise Refused(CLOSE_NOT_FOUND)
        return LiveView(ViewKind.JOB, queue, job_id=job_id, language=self.page_language())


def language_prefixed_urls() -> bool:
    """The project's URLs carry the language as a prefix (i18n_patterns)."""
    return any(
        isinstance(url.pattern, LocalePrefixPattern)
        for url in get_resolver(settings.ROOT_URLCONF).url_patterns
    )


@functools.cache
def catalog_languages() -> frozenset[str]:
    """The languages the dashboard has words for: English and each catalog it ships."""
    locale = Path(__file__).with_name("locale")
    return frozenset({"en", *(path.name.split("_")[0].lower() for path in locale.iterdir() if path.is_dir())})


def fresh_session_scope(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope with its session read again from the store (the scope's own is cached since connect)."""
    key = getattr(scope.get("session"), "session_key", None)
    if not key:
        return scope
    return {**scope, "session": import_module(settings.SESSION_ENGINE).SessionStore(key)}


def socket_job_id(query_string: bytes) -> str | None:
    """The one `id` of a socket URL's query, percent-decoded as strict UTF-8 (None when not so)."""
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    values = [value for name, value in pairs if name == "id"]
    return values[0] if len(values) == 1 and values[0] else None


def positive(raw: str, default: int) -> int:
    """A positive integer query parameter, or the default."""
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= 1 else default
