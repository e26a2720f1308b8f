"""Error reports (DEBUG pages, error mails) that never show the password of a connection URL.

Django's SafeExceptionReporterFilter hides settings by name (`…PASS…`, `…KEY…`); a Redis URL sits under
names like `BULLMQ_DASHBOARD["CONNECTIONS"]["default"]["URL"]` or `CHANNEL_LAYERS[…]["hosts"]`, and in local
variables of any frame. The filter below masks the password of every `redis://`, `rediss://`, `unix://`,
`valkey(s)://`, `postgres(ql)://` and `mysql://` URL in settings, request META and cookies, and frame
variables (recursively through dicts, lists, tuples and sets, and in the repr of any other object), and
it is active with DEBUG on too: DEBUG pages are where a password would be shown. The reporter masks what
the filter does not see (the exception's message, its notes and causes) in the rendered page.

`redis://user:secret@host` becomes `redis://user:********@host`; `?password=…` in the query is masked too,
and so is the password of such a URL percent-encoded in a query string.
A password holding whitespace is cut at the whitespace in free text (such a URL is not valid anyway);
where a whole value is one URL (settings, variables) everything up to its last `@` is masked.
"""

from __future__ import annotations

import re
from collections.abc import ItemsView
from pprint import pformat
from types import FrameType
from typing import Any
from urllib.parse import unquote

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import CallableSettingWrapper, ExceptionReporter, SafeExceptionReporterFilter

MASK = "********"
SCHEMES = r"(?:rediss?|unix|valkeys?|postgres(?:ql)?|mysql)"
# A URL in free text: up to whitespace, markup or a double quote (single quotes may be in a password).
URL_IN_TEXT = re.compile(rf"\b{SCHEMES}://[^\s<>\"]+", re.IGNORECASE)
WHOLE_URL = re.compile(rf"\A\s*{SCHEMES}://", re.IGNORECASE)
# `;` also ends HTML's `&amp;`, so an escaped query string is covered; `ssl_password=` is a key's password.
# The name may be percent-encoded (`?%70assword=`): redis-py decodes names as well as values.
QUERY_SECRET = re.compile(r"([?&;]((?:[\w.-]|%[0-9A-Fa-f]{2})*)=)([^&#\s]*)")
SECRET_NAMES = ("password", "passwd", "pass", "pwd")
# The same URL percent-encoded in a query string (a request's URL and QUERY_STRING in the report).
ENCODED_URL_SECRET = re.compile(rf"(\b{SCHEMES}%3A%2F%2F[^\s<>\"&%:/@]*%3A)[^\s<>\"&]*(?=%40)", re.IGNORECASE)
# A password parameter in the query of such a percent-encoded URL (`%3Fpassword%3D…`, its name possibly
# percent-encoded once more: `%3F%2570assword%3D…`); its value runs to the next encoded or plain `&`.
ENCODED_QUERY_SECRET = re.compile(
    r"((?:%3F|%26|%3B)((?:[\w.-]|%25[0-9A-Fa-f]{2})*)%3D)(.*?)(?=%26|&|[\s<>\"]|$)", re.IGNORECASE
)
MAX_DEPTH = 20


def redact_url(url: str) -> str:
    """The URL with the password of its user info and any password query parameter masked."""
    scheme, separator, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if colon and password:
            rest = f"{user}:{MASK}@{hostpart}"
    return scheme + separator + QUERY_SECRET.sub(_masked_parameter, rest)


def _masked_parameter(match: re.Match[str]) -> str:
    if unquote(match[2]).lower().endswith(SECRET_NAMES):
        return f"{match[1]}{MASK}"
    # Another parameter's value runs to `&`; a `;password=` inside it is masked as well.
    return match[1] + QUERY_SECRET.sub(_masked_parameter, match[3])


def _masked_encoded_parameter(match: re.Match[str]) -> str:
    if unquote(unquote(match[2])).lower().endswith(SECRET_NAMES):
        return f"{match[1]}{MASK}"
    return match[0]


def redact_text(text: str) -> str:
    """Text with the password of every connection URL in it masked."""
    if "%3A%2F%2F" in text.upper():
        text = ENCODED_URL_SECRET.sub(rf"\g<1>{MASK}", text)
        text = ENCODED_QUERY_SECRET.sub(_masked_encoded_parameter, text)
    if "://" not in text:
        return text
    if WHOLE_URL.match(text):
        return redact_url(text)
    return URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


class Shown:
    """A value already formatted for the report: its repr is the (masked) text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def redact_value(value: Any, depth: int = 0) -> Any:
    """The value with connection passwords masked: strings, builtin containers, then any repr."""
    if isinstance(value, str):
        return redact_text(value)
    if depth >= MAX_DEPTH or isinstance(value, int | float | None | CallableSettingWrapper):
        return value
    kind = type(value)
    if kind is dict:
        return {redact_value(k, depth + 1): redact_value(v, depth + 1) for k, v in value.items()}
    if kind in (list, tuple, set, frozenset):
        return kind(redact_value(item, depth + 1) for item in value)
    try:
        text = repr(value)
    except Exception:  # a broken __repr__: the report says so itself
        return value
    masked = redact_text(text)
    return value if masked == text else Shown(masked)


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """SafeExceptionReporterFilter that also masks connection URL passwords, with DEBUG on as well."""

    def is_active(self, request: HttpRequest | None) -> bool:
        """Always: DEBUG pages are exactly where secrets would be shown."""
        return True

    def cleanse_setting(self, key: int | str, value: Any) -> Any:
        """Django's cleansing by name, then URL passwords masked in what is left."""
        cleansed = super().cleanse_setting(key, value)
        # Django rebuilt dicts, lists and tuples through this method: their items are done already.
        if isinstance(cleansed, dict | list | tuple):
            return cleansed
        return redact_value(cleansed)

    def get_traceback_frame_variables(self, request: Any, tb_frame: FrameType) -> ItemsView[str, Any]:
        """Django's (sensitive_variables honoured), each value formatted with URL passwords masked."""
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return {name: Shown(redact_text(formatted(value))) for name, value in variables}.items()


def formatted(value: Any) -> str:
    """The value as the report prints it (pprint), or the error formatting it raised."""
    try:
        return pformat(redact_value(value))
    except Exception as exc:
        return f"Error in formatting: {exc.__class__.__name__}: {exc}"


class RedactingExceptionReporter(ExceptionReporter):
    """Django's reporter; the rendered report has URL passwords masked (exception messages included)."""

    # Masking only puts asterisks where URL text was: the escaped HTML stays as safe as it was.
    def get_traceback_html(self) -> SafeString:
        """The HTML report, masked."""
        return mark_safe(redact_text(super().get_traceback_html()))

    def get_traceback_text(self) -> SafeString:
        """The plain-text report, masked."""
        return mark_safe(redact_text(super().get_traceback_text()))
