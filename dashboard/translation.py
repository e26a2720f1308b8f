"""Sentences of `queues` in the active language (see `queues.messages`), and the states' names.

`queues` hands over English `Message`s that remember their template and values; they are translated
here, where they are shown (pages, toasts, JSON answers), and not where they were made: an action may
finish in a background task, in no request's language, and its audit entry keeps the English text.
Text that is no `Message` (job content, Redis' and BullMQ's own words) is shown as it is.
"""

from __future__ import annotations

from django.utils.translation import gettext, ngettext, npgettext, pgettext

from queues.messages import Message
from queues.states import state_name


def translated(text: str) -> str:
    """`text` in the active language when it is a Message (its values too); other text as it is."""
    if not isinstance(text, Message):
        return text
    if text.plural is not None:
        number = text.number or 0
        if text.context is not None:
            template = npgettext(text.context, text.template, text.plural, number)
        else:
            template = ngettext(text.template, text.plural, number)
    elif text.context is not None:
        template = pgettext(text.context, text.template)
    else:
        template = gettext(text.template)
    if not text.params:
        return template
    return template % {name: _value(value) for name, value in text.params.items()}


def _value(value: object) -> object:
    return translated(value) if isinstance(value, Message) else value


def message_of(exc: BaseException) -> str:
    """The sentence an exception carries: its one argument when that is a Message, else `str(exc)`."""
    if len(exc.args) == 1 and isinstance(exc.args[0], Message):
        return exc.args[0]
    return str(exc)


def state_label(state: str) -> str:
    """A job state's name (`waiting`, `failed`, ...) in the active language; unknown names as they are."""
    return translated(state_name(state))
