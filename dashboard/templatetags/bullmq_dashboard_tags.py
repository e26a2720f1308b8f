"""Template helpers: times, durations, sizes, progress and job links (all output escaped)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django import template
from django.template.defaultfilters import filesizeformat
from django.utils.formats import number_format
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString
from django.utils.translation import gettext, pgettext

from dashboard import links, queue_fragments, translation
from queues.models import JobSummary, QueueCounts, QueueRef
from queues.parsing import plain_text

register = template.Library()


def _datetime(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


@register.simple_tag
def reltime(ms: int | None) -> SafeString:
    """A <time> element: exact UTC time in text and title, made relative by dashboard.js."""
    moment = _datetime(ms)
    if moment is None:
        return format_html('<span class="muted">{}</span>', pgettext("no value", "—"))
    exact = moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"
    return format_html(
        '<time class="rel" datetime="{}" title="{}">{}</time>',
        moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        exact,
        exact,
    )


@register.simple_tag
def stamp(ms: int | None) -> SafeString:
    """Relative and exact time, both visible without hovering (touch screens have no hover):
    `3 min ago · 03:18:31` — the <time class="rel"> is made relative by dashboard.js (its date
    without script), the clock is the exact UTC time of day; the title has the full date."""
    moment = _datetime(ms)
    if moment is None:
        return format_html('<span class="muted">{}</span>', pgettext("no value", "—"))
    exact = moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"
    iso = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return format_html(
        '<span class="stamp"><time class="rel" datetime="{}" title="{}">{}</time>'
        '<span class="stamp-sep"> · </span><time class="clock" datetime="{}" title="{}">{}</time></span>',
        iso,
        exact,
        moment.strftime("%Y-%m-%d"),
        iso,
        exact,
        moment.strftime("%H:%M:%S"),
    )


@register.filter
def duration(ms: int | None) -> str:
    """Milliseconds as `850 ms`, `12.4 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h` (in the active language)."""
    if ms is None or (isinstance(ms, float) and not math.isfinite(ms)):
        return pgettext("no value", "—")
    if ms < 1000:
        return gettext("%(ms)s ms") % {"ms": ms}
    if ms < 60_000:
        return gettext("%(seconds)s s") % {"seconds": number_format(ms / 1000, 1)}
    # In integers: a field another program wrote may hold a number no float holds (10**400 ms).
    minutes, second = divmod(int(ms) // 1000, 60)
    if minutes < 60:
        return gettext("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": second}
    hours, minute = divmod(minutes, 60)
    if hours < 48:
        return gettext("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minute}
    return gettext("%(days)s d %(hours)s h") % {"days": hours // 24, "hours": hours % 24}


@register.filter
def size(value: int) -> str:
    """Bytes in human units."""
    return str(filesizeformat(value))


@register.filter
def percent(progress: Any) -> int | None:
    """A numeric progress as 0-100 for a <progress> bar; None for object progress."""
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        return None
    return int(max(0, min(100, progress)))


@register.filter
def progress_json(progress: Any, indent: int | None = None) -> str:
    """An object progress (`updateProgress({step: 'smtp'})`) as the JSON a job author wrote, never as a
    Python repr; text that was not JSON stays as it is."""
    if isinstance(progress, str):
        return progress
    return json.dumps(progress, ensure_ascii=False, indent=indent)


@register.filter
def is_number(value: Any) -> bool:
    """True for ints and floats (not bools)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@register.simple_tag
def job_url(queue: QueueRef, job_id: str) -> str:
    """The job page URL (the id percent-encoded)."""
    return links.job_url(queue, job_id)


@register.simple_tag
def raw_url(queue: QueueRef, job_id: str, field: str) -> str:
    """The full raw value of a field."""
    return links.raw_field_url(queue, job_id, field)


@register.simple_tag
def logs_url(queue: QueueRef, job_id: str) -> str:
    """The log pager partial."""
    return links.logs_url(queue, job_id)


@register.simple_tag
def find_job_url(queue: QueueRef) -> str:
    """The "open job by id" form's target."""
    return links.find_job_url(queue)


