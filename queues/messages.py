"""Sentences for people, in English, that a translating layer can show in another language.

`queues` has no Django and translates nothing. A sentence it makes for people (a conflict, a refused
parameter, what an action did, why a row is not a job) is a `Message`: a `str` holding the English
text, so logs, audit entries and `str()` read as before, that also keeps the English template, its
values, and for plurals the other form and the count. The dashboard translates where it shows one:
it looks the template up in its catalog and fills in the same values (`dashboard.translation`).
Values that are job content (ids, names, reasons) or another program's words (Redis, BullMQ) are
filled in as they are; values that are messages themselves are translated too.

The constructors are named like Django's lazy functions, and mean the same (a sentence translated
when it is shown), so that Django's `makemessages` (xgettext with Django's keywords) extracts their
templates into the dashboard's catalog. Templates use named `%(name)s` fields only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class Message(str):
    """English text that remembers how it was made: template, values, plural form and number, context."""

    template: str
    params: Mapping[str, object]
    plural: str | None
    # The count that chose the plural form (named so as not to hide str.count).
    number: int | None
    context: str | None

    def __new__(
        cls,
        template: str,
        params: Mapping[str, object] | None = None,
        *,
        plural: str | None = None,
        count: int | None = None,
        context: str | None = None,
    ) -> Message:
        """The English sentence: the template (or the plural form when `count` is not 1) with `params`."""
        values = dict(params or {})
        chosen = plural if plural is not None and count != 1 else template
        message = super().__new__(cls, chosen % values if values else chosen)
        message.template = template
        message.params = values
        message.plural = plural
        message.number = count
        message.context = context
        return message


def gettext_lazy(template: str, /, **params: object) -> Message:
    """A sentence: `template` with `params` filled in, translated where it is shown."""
    return Message(template, params)


def ngettext_lazy(singular: str, plural: str, count: int, /, **params: object) -> Message:
    """A sentence in the form for `count` (filled in as `%(count)s` too), translated where it is shown."""
    return Message(singular, {"count": count, **params}, plural=plural, count=count)


def pgettext_lazy(context: str, template: str, /, **params: object) -> Message:
    """A word or sentence whose translation depends on `context` (a state name, a button)."""
    return Message(template, params, context=context)


def duration_words(seconds: float) -> str:
    """A duration as people say it, rounded down to its largest unit: `41 s`, `12 min`, `2 h`, `3 d`."""
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    if whole < 172800:
        return f"{whole // 3600} h"
    return f"{whole // 86400} d"


def either(words: Sequence[str]) -> str:
    """`a`, `a or b`, `a, b or c`: alternatives (messages themselves, such as state names) for a sentence."""
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    if len(words) == 2:
        return gettext_lazy("%(first)s or %(second)s", first=words[0], second=words[1])
    return gettext_lazy("%(first)s, %(rest)s", first=words[0], rest=either(words[1:]))


def joined(sentences: Sequence[str]) -> str:
    """Several sentences (or clauses) as one: `a; b; c`."""
    if len(sentences) <= 1:
        return sentences[0] if sentences else ""
    return gettext_lazy("%(first)s; %(rest)s", first=sentences[0], rest=joined(sentences[1:]))
