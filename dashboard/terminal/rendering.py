"""The terminal's tables, built as rich renderables from reads (no Redis here).

Queue names, job ids and names, progress and Redis' own words are written by other programs: each goes
through `shown`, which makes control, bidi and zero-width characters visible escapes
(`queues.parsing.plain_text`) and escapes rich's markup, so a name can neither style the screen, nor
move the cursor, nor make one row read like another.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from django.utils.translation import gettext, pgettext
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from dashboard.overview import QueueGroup, group
from dashboard.templatetags.bullmq_dashboard_tags import duration, percent
from dashboard.terminal.rates import Rate, rates
from dashboard.terminal.reading import ActiveJobs, ConnectionRead, Snapshot
from dashboard.translation import state_label, translated
from queues.models import JobSummary, QueueCounts, QueueRef
from queues.parsing import plain_text

# The overview's columns, in the order an operator scans them.
COUNTED = ("waiting", "active", "delayed", "prioritized", "waiting-children", "failed", "completed")
BAR_WIDTH = 20


def shown(value: object, limit: int = 120) -> str:
    """Text written by others, safe as rich markup: controls shown as escapes, markup escaped, cut."""
    return escape(plain_text(value, limit))


def overview(snapshot: Snapshot) -> RenderableType:
    """One table per connection and prefix, like the overview page; a connection that could not be
    read says why in its place."""
    return Group(*_sections(snapshot, None))


def watch_view(previous: Snapshot | None, current: Snapshot, active: list[ActiveJobs]) -> RenderableType:
    """The live view of one refresh: the tables with completed and failed jobs a minute since the
    previous read, then progress bars of the first active jobs."""
    moment = datetime.now().strftime("%H:%M:%S")
    heading = gettext("BullMQ queues at %(time)s (Ctrl-C quits)") % {"time": moment}
    parts: list[RenderableType] = [Text(heading, style="bold")]
    parts.extend(_sections(current, rates(previous, current)))
    if active:
        parts.append(active_table(active))
    return Group(*parts)


def _sections(snapshot: Snapshot, found: dict[QueueRef, Rate] | None) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for read in snapshot.connections:
        if read.problem or not read.rows:
            parts.append(connection_note(read))
            continue
        parts.extend(queue_table(each, found) for each in group(read.rows))
    return parts


def connection_note(read: ConnectionRead) -> Text:
    """A connection that could not be read (and why), or that holds no selected queue."""
    if read.problem:
        message = gettext("Connection %(connection)s: %(problem)s") % {
            "connection": plain_text(read.alias),
            "problem": plain_text(translated(read.problem), 500),
        }
        return Text(message, style="bold red")
    message = gettext("Connection %(connection)s: no queues.") % {"connection": plain_text(read.alias)}
    return Text(message, style="dim")


def queue_table(queues: QueueGroup, found: dict[QueueRef, Rate] | None = None) -> Table:
    """The queues of one connection and prefix; with `found` (the live view) their rates too."""
    table = Table(title=f"{shown(queues.connection)} · {shown(queues.prefix)}", title_justify="left")
    table.add_column(gettext("Queue"), overflow="fold")
    for state in COUNTED:
        table.add_column(shown(state_label(state)), justify="right", no_wrap=True)
    if found is not None:
        table.add_column(gettext("Completed/min"), justify="right", no_wrap=True)
        table.add_column(gettext("Failed/min"), justify="right", no_wrap=True)
    table.add_column(pgettext("queue", "paused"), no_wrap=True)
    for row in queues.rows:
        cells = [_name_cell(row), *(_count_cell(row, state) for state in COUNTED)]
        if found is not None:
            cells.extend(_rate_cells(found.get(row.queue)))
        cells.append(_paused_cell(row))
        table.add_row(*cells)
    return table


def _name_cell(row: QueueCounts) -> str:
    name = shown(row.queue.name)
    if not row.problem:
        return name
    broken = gettext("broken")
    return f"{name}\n[bold red]{escape(broken)}:[/] [red]{shown(translated(row.problem), 500)}[/]"


def _count_cell(row: QueueCounts, state: str) -> str:
    if row.error:
        return "-"  # unread: the row says why
    if state in row.broken_states:
        return "[red]?[/]"
    count = row.counts.get(state, 0)
    if state == "failed" and count:
        return f"[bold red]{count:,}[/]"
    return f"{count:,}"


def _rate_cells(rate: Rate | None) -> list[str]:
    if rate is None:
        return ["…", "…"]  # the first read, or a queue new since the last one
    failed = f"{rate.failed:.1f}"
    return [f"{rate.completed:.1f}", f"[bold red]{failed}[/]" if rate.failed else failed]


def _paused_cell(row: QueueCounts) -> str:
    flag = f"[yellow]{escape(pgettext('queue', 'paused'))}[/]" if row.paused else ""
    legacy = row.counts.get("paused", 0)  # BullMQ < 5 kept a paused queue's jobs in their own list
    if legacy:
        flag = f"{flag} ({legacy:,})".strip()
    return flag


def active_table(active: list[ActiveJobs], now_ms: int | None = None) -> Table:
    """The first active jobs of each busy queue, each with its progress as a bar (a number) or as the
    JSON its worker wrote (an object), and how long it has run."""
    now = round(time.time() * 1000) if now_ms is None else now_ms
    table = Table(title=gettext("Active jobs"), title_justify="left")
    table.add_column(gettext("Queue"), overflow="fold")
    table.add_column(gettext("Job"), overflow="fold")
    table.add_column(gettext("Name"), overflow="fold")
    table.add_column(gettext("Progress"), no_wrap=True)
    table.add_column(gettext("Running"), justify="right", no_wrap=True)
    for queue_jobs in active:
        queue = shown(queue_jobs.queue.key)
        if queue_jobs.problem:
            table.add_row(queue, "", "", f"[red]{shown(translated(queue_jobs.problem), 300)}[/]", "")
            continue
        for job in queue_jobs.jobs:
            table.add_row(queue, *_job_cells(job, now))
        more = queue_jobs.total - len(queue_jobs.jobs)
        if more > 0:
            table.add_row(queue, escape(gettext("… and %(count)s more") % {"count": f"{more:,}"}), "", "", "")
    return table


def _job_cells(job: JobSummary, now: int) -> tuple[str, str, RenderableType, str]:
    if job.problem:
        return shown(job.id, 60), f"[red]{shown(translated(job.problem), 200)}[/]", "", ""
    running = duration(max(now - job.processed_on, 0)) if job.processed_on is not None else ""
    return shown(job.id, 60), shown(job.name, 60), progress_cell(job.progress), shown(running)


def progress_cell(progress: object) -> RenderableType:
    """A number as a bar and its percent; an object progress as its JSON, cut; nothing for none."""
    share = percent(progress)
    if share is not None:
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=100, completed=share, width=BAR_WIDTH), f"{share:>3}%")
        return bar
    if progress in (None, ""):
        return ""
    written = progress if isinstance(progress, str) else json.dumps(progress, ensure_ascii=False)
    return shown(written, 60)
