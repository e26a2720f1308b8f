"""The overview of several connections: a switcher naming each connection (with its queue count, or why
it could not be listed) and one section per connection, so a Redis that is down shows its own error
while the others' queues are listed as usual."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from redis.exceptions import AuthenticationError

from dashboard import registry
from dashboard.answers import REFUSED_LOGIN
from dashboard.conf import get_config
from dashboard.overview import QueueGroup, unanswered
from dashboard.overview_order import OverviewOrder, matching
from dashboard.permissions import VIEW, has_permission, permission_depends_on_queue
from dashboard.registry import Listing
from dashboard.translation import translated
from dashboard.users import User
from queues.models import QueueRef


@dataclass(frozen=True)
class ConnectionTab:
    """One connection in the switcher: its alias, how many of its queues the filter text matches, why
    its queues could not be listed ("" when they were), its overview and whether it is the one shown."""

    alias: str
    count: int
    problem: str
    url: str
    current: bool


@dataclass(frozen=True)
class ConnectionSection:
    """One connection's part of an overview page: its groups of rows, or why it could not be listed."""

    alias: str
    problem: str = ""
    groups: list[QueueGroup] = field(default_factory=list)


def several() -> bool:
    """Whether more than one connection is configured (the overview then names connections)."""
    return len(get_config().connections) > 1


def viewable(user: User, listing: Listing, seen: Collection[QueueRef] = ()) -> list[str]:
    """The connections this user may know of, in settings order: every one with a permission callable
    that answers alike for every queue (the default); with one that decides per queue, those holding a
    queue the user may view (of those listed now, or for a connection that could not be listed, those it
    listed last or its configured QUEUES), so that a user kept to some connections' queues learns
    nothing of the others: not their aliases, whether they are down, nor the addresses in their errors.
    `seen` are queues the user is known to view already (no need to ask about their connections)."""
    aliases = list(get_config().connections)
    if not permission_depends_on_queue():
        return aliases
    known = {queue.connection for queue in seen}
    by_alias: dict[str, list[QueueRef]] = {}
    for queue in listing.queues:
        by_alias.setdefault(queue.connection, []).append(queue)
    shown = []
    for alias in aliases:
        if alias not in known:
            found = registry.directory(alias)
            candidates = by_alias.get(alias) or found.queues or found.settings.explicit_queues()
            if not any(has_permission(user, VIEW, queue) for queue in candidates):
                continue
        shown.append(alias)
    return shown


aviewable = sync_to_async(viewable)


def problem_of(failure: BaseException) -> str:
    """Why a connection's queues could not be listed, in words of the active language (a refused login is
    no unreachable Redis)."""
    if isinstance(failure, AuthenticationError):
        return translated(REFUSED_LOGIN)
    return translated(unanswered(failure))


def switcher(
    order: OverviewOrder, listing: Listing, visible: list[QueueRef], shown: Collection[str] | None = None
) -> list[ConnectionTab]:
    """A tab per configured connection (of `shown` only, when given: see `viewable`), in settings order,
    after one for all of them; none with only one connection. Counts are of the visible queues the
    filter text matches."""
    if not several():
        return []
    counts = Counter(queue.connection for queue in matching(visible, order.query))
    tabs = [ConnectionTab("", sum(counts.values()), "", order.connection_url(""), not order.connection)]
    for alias in get_config().connections:
        if shown is not None and alias not in shown:
            continue
        failure = listing.failed.get(alias)
        problem = problem_of(failure) if failure is not None else ""
        tabs.append(
            ConnectionTab(
                alias, counts[alias], problem, order.connection_url(alias), order.connection == alias
            )
        )
    return tabs


def sections(
    order: OverviewOrder, listing: Listing, groups: list[QueueGroup], viewed: Collection[str] | None = None
) -> list[ConnectionSection]:
    """The page's groups per connection, in settings order: a connection that could not be listed (of
    those shown, and of `viewed` when given: see `viewable`) comes with its error and no groups; one with
    no row on this page is left out."""
    by_alias: dict[str, list[QueueGroup]] = {}
    for grouped in groups:
        by_alias.setdefault(grouped.connection, []).append(grouped)
    shown: list[ConnectionSection] = []
    for alias in get_config().connections:
        if order.connection and alias != order.connection:
            continue
        if viewed is not None and alias not in viewed and alias not in by_alias:
            continue
        failure = listing.failed.get(alias)
        if failure is not None:
            shown.append(ConnectionSection(alias, problem_of(failure)))
        elif alias in by_alias:
            shown.append(ConnectionSection(alias, groups=by_alias[alias]))
    return shown