@register.simple_tag
def search_url(queue: QueueRef) -> str:
    """The queue's job search page."""
    return links.search_url(queue)


@register.filter
def bulk_value(job_id: str) -> str:
    """A job id as a bulk checkbox value (percent-encoded)."""
    return links.bulk_value(job_id)


@register.simple_tag
def queue_url(queue: QueueRef) -> str:
    """The queue page URL."""
    return links.queue_url(queue)


@register.filter
def plain(value: object, limit: int = 120) -> str:
    """Text for a dialog or a label: controls and bidi marks shown as escapes, cut to `limit` characters."""
    return plain_text(value, limit)


@register.filter
def get(mapping: dict[str, Any], key: str) -> Any:
    """mapping[key] or None (templates cannot index with a variable)."""
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def number(value: int | None) -> str:
    """A count with the active language's thousands separators, the same in every cell."""
    return number_format(value, force_grouping=True) if isinstance(value, int) else "0"


@register.filter
def translated(text: object) -> object:
    """A sentence of `queues` (a Message) in the active language; any other value as it is."""
    return translation.translated(text) if isinstance(text, str) else text


@register.filter
def state_label(state: str) -> str:
    """A job state's name in the active language (the state itself stays in URLs and attributes)."""
    return translation.state_label(state)


@register.simple_tag
def script_text() -> SafeString:
    """The words dashboard.js and actions.js show, in the active language, as a JSON <script> block."""
    words = {
        "justNow": gettext("just now"),
        "ago": gettext("%(time)s ago"),
        "in": gettext("in %(time)s"),
        "seconds": gettext("%(n)s s"),
        "minutes": gettext("%(n)s min"),
        "hours": gettext("%(n)s h"),
        "days": gettext("%(n)s d"),
        "themeAuto": gettext("◐ Auto"),
        "themeDark": gettext("☾ Dark"),
        "themeLight": gettext("☀ Light"),
        "auto": pgettext("theme", "auto"),
        "dark": pgettext("theme", "dark"),
        "light": pgettext("theme", "light"),
        "themeLabel": gettext("Theme: %(mode)s (switch to %(next)s)"),
        "themeTitle": gettext("Theme: %(mode)s — click for %(next)s"),
        "invalidJson": gettext("Not valid JSON: %(error)s"),
        "allSelected": gettext("all selected"),
        "selected": gettext("%(count)s selected"),
    }
    return json_script(words, "bullmq-dashboard-text")


@register.simple_tag
def job_action_url(queue: QueueRef, action: str, job_id: str) -> str:
    """POST URL of a job action."""
    return links.job_action_url(queue, action, job_id)


@register.simple_tag
def job_rows(
    queue: QueueRef, state: str, jobs: list[JobSummary], row_actions: Iterable[str], bulk: object
) -> SafeString:
    """The rows of a job list (rendered from partials/job_row.html, reused while unchanged)."""
    return queue_fragments.job_rows(queue, state, jobs, row_actions or (), bool(bulk))


@register.simple_tag
def queue_tabs(queue: QueueRef, state: str, counts: QueueCounts, per_page: int) -> SafeString:
    """The state tabs of a queue page (rendered from partials/queue_tabs.html, reused while unchanged)."""
    return queue_fragments.queue_tabs(queue, state, counts, per_page)


@register.simple_tag
def workers_url(queue: QueueRef) -> str:
    """The queue's workers page URL."""
    return links.workers_url(queue)


@register.simple_tag
def schedulers_url(queue: QueueRef) -> str:
    """The queue's job schedulers page URL."""
    return links.schedulers_url(queue)


@register.simple_tag
def queue_metrics_url(queue: QueueRef, window: str | None = None) -> str:
    """The queue's metrics page URL, for a window (hour, day, week) when given."""
    return links.queue_metrics_url(queue, window)


@register.filter
def seconds(value: int | None) -> str:
    """Seconds (CLIENT LIST's age and idle) as `duration` shows milliseconds."""
    return duration(None if value is None else value * 1000)
