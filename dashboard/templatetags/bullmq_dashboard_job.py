"""Template filters of the job page's reading aids (traces, timeline, children summary)."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext, pgettext

from dashboard.translation import state_label
from queues.parsing import first_line as _first_line

register = template.Library()


@register.filter
def trace_head(value: object) -> str:
    """The line that names a trace's error, cut to 200 characters: the first line of a Node trace
    (`Error: message`), the last of a Python traceback (`ValueError: message`)."""
    text = str(value)
    if text.startswith("Traceback (most recent call last):"):
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()[:200]
    return _first_line(text, 200)


@register.filter
def outcome_label(outcome: str) -> str:
    """How an attempt seen in the events stream ended, in words."""
    labels = {
        "completed": pgettext("attempt outcome", "completed"),
        "failed": pgettext("attempt outcome", "failed"),
        "requeued": gettext("ended, back to waiting (a retry or a stall)"),
        "delayed": gettext("ended, moved to delayed (a retry with backoff, or the job delayed itself)"),
        "stalled": gettext("stalled"),
        "waiting-children": gettext("moved to wait for its children"),
        "running": gettext("running (no end seen yet)"),
    }
    return labels.get(outcome, outcome)


@register.filter
def state_counts(counts: list[tuple[str, int]]) -> str:
    """`2 waiting, 1 failed` from (state, count) pairs."""
    return ", ".join(
        gettext("%(count)d %(state)s") % {"count": count, "state": state_label(state)}
        for state, count in counts
    )
