"""The QUEUE argument of the terminal's actions: `name`, `prefix:name` or `connection/prefix:name`,
found among the queues the registry knows, or a CommandError that lists the candidates."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.core.management.base import CommandError
from django.utils.translation import gettext

from dashboard.terminal.reading import ConnectionRead
from dashboard.translation import translated
from queues.models import QueueRef
from queues.parsing import plain_text

# Candidates named in an error, at most.
MAX_CANDIDATES = 20


@dataclass(frozen=True)
class QueueName:
    """What a QUEUE argument names: the queue's name, and its prefix and connection when given."""

    name: str
    prefix: str | None = None
    connection: str | None = None

    def matches(self, queue: QueueRef) -> bool:
        """True when `queue` is one this argument could mean."""
        return (
            queue.name == self.name
            and (self.prefix is None or queue.prefix == self.prefix)
            and (self.connection is None or queue.connection == self.connection)
        )


def parse_queue_name(text: str, aliases: Collection[str]) -> QueueName:
    """Split a QUEUE argument: a leading `<alias>/` names a connection (only a configured alias: queue
    names may hold a slash); the name is after the last colon (names never hold one)."""
    connection: str | None = None
    head, slash, tail = text.partition("/")
    if slash and head in aliases and tail:
        connection, text = head, tail
    prefix, colon, name = text.rpartition(":")
    if not colon:
        return QueueName(text, None, connection)
    if not prefix or not name:
        raise CommandError(gettext("%(queue)s is not a queue name.") % {"queue": plain_text(text)})
    return QueueName(name, prefix, connection)


def label(queue: QueueRef) -> str:
    """`connection/prefix:name`: the spelling that names one queue on every set-up."""
    return plain_text(f"{queue.connection}/{queue.key}")


def resolve(
    text: str, known: list[QueueRef], down: list[ConnectionRead], aliases: Collection[str]
) -> QueueRef:
    """The one known queue that `text` names; a CommandError naming the candidates otherwise."""
    wanted = parse_queue_name(text, aliases)
    found = [queue for queue in known if wanted.matches(queue)]
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(label(queue) for queue in found[:MAX_CANDIDATES])
        raise CommandError(
            gettext("%(queue)s names more than one queue; say which: %(candidates)s.")
            % {"queue": plain_text(text), "candidates": names}
        )
    needle = wanted.name.casefold()
    close = [queue for queue in known if needle in queue.name.casefold()] or known
    message = gettext("No queue %(queue)s.") % {"queue": plain_text(text)}
    if close:
        names = ", ".join(label(queue) for queue in close[:MAX_CANDIDATES])
        more = len(close) - MAX_CANDIDATES
        message += " " + gettext("Queues: %(candidates)s.") % {"candidates": names}
        if more > 0:
            message += " " + gettext("(%(count)s more)") % {"count": more}
    for read in down:
        message += " " + gettext("Connection %(connection)s: %(problem)s") % {
            "connection": plain_text(read.alias),
            "problem": plain_text(translated(read.problem), 500),
        }
    raise CommandError(message)
