"""Template tags of live updates: element ids shared with the pushes, and the socket elements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from dashboard import links
from dashboard.conf import get_config
from dashboard.live import fragments
from queues.models import QueueRef

if TYPE_CHECKING:
    from dashboard.overview_order import OverviewOrder

register = template.Library()


@register.simple_tag
def count_dom_id(queue: QueueRef, state: str) -> str:
    """The id of a queue's count element for a state."""
    return fragments.count_dom_id(queue, state)


@register.simple_tag
def paused_dom_id(queue: QueueRef) -> str:
    """The id of the paused flag in a queue page's heading."""
    return fragments.paused_dom_id(queue)


@register.simple_tag
def name_dom_id(queue: QueueRef) -> str:
    """The id of a queue's name cell on the overview."""
    return fragments.name_dom_id(queue)


@register.simple_tag
def failure_dom_id(queue: QueueRef, part: str) -> str:
    """The id of a queue's failure recency cell on the overview."""
    return fragments.failure_dom_id(queue, part)


@register.simple_tag
def health_dom_id(queue: QueueRef) -> str:
    """The id of a queue's health cell on the overview."""
    return fragments.health_dom_id(queue)


@register.simple_tag
def health_panel_dom_id(queue: QueueRef) -> str:
    """The id of the health panel on a queue's page."""
    return fragments.health_panel_dom_id(queue)


def socket_url(page_url: str, query: dict[str, object] | None = None) -> str:
    """The websocket URL of a page: the same path and query below the app's mount, under `<mount>ws/`."""
    mount = reverse("bullmq_dashboard:overview")
    path, _, page_query = page_url.partition("?")
    below = path[len(mount) :] if path.startswith(mount) else ""
    url = f"{without_language_prefix(mount)}ws/{below}"
    # The socket pushes fragments rendered in the language this page is rendered in.
    language = urlencode({"lang": get_language() or ""})
    queries = [part for part in (page_query, urlencode(query) if query else "", language) if part]
    return f"{url}?{'&'.join(queries)}"


def without_language_prefix(path: str) -> str:
    """A path of the app's mount without the language prefix of i18n_patterns: websockets are routed
    by the ASGI application, which has no language prefix (the page's language travels as `lang`)."""
    used, _prefix_default = is_language_prefix_patterns_used(get_urlconf() or settings.ROOT_URLCONF)
    language = get_language()
    script_prefix = get_script_prefix()
    marker = f"{script_prefix}{language}/"
    if used and language and path.startswith(marker):
        return script_prefix + path[len(marker) :]
    return path


def _socket(url: str, extra: str = "") -> SafeString:
    live = get_config().live
    if not live.enabled:
        return mark_safe("")
    html = render_to_string(
        "bullmq_dashboard/partials/live_socket.html", {"url": url, "poll_ms": int(live.poll_interval * 1000)}
    )
    return mark_safe(html.strip() + extra)  # both rendered by autoescaping templates


@register.simple_tag
def live_socket_overview(
    order: OverviewOrder | None = None, query: str = "", page: int = 1, shown: Sequence[QueueRef] = ()
) -> SafeString:
    """The overview's socket, and the notes shown when queues appear or come to need attention.

    The socket is told the rows the page shows (their element ids: it follows those, whatever the
    census's order has become since), and the page's filter text, order and filters (a "needs
    attention" page's socket says when another queue comes to need attention)."""
    note = render_to_string("bullmq_dashboard/partials/new_queues.html", {"appeared": False}).strip()
    attention = order is not None and order.attention and not order.failing
    if attention:
        note += render_to_string("bullmq_dashboard/partials/attention_more.html", {"more": False}).strip()
    filters: dict[str, object] = {"q": query, "page": page if page > 1 else ""}
    if order is not None:
        filters.update(
            sort=order.sort,
            failing=1 if order.failing else "",
            attention=1 if order.attention else "",
            connection=order.connection,
        )
    filters["rows"] = ",".join(fragments.queue_dom_id(queue) for queue in shown)
    given = {name: value for name, value in filters.items() if value}
    return _socket(socket_url(reverse("bullmq_dashboard:overview"), given or None), note)


@register.simple_tag
def live_socket_queue(queue: QueueRef, state: str, page: int, per_page: int) -> SafeString:
    """A queue page's socket (it follows the tab and page shown) and its new-jobs marker."""
    url = socket_url(
        links.queue_url(queue),
        {"state": state, "page": page, "per_page": per_page},
    )
    return _socket(url, fragments.new_jobs_marker(queue, state, per_page, 0))


@register.simple_tag
def live_socket_job(queue: QueueRef, job_id: str) -> SafeString:
    """A job page's socket."""
    return _socket(socket_url(links.job_url(queue, job_id)))


@register.simple_tag
def live_banners() -> SafeString:
    """The "live updates paused" and "Redis unreachable" banners, hidden until needed."""
    if not get_config().live.enabled:
        return mark_safe("")
    return mark_safe(render_to_string("bullmq_dashboard/partials/live_banners.html", {}).strip())
