"""A small keep-alive HTTP client with a cookie jar, timed per request (stdlib only)."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

TIMEOUT = 300.0


@dataclass(frozen=True)
class Response:
    """One answer: status, body, header bytes and the wall time from sending to the last body byte."""

    status: int
    body: bytes
    header_bytes: int
    seconds: float
    headers: dict[str, str]

    @property
    def wire_bytes(self) -> int:
        """Status line, headers and body as sent (no compression is asked for)."""
        return self.header_bytes + len(self.body)


@dataclass
class HttpClient:
    """One persistent connection to one server, like one browser tab's; cookies kept between requests."""

    base: str
    cookies: dict[str, str] = field(default_factory=dict)
    _conn: http.client.HTTPConnection | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.base)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80

    def clone(self) -> HttpClient:
        """A new connection with the same cookies (another tab of the same browser)."""
        return HttpClient(self.base, dict(self.cookies))

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        """GET a path; the time covers the request and the whole body."""
        return self._request("GET", path, None, headers or {})

    def post_form(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Response:
        """POST an urlencoded form."""
        body = urlencode(fields).encode()
        extra = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self._request("POST", path, body, extra)

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        all_headers = {"Accept-Encoding": "identity", "Connection": "keep-alive", **headers}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT)
            started = time.perf_counter()
            try:
                self._conn.request(method, path, body=body, headers=all_headers)
                raw = self._conn.getresponse()
                data = raw.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection; reconnect once.
                self.close()
                if attempt == 1:
                    raise
                continue
            seconds = time.perf_counter() - started
            for header in raw.msg.get_all("Set-Cookie") or []:
                cookie: SimpleCookie = SimpleCookie()
                cookie.load(header)
                for name, morsel in cookie.items():
                    self.cookies[name] = morsel.value
            header_bytes = len(f"HTTP/1.1 {raw.status} {raw.reason}\r\n") + len(str(raw.msg)) + 2
            if raw.will_close:
                self.close()
            return Response(raw.status, data, header_bytes, seconds, dict(raw.msg.items()))
        raise AssertionError("unreachable")


def login(base: str, username: str, password: str) -> HttpClient:
    """A client logged in to the standalone site through Django's login form (CSRF and session)."""
    client = HttpClient(base)
    page = client.get("/accounts/login/")
    if page.status != 200 or "csrftoken" not in client.cookies:
        raise RuntimeError(f"login page answered {page.status} without a CSRF cookie")
    answer = client.post_form(
        "/accounts/login/",
        {
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
            "username": username,
            "password": password,
            "next": "/queues/",
        },
    )
    if answer.status != 302 or "sessionid" not in client.cookies:
        raise RuntimeError(f"login failed: {answer.status} {answer.body[:200]!r}")
    return client
