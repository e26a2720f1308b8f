"""The overview of several connections: a switcher naming each connection (with its queue count, or why
it could not be listed) and one section per connection, so a Redis that is down shows its own error
while the others' queues are listed as usual."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dashboard.conf import get_config
from dashboard.overview import QueueGroup, unanswered
from dashboard.overview_order import OverviewOrder, matching
from dashboard.registry import Listing
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


def switcher(order: OverviewOrder, listing: Listing, visible: list[QueueRef]) -> list[ConnectionTab]:
    """A tab per configured connection, in settings order, after one for all of them; none with only one
    connection. Counts are of the visible queues the filter text matches."""
    if not several():
        return []
    counts = Counter(queue.connection for queue in matching(visible, order.query))
    tabs = [ConnectionTab("", sum(counts.values()), "", order.connection_url(""), not order.connection)]
    for alias in get_config().connections:
        failure = listing.failed.get(alias)
        problem = str(unanswered(failure)) if failure is not None else ""
        tabs.append(
            ConnectionTab(
                alias, counts[alias], problem, order.connection_url(alias), order.connection == alias
            )
        )
    return tabs


def sections(order: OverviewOrder, listing: Listing, groups: list[QueueGroup]) -> list[ConnectionSection]:
    """The page's groups per connection, in settings order: a connection that could not be listed (of
    those shown) comes with its error and no groups; one with no row on this page is left out."""
    by_alias: dict[str, list[QueueGroup]] = {}
    for grouped in groups:
        by_alias.setdefault(grouped.connection, []).append(grouped)
    shown: list[ConnectionSection] = []
    for alias in get_config().connections:
        if order.connection and alias != order.connection:
            continue
        failure = listing.failed.get(alias)
        if failure is not None:
            shown.append(ConnectionSection(alias, str(unanswered(failure))))
        elif alias in by_alias:
            shown.append(ConnectionSection(alias, groups=by_alias[alias]))
    return shown
