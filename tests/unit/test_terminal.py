"""The terminal monitor's parts that need no Redis: durations, QUEUE arguments, rates and the live view
built from two reads."""

from __future__ import annotations

import io

import pytest
from django.core.management.base import CommandError
from rich.console import Console, RenderableType

from dashboard.durations import duration_ms
from dashboard.terminal.queue_names import QueueName, parse_queue_name, resolve
from dashboard.terminal.rates import rates
from dashboard.terminal.reading import ActiveJobs, ConnectionRead, Snapshot
from dashboard.terminal.rendering import overview, progress_cell, watch_view
from queues.models import JobSummary, QueueCounts, QueueRef

EMAIL = QueueRef("default", "bull", "email")
TENANT_EMAIL = QueueRef("default", "{tenant-a}", "email")
REPORTS = QueueRef("eu", "app:v2", "reports")


def rendered(renderable: RenderableType, width: int = 200) -> str:
    """What a terminal without colours shows."""
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, emoji=False, highlight=False).print(renderable)
    return out.getvalue()


def counts(queue: QueueRef, completed: int, failed: int, active: int = 0) -> QueueCounts:
    return QueueCounts(queue, {"completed": completed, "failed": failed, "active": active}, paused=False)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30s", 30_000),
        ("10m", 600_000),
        ("1h", 3_600_000),
        ("1.5h", 5_400_000),
        ("2d", 172_800_000),
        ("250ms", 250),
        ("500", 500),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "-1h", "1.h", "1w", "h", "1 hour", "10mss"])
def test_what_is_no_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_ms(text)


def test_queue_arguments() -> None:
    aliases = {"default", "eu"}
    assert parse_queue_name("email", aliases) == QueueName("email")
    assert parse_queue_name("{tenant-a}:email", aliases) == QueueName("email", "{tenant-a}")
    assert parse_queue_name("eu/app:v2:reports", aliases) == QueueName("reports", "app:v2", "eu")
    # A slash after something that is no alias is part of the name (queue names may hold one).
    assert parse_queue_name("a/b", aliases) == QueueName("a/b")
    with pytest.raises(CommandError, match="not a queue name"):
        parse_queue_name("bull:", aliases)


def test_resolving_names_lists_the_candidates() -> None:
    known = [EMAIL, TENANT_EMAIL, REPORTS]
    aliases = {"default", "eu"}
    assert resolve("reports", known, [], aliases) == REPORTS
    assert resolve("bull:email", known, [], aliases) == EMAIL
    assert resolve("default/{tenant-a}:email", known, [], aliases) == TENANT_EMAIL
    with pytest.raises(CommandError) as ambiguous:
        resolve("email", known, [], aliases)
    assert "default/bull:email" in str(ambiguous.value) and "default/{tenant-a}:email" in str(ambiguous.value)
    with pytest.raises(CommandError) as unknown:
        resolve("mail", known, [ConnectionRead("down", problem="Redis is unreachable: refused")], aliases)
    message = str(unknown.value)
    assert "No queue mail." in message and "default/bull:email" in message and "eu/" not in message
    assert "Connection down: Redis is unreachable: refused" in message


def test_rates_come_from_the_difference_between_two_reads() -> None:
    before = Snapshot([ConnectionRead("default", [counts(EMAIL, 100, 10), counts(REPORTS, 50, 0)])], at=10.0)
    after = Snapshot([ConnectionRead("default", [counts(EMAIL, 130, 13), counts(REPORTS, 20, 0)])], at=40.0)
    found = rates(before, after)
    assert found[EMAIL].completed == pytest.approx(60.0) and found[EMAIL].failed == pytest.approx(6.0)
    # A set that shrank (a clean, removeOnComplete) counts as no growth, never as a negative rate.
    assert found[REPORTS].completed == 0.0
    assert rates(None, after) == {}


def test_the_live_view_shows_rates_and_progress_bars() -> None:
    before = Snapshot([ConnectionRead("default", [counts(EMAIL, 100, 10, active=2)])], at=0.0)
    after = Snapshot([ConnectionRead("default", [counts(EMAIL, 160, 12, active=2)])], at=30.0)
    jobs = [
        JobSummary("j1", "send", 1, 1_000, None, 0, 3, 42, 0, 0, ""),
        JobSummary("j2", "render", 1, 1_000, None, 0, 3, {"stage": "smtp"}, 0, 0, ""),
    ]
    text = rendered(watch_view(before, after, [ActiveJobs(EMAIL, jobs, 7)]))
    row = next(line for line in text.splitlines() if line.startswith("│ email "))
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    assert cells[1:8] == ["0", "2", "0", "0", "0", "12", "160"]
    assert cells[8:10] == ["120.0", "4.0"]  # 60 completed and 2 failed in half a minute
    bar_line = next(line for line in text.splitlines() if "j1" in line)
    assert "━" in bar_line and "42%" in bar_line
    assert '{"stage": "smtp"}' in text
    assert "… and 5 more" in text
    first = rendered(watch_view(None, after, []))
    assert "…" in next(line for line in first.splitlines() if line.startswith("│ email "))


def test_a_progress_bar_is_as_long_as_its_share() -> None:
    half = rendered(progress_cell(50), width=40)
    full = rendered(progress_cell(100), width=40)
    assert "50%" in half and "100%" in full
    assert half.count("━") < full.count("━")
    assert rendered(progress_cell(None)).strip() == ""


def test_hostile_text_is_shown_as_written_and_never_as_markup_or_control() -> None:
    name = "[bold red]evil[/]\x1b[2J\u202e:smile:"
    queue = QueueRef("default", "[link=http://x]p[/link]", name)
    snapshot = Snapshot([ConnectionRead("default", [counts(queue, 1, 0)])], at=0.0)
    job = JobSummary("[b]id[/b]\x07", "[i]x[/i]\r\n", 1, 1, None, 0, 3, "[red]50[/red]", 0, 0, "")
    for text in (
        rendered(overview(snapshot)),
        rendered(watch_view(None, snapshot, [ActiveJobs(queue, [job], 1)])),
    ):
        assert "[bold red]evil[/]" in text and ":smile:" in text and "[link=http://x]p[/link]" in text
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        assert "\\u001b[2J" in text and "\\u202e" in text
    live = rendered(watch_view(None, snapshot, [ActiveJobs(queue, [job], 1)]))
    assert "[b]id[/b]\\u0007" in live and "[i]x[/i]\\u000d\\u000a" in live and "[red]50[/red]" in live


def test_a_broken_queue_and_a_down_connection_say_why_in_their_place() -> None:
    broken = QueueCounts(EMAIL, {}, paused=False, error="Redis answered with an error: WRONGTYPE")
    snapshot = Snapshot(
        [ConnectionRead("default", [broken]), ConnectionRead("eu", problem="Redis is unreachable: refused")],
        at=0.0,
    )
    text = rendered(overview(snapshot))
    assert "broken: Redis answered with an error: WRONGTYPE" in text
    assert "Connection eu: Redis is unreachable: refused" in text
