"""`manage.py queues`: every queue and its counts in the terminal, live with `--watch`, and the common
queue actions (retry-failed, clean, pause, resume) through the web's actions layer and audit log."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.utils.translation import gettext, ngettext
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from dashboard import registry, serializers
from dashboard.conf import get_config
from dashboard.durations import duration_ms
from dashboard.terminal.queue_actions import SUBCOMMANDS, Request, execute, plan
from dashboard.terminal.reading import Selection, Snapshot, read_snapshot
from dashboard.terminal.rendering import overview
from dashboard.terminal.watch import watch
from dashboard.translation import translated
from dashboard.views.actions import running
from queues.actions import CLEANABLE_STATES
from queues.connections import close_clients
from queues.parsing import plain_text

T = TypeVar("T")
# Columns when the output is no terminal (a pipe, a file) and COLUMNS is not set: wide enough for
# every column of the table, so no count is cut.
PIPE_WIDTH = 160
MIN_INTERVAL = 0.2


class _Stream:
    """Django's OutputWrapper as the file rich writes to: rich writes pieces of lines, which must not
    each get the wrapper's line ending."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, text: str) -> int:
        self.out.write(text, ending="")
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return self.out.isatty()


def _grace(text: str) -> int:
    try:
        return duration_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number ≥ 0: {text!r}")
    return int(text)


def _interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds >= MIN_INTERVAL:  # also refuses nan
        raise argparse.ArgumentTypeError(f"give seconds, at least {MIN_INTERVAL}: {text!r}")
    return seconds


async def _closing(work: Awaitable[T]) -> T:
    """Run `work`, then stop discovery and close this loop's Redis clients (each asyncio.run has its
    own loop, and its clients belong to it)."""
    try:
        return await work
    finally:
        await registry.stop_background_work()
        await close_clients()


class Command(BaseCommand):
    help = (
        "Every queue and its job counts (--json: the API's queue list; --watch: refreshed in place, with "
        "rates and active jobs), or an action on one queue: retry-failed, clean, pause, resume (checked, "
        "confirmed and audited like the dashboard's own)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the API's queue list as JSON")
        parser.add_argument("--connection", help="only the queues of this connection alias")
        parser.add_argument("--prefix", help="only the queues under this key prefix")
        parser.add_argument(
            "-q", "--filter", default="", help="only queues whose prefix:name or connection contains TEXT"
        )
        parser.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
        parser.add_argument(
            "--interval", type=_interval, default=2.0, help="seconds between refreshes (default 2)"
        )
        parser.add_argument(
            "--iterations", type=_count, default=None, help="with --watch: stop after N refreshes"
        )
        actions = parser.add_subparsers(dest="action", metavar="ACTION", title="actions")
        helps = {
            "retry-failed": "move every failed job of QUEUE back to waiting (asks first)",
            "clean": "remove QUEUE's jobs of a state older than --grace (asks first)",
            "pause": "pause QUEUE: workers take no new jobs",
            "resume": "resume a paused QUEUE",
        }
        for name in SUBCOMMANDS:
            action = actions.add_parser(name, help=helps[name], description=helps[name])
            action.add_argument("queue", metavar="QUEUE", help="name, prefix:name or connection/prefix:name")
            action.add_argument(
                "--user", help="take it as this dashboard user (its permissions apply); default: the OS login"
            )
            action.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
            if name == "clean":
                action.add_argument("--state", required=True, choices=CLEANABLE_STATES)
                action.add_argument(
                    "--grace", required=True, type=_grace, help="minimum age: 30s, 10m, 1h, 2d or ms"
                )
                action.add_argument("--limit", type=_count, default=0, help="remove at most N (0: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        console = Console(
            file=cast(Any, _Stream(self.stdout)),
            width=None if self.stdout.isatty() or "COLUMNS" in os.environ else PIPE_WIDTH,
            emoji=False,
            highlight=False,
        )
        if options.get("action"):
            self._act(console, options)
        elif options["watch"]:
            if options["json"]:
                raise CommandError(gettext("--json prints one read; it does not go with --watch."))
            try:
                asyncio.run(
                    _closing(
                        watch(console, self._selection(options), options["interval"], options["iterations"])
                    )
                )
            except KeyboardInterrupt:
                return  # Ctrl-C is how a watch ends
        else:
            self._list(console, options)

    def _selection(self, options: dict[str, Any]) -> Selection:
        connection = options["connection"]
        configured = list(get_config().connections)
        if connection is not None and connection not in configured:
            raise CommandError(
                gettext("No connection %(connection)s; there are: %(aliases)s.")
                % {"connection": plain_text(connection), "aliases": ", ".join(configured)}
            )
        return Selection(connection, options["prefix"], options["filter"])

    def _list(self, console: Console, options: dict[str, Any]) -> None:
        snapshot: Snapshot = asyncio.run(_closing(read_snapshot(self._selection(options))))
        if options["json"]:
            body = {
                "queues": [serializers.queue_json(row) for row in snapshot.rows],
                "connectionsDown": [
                    {"connection": read.alias, "problem": translated(read.problem)} for read in snapshot.down
                ],
            }
            self.stdout.write(json.dumps(body, indent=2))
        else:
            console.print(overview(snapshot))
        if snapshot.down:
            aliases = ", ".join(plain_text(read.alias) for read in snapshot.down)
            raise CommandError(
                ngettext(
                    "Connection %(connections)s could not be read.",
                    "Connections %(connections)s could not be read.",
                    len(snapshot.down),
                )
                % {"connections": aliases}
            )

    def _act(self, console: Console, options: dict[str, Any]) -> None:
        params: dict[str, Any] = {}
        if options["action"] == "clean":
            params = {"state": options["state"], "grace": options["grace"], "limit": options["limit"]}
        elif options["action"] == "retry-failed":
            params = {"state": "failed"}
        request = Request(SUBCOMMANDS[options["action"]], options["queue"], params, options.get("user"))
        try:
            checked = asyncio.run(_closing(plan(request)))
            if checked.question is not None:
                self._confirm(console, checked.question, options["yes"])
        except KeyboardInterrupt:
            raise CommandError(gettext("Nothing was changed.")) from None

        label = translated(checked.spec.label)
        # Long actions (in batches) show a spinner with the count so far, on a terminal; gone when done.
        status = console.status(escape(translated(running(label, 0))))

        def progress(count: int) -> None:
            if count < 0:
                console.print(
                    gettext(
                        "Interrupted: the action runs to its end and is audited (Ctrl-C again stops at once)."
                    )
                )
            else:
                status.update(escape(translated(running(label, count))))

        try:
            with status if checked.spec.background else contextlib.nullcontext():
                answer = asyncio.run(_closing(execute(checked, progress)))
        except KeyboardInterrupt:
            raise CommandError(
                gettext("Interrupted: the action may have been partly done; see the audit log.")
            ) from None
        message = plain_text(translated(answer.message), 2000)
        if not answer.ok:
            raise CommandError(message)
        console.print(Text(message))

    def _confirm(self, console: Console, question: str, assume_yes: bool) -> None:
        """Show what will happen; go on with --yes, or when the person at the terminal types y."""
        console.print(Text(question))
        if assume_yes:
            return
        if not sys.stdin.isatty():
            raise CommandError(
                gettext("Not confirmed, so nothing was changed: stdin is not a terminal (add --yes).")
            )
        console.print(gettext("Type y to go on: "), end="")
        answer = sys.stdin.readline().strip().casefold()
        if answer not in {"y", "yes", gettext("y").casefold()}:
            raise CommandError(gettext("Nothing was changed."))
