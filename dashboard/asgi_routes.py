"""Where an ASGI application routes a websocket consumer: read from its routers, for the system checks.

A host project's `asgi.py` builds its application from channels' routers and middleware:
`ProtocolTypeRouter({"websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([...])))})`.
This module walks that tree without calling anything: through a `ProtocolTypeRouter`'s "websocket"
entry, through middleware wrappers by their `inner` / `app` / `application` attribute (channels'
middleware, `OriginValidator`, most ASGI wrappers), and through `URLRouter` routes (`path` and
`re_path`, nested routers included), matching paths the way `URLRouter` itself does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from channels.routing import URLRouter
from django.urls.resolvers import RegexPattern

# Attributes by which ASGI middleware keeps the application it wraps.
WRAPPED_ATTRIBUTES = ("inner", "app", "application")
# Deeper than any real stack of routers and middleware; guards against cycles.
MAX_DEPTH = 64
# Routes looked at in one walk, at most (a router can reach itself more than once).
MAX_VISITS = 10_000
_REGEX_SYNTAX = re.compile(r"(?<!\\)[.^$*+?{}\[\]|()]")


@dataclass(frozen=True)
class ConsumerRoute:
    """One route to a consumer: the path before the consumer's own pattern and what it passes through."""

    mount: str
    wrappers: tuple[type, ...]


def _wrapped(app: object) -> object | None:
    for name in WRAPPED_ATTRIBUTES:
        try:
            inner: object = getattr(app, name, None)
        except Exception:  # a property of someone else's middleware: nothing to walk
            inner = None
        if inner is not None and inner is not app:
            return inner
    return None


def _is_endpoint(app: object) -> bool:
    return isinstance(app, URLRouter) or hasattr(app, "consumer_class") or hasattr(app, "application_mapping")


def unwrap(app: object) -> tuple[object, tuple[type, ...]]:
    """The router or consumer inside middleware wrappers, and the wrappers' types, outermost first."""
    wrappers: list[type] = []
    for _ in range(MAX_DEPTH):
        if _is_endpoint(app):
            break
        inner = _wrapped(app)
        if inner is None:
            break
        wrappers.append(type(app))
        app = inner
    return app, tuple(wrappers)


def websocket_application(application: object) -> tuple[object | None, tuple[type, ...]]:
    """The application that serves websockets (its "websocket" entry), or None when there is none.

    An application that is not a ProtocolTypeRouter is taken as serving every protocol itself.
    """
    app, wrappers = unwrap(application)
    mapping = getattr(app, "application_mapping", None)
    if mapping is None:
        return app, wrappers
    if "websocket" not in mapping:
        return None, wrappers
    inner, more = unwrap(mapping["websocket"])
    return inner, wrappers + more


def _pattern_text(pattern: Any) -> str:
    """A route's pattern as a path: `path()` routes as written, plain `re_path()` regexes unescaped."""
    text = str(pattern)
    if not isinstance(pattern, RegexPattern):
        return text
    body = text.removeprefix("^").removesuffix("$")
    if _REGEX_SYNTAX.search(body):
        return body  # a real regex: shown as written
    return re.sub(r"\\(.)", r"\1", body)


def consumer_routes(application: object, consumer: type) -> list[ConsumerRoute]:
    """Every route by which the application's websocket side reaches `consumer` (or a subclass).

    Each router is walked once (a router that routes to itself, directly or not, is not walked again),
    and at most MAX_VISITS routes are looked at in all."""
    app, wrappers = websocket_application(application)
    found: list[ConsumerRoute] = []
    _collect(app, consumer, "", wrappers, found, 0, set())
    return found


def _collect(
    app: object,
    consumer: type,
    prefix: str,
    wrappers: tuple[type, ...],
    found: list[ConsumerRoute],
    depth: int,
    seen: set[int],
) -> None:
    if depth > MAX_DEPTH or len(seen) > MAX_VISITS:
        return
    app, more = unwrap(app)
    wrappers += more
    consumer_class = getattr(app, "consumer_class", None)
    if isinstance(consumer_class, type) and issubclass(consumer_class, consumer):
        found.append(ConsumerRoute(prefix, wrappers))
    elif isinstance(app, URLRouter) and id(app) not in seen:
        seen.add(id(app))
        for route in app.routes:
            _collect(
                route.callback,
                consumer,
                prefix + _pattern_text(route.pattern),
                wrappers,
                found,
                depth + 1,
                seen,
            )


def routed_consumer(application: object, path: str) -> type | None:
    """The consumer class a websocket opened at `path` (relative to the root, e.g. "ops/ws/") reaches."""
    app, _ = websocket_application(application)
    return _route(app, path, 0, [0])


def _route(app: object, path: str, depth: int, visits: list[int]) -> type | None:
    visits[0] += 1
    if depth > MAX_DEPTH or visits[0] > MAX_VISITS:
        return None
    app, _ = unwrap(app)
    consumer_class = getattr(app, "consumer_class", None)
    if isinstance(consumer_class, type):
        return consumer_class
    if not isinstance(app, URLRouter):
        return None
    path = path.lstrip("/")
    for route in app.routes:
        match = route.pattern.match(path)
        if match:
            reached = _route(route.callback, match[0], depth + 1, visits)
            if reached is not None:
                return reached
    return None
