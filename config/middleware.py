"""Django's standard middlewares, with their hooks run on the event loop when the hook does no I/O.

Under ASGI, Django runs every hook of a `MiddlewareMixin` middleware in a worker thread (one
`sync_to_async` hop, about 160 µs here, each). The usual stack of seven middlewares made 13 such hops per
request: more time than the dashboard's whole Redis read and JSON of a job list page. Each class below is
the Django class it names, with the same hooks; a hook runs inline when it cannot touch the database or
a file, and in Django's thread as before when it might (a session to save, messages to store, CSRF
tokens kept in the session). Listing them in MIDDLEWARE instead of Django's is the whole change; Django's
system checks that look for the originals by dotted path are run for them by
`config.middleware_checks`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csrf, security
from django.utils.deprecation import MiddlewareMixin

Hook = Callable[..., Any]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class InlineHooks(MiddlewareMixin):
    """Base of the classes below: the async path calls hooks directly unless they may do I/O."""

    def request_needs_thread(self, request: HttpRequest) -> bool:
        """Whether process_request may do I/O for this request."""
        return False

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        """Whether process_response may do I/O for this response."""
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        """MiddlewareMixin.__acall__, without a thread hop for hooks that do no I/O."""
        response = None
        process_request: Hook | None = getattr(self, "process_request", None)
        if process_request is not None:
            if self.request_needs_thread(request):
                response = await sync_to_async(process_request, thread_sensitive=True)(request)
            else:
                response = process_request(request)
        # In async mode (the only one that calls __acall__) get_response is a coroutine function.
        response = response or await cast(AsyncGetResponse, self.get_response)(request)
        process_response: Hook | None = getattr(self, "process_response", None)
        if process_response is not None:
            if self.response_needs_thread(request, response):
                response = await sync_to_async(process_response, thread_sensitive=True)(request, response)
            else:
                response = process_response(request, response)
        return response


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    """Django's SecurityMiddleware: redirects and headers only, always inline."""


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    """Django's CommonMiddleware: URL resolving and headers only, always inline."""


class XFrameOptionsMiddleware(InlineHooks, clickjacking.XFrameOptionsMiddleware):
    """Django's XFrameOptionsMiddleware: one header, always inline."""


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    """Django's AuthenticationMiddleware: it only attaches the lazy user, so always inline."""


class SessionMiddleware(InlineHooks, sessions.SessionMiddleware):
    """Django's SessionMiddleware: the session store is lazy; only saving it needs the thread."""

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        """A modified (or always-saved) non-empty session is written to its store."""
        session = getattr(request, "session", None)
        if session is None:
            return False
        # is_empty() reads only what is already loaded; a session never accessed is not saved.
        return bool(session.modified or settings.SESSION_SAVE_EVERY_REQUEST) and not session.is_empty()


class MessageMiddleware(InlineHooks, messages.MessageMiddleware):
    """Django's MessageMiddleware: storing messages may write the session; reading none needs nothing."""

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        """Messages are stored only when some were read or added during the request."""
        storage = getattr(request, "_messages", None)
        return storage is not None and bool(storage.used or storage.added_new)


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    """Django's CsrfViewMiddleware: cookie-held tokens are checked inline; session-held ones in the thread."""

    def request_needs_thread(self, request: HttpRequest) -> bool:
        """The token secret is read from the session when CSRF_USE_SESSIONS is on."""
        return bool(settings.CSRF_USE_SESSIONS)

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        """The token secret is written to the session when CSRF_USE_SESSIONS is on."""
        return bool(settings.CSRF_USE_SESSIONS)

    @property
    def process_view(self) -> Hook:
        """Django wraps a sync process_view in a thread hop; give it a coroutine when that is not needed."""
        check = super().process_view
        if not getattr(self, "async_mode", False) or settings.CSRF_USE_SESSIONS:
            return check

        async def process_view(
            request: HttpRequest, callback: Hook, callback_args: Any, callback_kwargs: Any
        ) -> HttpResponseBase | None:
            return check(request, callback, callback_args, callback_kwargs)

        return process_view


# The Django class each one stands for, by dotted path (the system checks use this).
REPLACES = {
    f"{cls.__module__}.{cls.__qualname__}": f"{base.__module__}.{base.__qualname__}"
    for cls, base in (
        (SecurityMiddleware, security.SecurityMiddleware),
        (CommonMiddleware, common.CommonMiddleware),
        (XFrameOptionsMiddleware, clickjacking.XFrameOptionsMiddleware),
        (AuthenticationMiddleware, auth.AuthenticationMiddleware),
        (SessionMiddleware, sessions.SessionMiddleware),
        (MessageMiddleware, messages.MessageMiddleware),
        (CsrfViewMiddleware, csrf.CsrfViewMiddleware),
    )
}
