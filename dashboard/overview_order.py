"""The overview's order and filters: `?sort=` (a column, `-` first for descending), `?failing=1` (only
the queues that failed jobs in the last hour) and `?attention=1` (only those whose health verdict is
stuck or degraded, or could not be judged) and `?connection=` (only the queues of one connection),
kept in the URL with `?q=`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from dashboard import links
from dashboard.conf import get_config
from dashboard.permissions import permission_depends_on_queue
from dashboard.views.base import BadRequest
from queues.health import Verdict
from queues.messages import gettext_lazy
from queues.models import QueueCounts, QueueRef

# The sortable columns and their first direction when a header is clicked (descending for the numbers
# and times: the worst queue first).
COLUMNS: dict[str, bool] = {"name": False, "failed": True, "failed_hour": True, "last_failed": True}

# The query parameters of an order (besides `q`), as a page's socket is given them.
ORDER_PARAMETERS = ("sort", "failing", "attention", "connection")

SortKey = Callable[[QueueCounts], Any]
_KEYS: dict[str, SortKey] = {
    "name": lambda row: row.queue.name.casefold(),
    "failed": lambda row: row.counts.get("failed", 0),
    "failed_hour": lambda row: row.failed_last_hour,
    "last_failed": lambda row: row.last_failed_at,
}


@dataclass(frozen=True)
class OverviewOrder:
    """How the overview lists its queues: the filter text, the sort column and direction, failing only,
    needing attention only."""

    query: str = ""
    column: str = ""
    descending: bool = False
    failing: bool = False
    attention: bool = False
    connection: str = ""

    @property
    def sort(self) -> str:
        """The `sort` parameter of this order ("" for the default, by name within each group)."""
        if not self.column:
            return ""
        return f"-{self.column}" if self.descending else self.column

    def url(
        self,
        *,
        sort: str | None = None,
        failing: bool | None = None,
        attention: bool | None = None,
        page: int = 1,
        connection: str | None = None,
    ) -> str:
        """This overview's URL with another sort, filter, connection or page (the filter text kept;
        another sort or filter starts at the first page)."""
        return links.overview_url(
            self.query,
            self.sort if sort is None else sort,
            self.failing if failing is None else failing,
            self.attention if attention is None else attention,
            page,
            self.connection if connection is None else connection,
        )

    def connection_url(self, alias: str) -> str:
        """The same overview showing only the queues of connection `alias` (every connection's for "")."""
        return self.url(connection=alias)

    def select(self, queues: list[QueueRef]) -> list[QueueRef]:
        """The queues whose key or connection contains the filter text, of the chosen connection only
        when one is chosen."""
        return matching(queues, self.query, self.connection)

    def header(self, column: str) -> dict[str, str]:
        """A sortable column head: the link (the other direction when it is the current column) and
        its aria-sort value."""
        if column == self.column:
            following = column if self.descending else f"-{column}"
            current = "descending" if self.descending else "ascending"
        else:
            following = f"-{column}" if COLUMNS[column] else column
            current = "none"
        return {"url": self.url(sort=following), "aria_sort": current}

    @property
    def headers(self) -> dict[str, dict[str, str]]:
        """Every sortable column's head, by column."""
        return {column: self.header(column) for column in COLUMNS}

    @property
    def failing_url(self) -> str:
        """The same overview with the failing-only filter switched."""
        return self.url(failing=not self.failing)

    @property
    def attention_url(self) -> str:
        """The same overview with the needs-attention filter switched."""
        return self.url(attention=not self.attention)

    def apply(
        self, rows: list[QueueCounts], verdicts: Mapping[QueueRef, Verdict | None] | None = None
    ) -> list[QueueCounts]:
        """The rows this order shows, in its order (rows without a value, such as queues that never
        failed, last either way). With `attention`, only the queues whose verdict (of `verdicts`) is
        stuck or degraded, or could not be judged."""
        if self.failing:
            rows = [row for row in rows if row.failed_last_hour]
        if self.attention:
            judged = verdicts or {}
            rows = [row for row in rows if _needs_attention(judged.get(row.queue))]
        if not self.column:
            return rows
        key = _KEYS[self.column]
        by_name = sorted(rows, key=_KEYS["name"])
        known = [row for row in by_name if key(row) is not None]
        unknown = [row for row in by_name if key(row) is None]
        # sorted() is stable: equal values keep name order.
        return sorted(known, key=key, reverse=self.descending) + unknown


def _needs_attention(verdict: Verdict | None) -> bool:
    return verdict is None or verdict.needs_attention


def parse_order(request: HttpRequest, query: str) -> OverviewOrder:
    """The order a request asks for; BadRequest for a sort column or filter value it does not know."""
    return order_of(request.GET, query)


def order_of(params: Mapping[str, str], query: str) -> OverviewOrder:
    """The order these query parameters ask for (a page's, or its socket's); BadRequest for a sort
    column or filter value it does not know."""
    sort = params.get("sort", "").strip()
    column = sort.removeprefix("-")
    if sort and column not in COLUMNS:
        raise BadRequest(
            gettext_lazy(
                "Unknown sort %(sort)r. Use one of: %(columns)s (a - first for descending).",
                sort=sort[:40],
                columns=", ".join(COLUMNS),
            )
        )
    failing = params.get("failing", "")
    if failing not in ("", "0", "1"):
        raise BadRequest(gettext_lazy("failing must be 1 (only failing queues) or 0."))
    attention = params.get("attention", "")
    if attention not in ("", "0", "1"):
        raise BadRequest(gettext_lazy("attention must be 1 (only queues that need attention) or 0."))
    connection = params.get("connection", "")
    if connection and connection not in get_config().connections:
        raise BadRequest(unknown_connection(connection))
    return OverviewOrder(query, column, sort.startswith("-"), failing == "1", attention == "1", connection)


def unknown_connection(connection: str) -> str:
    """What a `?connection=` naming no configured connection is told: the aliases to use, unless the
    permission callable decides per queue (a user kept to some connections' queues is told no alias)."""
    if permission_depends_on_queue():
        return gettext_lazy("Unknown connection %(connection)r.", connection=connection[:40])
    return gettext_lazy(
        "Unknown connection %(connection)r. Use one of: %(aliases)s.",
        connection=connection[:40],
        aliases=", ".join(get_config().connections),
    )


def matching(queues: list[QueueRef], query: str, connection: str = "") -> list[QueueRef]:
    """The queues whose `<prefix>:<name>` or connection contains `query` (case-insensitive), only those
    of connection `connection` when it is given."""
    if connection:
        queues = [queue for queue in queues if queue.connection == connection]
    needle = query.casefold()
    if not needle:
        return queues
    return [
        queue for queue in queues if needle in queue.key.casefold() or needle in queue.connection.casefold()
    ]
