"""Rendered table rows kept by what they show, so an unchanged row is not rendered again.

Rendering rows was most of a list page's time (about 0.16 ms per job row, 0.1 ms per overview row), and
between two views of a list (paging back, the live refresh after any change, other viewers) most rows
show exactly what they showed before: a finished job's row never changes. Each row is rendered by its
template without the request (rows need no context processors) and kept under a key made of every
value it shows; the least recently used are dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, cast

from django.template.loader import get_template
from django.urls import get_script_prefix
from django.utils.safestring import SafeString
from django.utils.translation import get_language


class RowCache:
    """One row template's rendered rows, at most `size` of them."""

    def __init__(self, template_name: str, size: int) -> None:
        self.template_name = template_name
        self.size = size
        self._rows: OrderedDict[Hashable, SafeString] = OrderedDict()

    def render(self, key: Hashable, context: dict[str, Any]) -> SafeString:
        """The row for `context`, whose values `key` must determine."""
        # Rows hold links, which depend on where the app is mounted, and words of the active language.
        full_key = (get_script_prefix(), get_language(), key)
        html = self._rows.get(full_key)
        if html is None:
            # Django templates return SafeString: their output is already autoescaped.
            html = cast(SafeString, get_template(self.template_name).render(context))
            self._rows[full_key] = html
            if len(self._rows) > self.size:
                self._rows.popitem(last=False)
        else:
            self._rows.move_to_end(full_key)
        return html

    def clear(self) -> None:
        """Forget every row (templates changed, tests)."""
        self._rows.clear()
