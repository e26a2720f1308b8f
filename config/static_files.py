"""Static files of the standalone site, served with WhiteNoise at the ASGI layer, before Django.

WhiteNoise's Django middleware is sync-only: listed in MIDDLEWARE it would put every async request through
a thread hop. Here WhiteNoise scans STATIC_ROOT (collectstatic) once and answers the requests under
STATIC_URL: its file table, headers, conditional requests, ranges and pre-compressed variants, sent by a
small ASGI responder; every other request goes to Django untouched. Hashed names written by the manifest
storage are cached for good (`immutable`), other files for a minute. With DEBUG on, /static/ goes to Django
instead (staticfiles' finders, no collectstatic needed).

Not asgiref's WsgiToAsgi around WhiteNoise's WSGI app: it sends each block from its worker thread through
AsyncToSync, which carries that thread's executor into daphne's send; a keep-alive connection's next
request, started from there, then failed with "CurrentThreadExecutor already quit" (seen in Chromium).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from wsgiref.headers import Headers

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.urls import get_script_prefix
from whitenoise import WhiteNoise

logger = logging.getLogger("config")

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]

# Bytes read (in a worker thread, off the event loop) and sent at a time.
BLOCK_SIZE = 64 * 1024
NOT_FOUND = [(b"content-type", b"text/plain; charset=utf-8"), (b"x-content-type-options", b"nosniff")]


def static_path() -> str | None:
    """STATIC_URL's path ("/static/"), or None when the files live elsewhere (a CDN's URL)."""
    url = urlsplit(str(settings.STATIC_URL))
    if url.scheme or url.netloc:
        return None
    # Django puts the script prefix (the root path) before a relative STATIC_URL; paths here are below it.
    path = url.path.removeprefix(get_script_prefix().rstrip("/"))
    return "/" + path.strip("/") + "/"


def hashed_names() -> frozenset[str]:
    """Names the manifest storage gave a content hash (empty with storages that hash nothing)."""
    hashed: dict[str, str] = getattr(staticfiles_storage, "hashed_files", None) or {}
    return frozenset(name for original, name in hashed.items() if name != original)


def add_headers(headers: Headers, path: str, url: str) -> None:
    """Headers of every static file beside WhiteNoise's own."""
    headers["X-Content-Type-Options"] = "nosniff"


def scan(root: str, prefix: str) -> Any:
    """A WhiteNoise holding the files under root, by URL path under the prefix."""
    hashed = {prefix + name for name in hashed_names()}
    files = WhiteNoise(
        None,  # its WSGI side is not used
        max_age=60,
        add_headers_function=add_headers,
        immutable_file_test=lambda path, url: url in hashed,
    )
    if os.path.isdir(root):
        files.add_files(root, prefix)
    else:
        logger.warning("STATIC_ROOT %s does not exist: run `manage.py collectstatic`", root)
    return files


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers as WhiteNoise reads them (WSGI environ names)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = "HTTP_" + raw_name.decode("latin1").upper().replace("-", "_")
        value = raw_value.decode("latin1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


class StaticFiles:
    """ASGI app for the paths under STATIC_URL, rescanned when STATIC_ROOT or STATIC_URL change (tests)."""

    def __init__(self) -> None:
        self._key: tuple[str, str] | None = None
        self._files: Any = None

    def serves(self, path: str) -> bool:
        """Whether a request path (below the root path) is the static files' (never with DEBUG on)."""
        prefix = static_path()
        return prefix is not None and path.startswith(prefix) and not settings.DEBUG

    def files(self) -> Any:
        """The WhiteNoise file table for the current settings."""
        key = (str(settings.STATIC_ROOT), static_path() or "/static/")
        if self._files is None or key != self._key:
            self._files, self._key = scan(*key), key
        return self._files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request for a static file (`path` already below the root path)."""
        await self.respond(scope, scope["path"].removeprefix(scope.get("root_path") or ""), send)

    async def respond(self, scope: Scope, path: str, send: Send) -> None:
        """Send the file at this URL path, or a 404."""
        static_file = self.files().files.get(path)
        if static_file is None:
            await send({"type": "http.response.start", "status": 404, "headers": NOT_FOUND})
            await send({"type": "http.response.body", "body": b"Not Found"})
            return
        # Conditional requests, ranges, gzip/br variants and 405s are WhiteNoise's; it opens the file.
        response = static_file.get_response(scope["method"], request_headers(scope))
        headers = [
            (name.lower().encode("latin1"), value.encode("latin1")) for name, value in response.headers
        ]
        file = response.file
        try:
            await send({"type": "http.response.start", "status": int(response.status), "headers": headers})
            if file is None:
                await send({"type": "http.response.body", "body": b""})
                return
            block = await asyncio.to_thread(file.read, BLOCK_SIZE)
            while True:
                following = await asyncio.to_thread(file.read, BLOCK_SIZE) if block else b""
                await send({"type": "http.response.body", "body": block, "more_body": bool(following)})
                if not following:
                    return
                block = following
        finally:
            if file is not None:
                file.close()
