"""`/healthz` of the standalone site: 200 "ok" while the process serves HTTP.

Answered at the ASGI layer, before Django: it touches neither Redis nor the database (a Redis outage must
not get the container restarted), needs no login, and a probe from inside the container gets its answer
whatever DJANGO_ALLOWED_HOSTS and DJANGO_SECURE_SSL_REDIRECT say (through Django it would get a 400 for
the host 127.0.0.1, or a redirect to https).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PATH = "/healthz"
HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]


async def health_check(
    scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[dict[str, Any]], Any]
) -> None:
    """Answer GET and HEAD with 200 "ok", other methods with 405."""
    method = scope.get("method", "GET")
    if method not in ("GET", "HEAD"):
        await send(
            {"type": "http.response.start", "status": 405, "headers": [*HEADERS, (b"allow", b"GET, HEAD")]}
        )
        await send({"type": "http.response.body", "body": b""})
        return
    body = b"ok"
    headers = [*HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
