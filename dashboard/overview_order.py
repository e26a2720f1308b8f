"""The overview's order and filter: `?sort=` (a column, `-` first for descending) and `?failing=1`
(only the queues that failed jobs in the last hour), kept in the URL with `?q=`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from dashboard import links
from dashboard.views.base import BadRequest
from queues.messages import gettext_lazy
from queues.models import QueueCounts

# The sortable columns and their first direction when a header is clicked (descending for the numbers
# and times: the worst queue first).
COLUMNS: dict[str, bool] = {"name": False, "failed": True, "failed_hour": True, "last_failed": True}

SortKey = Callable[[QueueCounts], Any]
_KEYS: dict[str, SortKey] = {
    "name": lambda row: row.queue.name.casefold(),
    "failed": lambda row: row.counts.get("failed", 0),
    "failed_hour": lambda row: row.failed_last_hour,
    "last_failed": lambda row: row.last_failed_at,
}


@dataclass(frozen=True)
class OverviewOrder:
    """How the overview lists its queues: the filter text, the sort column and direction, failing only."""

    query: str = ""
    column: str = ""
    descending: bool = False
    failing: bool = False

    @property
    def sort(self) -> str:
        """The `sort` parameter of this order ("" for the default, by name within each group)."""
        if not self.column:
            return ""
        return f"-{self.column}" if self.descending else self.column

    def url(self, *, sort: str | None = None, failing: bool | None = None) -> str:
        """This overview's URL with another sort or failing filter (the filter text kept)."""
        return links.overview_url(
            self.query,
            self.sort if sort is None else sort,
            self.failing if failing is None else failing,
        )

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

    def apply(self, rows: list[QueueCounts]) -> list[QueueCounts]:
        """The rows this order shows, in its order (rows without a value, such as queues that never
        failed, last either way)."""
        if self.failing:
            rows = [row for row in rows if row.failed_last_hour]
        if not self.column:
            return rows
        key = _KEYS[self.column]
        by_name = sorted(rows, key=_KEYS["name"])
        known = [row for row in by_name if key(row) is not None]
        unknown = [row for row in by_name if key(row) is None]
        # sorted() is stable: equal values keep name order.
        return sorted(known, key=key, reverse=self.descending) + unknown


def parse_order(request: HttpRequest, query: str) -> OverviewOrder:
    """The order a request asks for; BadRequest for a sort column or failing value it does not know."""
    sort = request.GET.get("sort", "").strip()
    column = sort.removeprefix("-")
    if sort and column not in COLUMNS:
        raise BadRequest(
            gettext_lazy(
                "Unknown sort %(sort)r. Use one of: %(columns)s (a - first for descending).",
                sort=sort[:40],
                columns=", ".join(COLUMNS),
            )
        )
    failing = request.GET.get("failing", "")
    if failing not in ("", "0", "1"):
        raise BadRequest(gettext_lazy("failing must be 1 (only failing queues) or 0."))
    return OverviewOrder(query, column, sort.startswith("-"), failing == "1")
