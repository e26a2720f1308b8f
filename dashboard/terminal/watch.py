"""The live view: the tables refreshed in place (rich's Live) until Ctrl-C."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.live import Live

from dashboard.terminal.reading import Selection, Snapshot, read_active, read_snapshot
from dashboard.terminal.rendering import watch_view


async def watch(
    console: Console, selection: Selection, interval: float, iterations: int | None = None
) -> None:
    """Read and show the selected queues every `interval` seconds, with rates since the previous read
    and the first active jobs; `iterations` refreshes at most (None: until cancelled)."""
    previous: Snapshot | None = None
    shown = 0
    try:
        # No refresh thread: each frame is drawn once, right after its read.
        with Live(console=console, auto_refresh=False) as live:
            while iterations is None or shown < iterations:
                if shown:
                    await asyncio.sleep(interval)
                current = await read_snapshot(selection)
                live.update(watch_view(previous, current, await read_active(current)), refresh=True)
                previous = current
                shown += 1
    finally:
        if not console.is_terminal:
            console.line()  # rich ends the last frame with a line break on terminals only
