"""The standalone site's Content-Security-Policy: one header on every HTML response.

The policy is `settings.CONTENT_SECURITY_POLICY` (from `DJANGO_CSP`, see config/settings.py). The pages
load scripts and styles from files only (no inline `<script>`, `<style>` or `style=""`, no `hx-on`, no
`eval`), so `'self'` is all they need; the websocket is same-origin too (`connect-src 'self'` allows
`ws:`/`wss:` to the page's own host in Chromium, Firefox and Safari).

The middleware runs on the event loop under ASGI and plainly under WSGI: no thread hop either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADER = "Content-Security-Policy"

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


def current_policy() -> str:
    """The policy the settings ask for (CONTENT_SECURITY_POLICY, else the strict default)."""
    return str(getattr(settings, "CONTENT_SECURITY_POLICY", "") or DEFAULT_POLICY)


def add_policy(response: HttpResponseBase) -> HttpResponseBase:
    """Set the policy on an HTML response that does not carry one yet."""
    if HEADER in response or not response.get("Content-Type", "").startswith("text/html"):
        return response
    # Django's own DEBUG pages (technical 404/500, the CSRF failure page with DEBUG on) are styled and
    # scripted inline; with DEBUG on they go out without the policy rather than unreadable.
    if settings.DEBUG and response.status_code >= 400:
        return response
    response[HEADER] = current_policy()
    return response


class ContentSecurityPolicyMiddleware:
    """Adds the Content-Security-Policy header to HTML responses; async and sync capable."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        """The response of the rest of the stack, with the policy added."""
        if self.async_mode:
            return self.__acall__(request)
        return add_policy(cast(GetResponse, self.get_response)(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        """The async path: awaits the rest of the stack on the event loop."""
        return add_policy(await cast(AsyncGetResponse, self.get_response)(request))
