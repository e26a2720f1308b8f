"""System checks that explain a wrong setting or a missing prerequisite in words a host developer understands.

IDs (each has a test in tests/unit/test_settings_and_checks.py or tests/unit/test_prerequisite_checks.py):

Errors, the dashboard cannot work as configured:
- bullmq_dashboard.E001 `CONNECTIONS` missing or malformed (not a dict, empty, or an entry without a URL).
- bullmq_dashboard.E002 a connection alias that cannot be a URL segment (reserved, empty, or with `/`).
- bullmq_dashboard.E003 a Redis URL that cannot be used: a scheme other than redis://, rediss://, unix://;
  a port that is not a number from 0 to 65535; a database that is not a number (redis-py would silently
  use database 0 for `redis://host/queues`); no host (redis://, rediss://) or no socket path (unix://).
- bullmq_dashboard.E004 `PERMISSION` cannot be imported.
- bullmq_dashboard.E005 `DEFAULT_PAGE_SIZE` not among `PAGE_SIZES`, or a page size over `MAX_PAGE_SIZE`.
- bullmq_dashboard.E006 a queue in a connection's `QUEUES` not written `<prefix>:<name>`.
- bullmq_dashboard.E007 `django_htmx.middleware.HtmxMiddleware` (or a subclass) missing from `MIDDLEWARE`:
  htmx requests would get whole pages instead of the parts they swap.
- bullmq_dashboard.E008 live updates on (`LIVE["ENABLED"]`) but the `channels` package is not installed.
- bullmq_dashboard.E009 `BULLMQ_DASHBOARD` is not a dict, or holds a value of the wrong type (a number
  that is not one, `PAGE_SIZES` that is not a list of numbers, `LIVE` that is not a dict).
- bullmq_dashboard.E010 `BASE_TEMPLATE` cannot be loaded (dashboard.template_checks).
- bullmq_dashboard.E011 `ALERTS` cannot be read: not a dict, a rule with an unknown key or a value that
  is no number, ratio or duration, or a `WEBHOOK_URL` that is not http(s) (dashboard.alerts).
- bullmq_dashboard.E012 `KEY_PREFIX` is not a plain non-empty string (braces would move the throughput
  samples out of their queue's cluster slot) or overlaps a configured queue prefix (sample keys could
  be a queue's keys), or `THROUGHPUT` is not a dict of a bool `SAMPLING` and the whole numbers it
  takes (dashboard.throughput). Until it is fixed nothing is sampled.
- bullmq_dashboard.E013 `HEALTH` cannot be read: not a dict, an unknown key, a duration out of range
  (`WINDOW` 1 minute to a day, `CACHE_SECONDS` at most 5 minutes), a count that is not a whole number
  of at least 1, or a sample size (`CHILD_PARENTS`, `CHILD_KEYS`) over 20 (dashboard.health).
- bullmq_dashboard.E014 a connection's TLS settings cannot work: `OPTIONS` that is not a dict, TLS
  options (`ssl_…`, in `OPTIONS` or the URL's query) on a `redis://` or `unix://` URL (redis-py would
  refuse every connection; TLS needs `rediss://`), or a certificate, key or CA file that cannot be read.
  The message names the option and the file, never the URL.

Warnings, something will not work the way the host expects:
- bullmq_dashboard.W001 live updates on but `CHANNEL_LAYERS` has no "default" layer: every socket is
  refused and the pages poll instead.
- bullmq_dashboard.W002 live updates on but `ASGI_APPLICATION` is not set, cannot be imported, or its
  routers fail while being read (a converter that queries a table `migrate` has not made yet).
- bullmq_dashboard.W003 the `ASGI_APPLICATION` does not route the dashboard's websockets at all.
- bullmq_dashboard.W004 it routes them, but under another mount than the pages (pages at `/ops/queues/`
  open their sockets at `/ops/queues/ws/`).
- bullmq_dashboard.W005 `LOGIN_URL` is a URL name that does not reverse or a path no view answers:
  anonymous visitors would be sent to an error page instead of a login form.
- bullmq_dashboard.W006 `BULLMQ_DASHBOARD["LOGOUT_URL"]` does not reverse or resolve.
- bullmq_dashboard.W007 a key of `BULLMQ_DASHBOARD`, of its `LIVE` dict or of a connection dict that the
  dashboard does not read (a typo, usually), so it has no effect; the message suggests the key
  meant.
- bullmq_dashboard.W008 the app's URLs are not included (`reverse("bullmq_dashboard:overview")` fails).
- bullmq_dashboard.W009 the websocket routes are not inside channels' `AuthMiddleware`
  (`AuthMiddlewareStack`): sockets have no user, and every one is refused as anonymous.
- bullmq_dashboard.W010 a list of names (`READ_ONLY_QUEUES`, a connection's `PREFIXES` or `QUEUES`)
  given as one string; it is read as that one name, never as its characters.
- bullmq_dashboard.W011 `BASE_TEMPLATE` lacks one of the blocks the pages fill: title, extra_head, content
  (dashboard.template_checks).

The websocket checks (W002-W004, W009) import `ASGI_APPLICATION` and read its routers without calling
them (dashboard.asgi_routes); an application they cannot see through can be vouched for with
`SILENCED_SYSTEM_CHECKS`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import NoReverseMatch, Resolver404, get_script_prefix, resolve, reverse
from django.utils.module_loading import import_string

from dashboard.conf import DEFAULTS, RESERVED_ALIASES, get_config, merged_settings, names

HTMX_MIDDLEWARE = "django_htmx.middleware.HtmxMiddleware"
# The keys dashboard.conf.connection_settings reads from one CONNECTIONS entry.
CONNECTION_KEYS = frozenset(
    {
        "URL",
        "PREFIXES",
        "QUEUES",
        "SOCKET_TIMEOUT",
        "CONNECT_TIMEOUT",
        "MAX_CONNECTIONS",
        "OPTIONS",
        "CLUSTER",
    }
)
NAME_LISTS = ("PREFIXES", "QUEUES")
DISABLE_LIVE = 'or turn live updates off: BULLMQ_DASHBOARD["LIVE"] = {"ENABLED": False}.'


def _raw_settings() -> dict[str, Any]:
    return merged_settings()


def _live_enabled() -> bool:
    live = _raw_settings().get("LIVE")
    return bool({**DEFAULTS["LIVE"], **(live if isinstance(live, dict) else {})}["ENABLED"])


@register()
def check_dashboard_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate the BULLMQ_DASHBOARD dict."""
    given = getattr(settings, "BULLMQ_DASHBOARD", {})
    if not isinstance(given, dict):
        return [
            Error(
                f"BULLMQ_DASHBOARD must be a dict, not {type(given).__name__}.",
                hint='Write BULLMQ_DASHBOARD = {"CONNECTIONS": {"default": {"URL": "redis://host:6379/0"}}}.',
                id="bullmq_dashboard.E009",
            )
        ]
    raw = _raw_settings()
    errors: list[CheckMessage] = [*check_known_keys(raw), *check_name_lists(raw)]
    connections = raw.get("CONNECTIONS")
    if not isinstance(connections, dict) or not connections:
        return [
            *errors,
            Error(
                "BULLMQ_DASHBOARD['CONNECTIONS'] must be a non-empty dict of alias -> {'URL': ...}.",
                id="bullmq_dashboard.E001",
            ),
        ]
    for alias, options in connections.items():
        errors.extend(check_connection(alias, options))
    try:
        import_string(str(raw["PERMISSION"]))
    except (ImportError, ValueError, TypeError) as exc:  # ".x" is a ValueError, "..x" a TypeError
        errors.append(
            Error(
                f"BULLMQ_DASHBOARD['PERMISSION'] = {raw['PERMISSION']!r} cannot be imported: {exc}",
                hint="Give the dotted path of a callable (user, action, queue) -> bool.",
                id="bullmq_dashboard.E004",
            )
        )
    if any(message.is_serious() for message in errors):
        return errors  # the typed reading below would only fail on the same values again
    try:
        config = get_config()
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:  # inf is an OverflowError
        return [
            *errors,
            Error(
                f"BULLMQ_DASHBOARD holds a value of the wrong type ({type(exc).__name__}: {exc}).",
                hint="Numbers where the defaults have numbers (PAGE_SIZES is a list of numbers, "
                "LIVE a dict, OPTIONS a dict); see docs/settings.md.",
                id="bullmq_dashboard.E009",
            ),
        ]
    errors.extend(check_alerts())
    errors.extend(check_throughput(raw))
    errors.extend(check_health(raw))
    if config.default_page_size not in config.page_sizes:
        errors.append(
            Error(
                "BULLMQ_DASHBOARD['DEFAULT_PAGE_SIZE'] must be one of BULLMQ_DASHBOARD['PAGE_SIZES'].",
                id="bullmq_dashboard.E005",
            )
        )
    if any(size < 1 or size > config.max_page_size for size in config.page_sizes):
        errors.append(
            Error(
                "BULLMQ_DASHBOARD['PAGE_SIZES'] must be numbers from 1 to "
                f"BULLMQ_DASHBOARD['MAX_PAGE_SIZE'] ({config.max_page_size}).",
                id="bullmq_dashboard.E005",
            )
        )
    return errors


def check_connection(alias: object, options: object) -> list[CheckMessage]:
    """Problems of one CONNECTIONS entry."""
    errors: list[CheckMessage] = []
    if not isinstance(alias, str) or not alias or "/" in alias or alias in RESERVED_ALIASES:
        errors.append(
            Error(
                f"Connection alias {alias!r} cannot be used in URLs.",
                hint=f"Use a plain name other than {', '.join(sorted(RESERVED_ALIASES))}.",
                id="bullmq_dashboard.E002",
            )
        )
    url = options if isinstance(options, str) else options.get("URL") if isinstance(options, dict) else None
    if not isinstance(url, str):
        return [
            *errors,
            Error(
                f"Connection {alias!r} needs a 'URL' such as redis://host:6379/0.", id="bullmq_dashboard.E001"
            ),
        ]
    if isinstance(options, dict):
        errors.extend(unknown_keys(options, CONNECTION_KEYS, f"BULLMQ_DASHBOARD['CONNECTIONS'][{alias!r}]"))
    problem = redis_url_problem(url)
    if problem:
        errors.append(
            Error(
                f"The Redis URL of connection {alias!r} {problem}.",
                hint="Write it as redis://[user:password@]host[:port][/db], rediss://… for TLS, or "
                "unix://[user:password@]/path/to/redis.sock[?db=N].",
                id="bullmq_dashboard.E003",
            )
        )
    if not problem:
        errors.extend(check_tls(alias, url, options.get("OPTIONS") if isinstance(options, dict) else None))
    for setting in ("QUEUES", "PREFIXES"):
        value = options.get(setting) if isinstance(options, dict) else None
        if value is not None and not isinstance(value, str | list | tuple | set | frozenset):
            return [
                *errors,
                Error(
                    f"{setting} of connection {alias!r} must be a list of names, not {type(value).__name__}.",
                    id="bullmq_dashboard.E009",
                ),
            ]
    for key in names(options.get("QUEUES")) if isinstance(options, dict) else ():
        prefix, sep, name = str(key).rpartition(":")
        if not (sep and prefix and name):
            errors.append(
                Error(
                    f"Queue {key!r} of connection {alias!r} must be written '<prefix>:<name>'.",
                    id="bullmq_dashboard.E006",
                )
            )
    return errors


# redis-py's TLS options that name a file or directory it reads when it connects.
TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_ca_path")


def check_tls(alias: object, url: str, options: object) -> list[CheckMessage]:
    """E014 for TLS settings of one connection that cannot work (the URL itself is known to parse)."""
    if options is not None and not isinstance(options, dict):
        message = f"OPTIONS of connection {alias!r} must be a dict of redis-py keyword arguments."
        return [Error(message, id="bullmq_dashboard.E014")]
    given: dict[str, object] = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    given.update({str(name): value for name, value in (options or {}).items()})
    tls = sorted(name for name in given if name.startswith("ssl_"))
    if not tls:
        return []
    if urlsplit(url).scheme != "rediss":
        message = (
            f"Connection {alias!r} has TLS options ({', '.join(tls)}) but its URL is not rediss://: "
            "redis-py would refuse to connect."
        )
        hint = "Write the URL as rediss://host:port/db to connect with TLS, or drop the ssl_… options."
        return [Error(message, hint=hint, id="bullmq_dashboard.E014")]
    errors: list[CheckMessage] = []
    for name in TLS_FILES:
        path = given.get(name)
        if path is None:
            continue
        wanted = Path(str(path))
        readable = wanted.is_dir() if name == "ssl_ca_path" else wanted.is_file()
        if not readable or not os.access(wanted, os.R_OK):
            errors.append(
                Error(
                    f"The {name} of connection {alias!r}, {str(path)!r}, cannot be read.",
                    hint="Give a PEM file the server process may read (for ssl_ca_path: a directory).",
                    id="bullmq_dashboard.E014",
                )
            )
    return errors


def redis_url_problem(url: str) -> str | None:
    """What makes a Redis URL unusable (the end of a sentence), or None. Never repeats the URL (passwords)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        return "cannot be parsed as a URL"
    if parts.scheme not in {"redis", "rediss", "unix"}:
        return "has an unsupported scheme; use redis://, rediss:// or unix://"
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    db_values = parse_qs(parts.query).get("db")
    if db_values is not None and not db_values[0].isdigit():
        return f"has ?db={db_values[0]}, but a database is a number (0, 1, …)"
    if parts.scheme == "unix":
        return None if parts.path else "has no socket path (unix:///path/to/redis.sock)"
    if not parts.hostname:
        return "has no host"
    # redis-py reads the path as the database number and silently uses 0 when it is not one.
    db = unquote(parts.path).replace("/", "")
    if db_values is None and db and not db.isdigit():
        return f"names the database {db!r}, but a database is a number (redis://host:6379/0)"
    return None


def check_name_lists(raw: dict[str, Any]) -> Iterable[CheckMessage]:
    """W010 for a list of names given as one string (straight from an environment variable, usually)."""
    places: list[tuple[str, object]] = [("BULLMQ_DASHBOARD['READ_ONLY_QUEUES']", raw.get("READ_ONLY_QUEUES"))]
    connections = raw.get("CONNECTIONS")
    for alias, options in connections.items() if isinstance(connections, dict) else ():
        if isinstance(options, dict):
            places += [
                (f"BULLMQ_DASHBOARD['CONNECTIONS'][{alias!r}]['{key}']", options.get(key))
                for key in NAME_LISTS
            ]
    for where, value in places:
        if isinstance(value, str) and value:
            yield Warning(
                f"{where} is the string {value!r}; the dashboard reads it as that one name.",
                hint=f"Write a list: [{value!r}] (or split an environment variable: value.split(',')).",
                id="bullmq_dashboard.W010",
            )


def check_alerts() -> list[CheckMessage]:
    """E011 for ALERTS settings the evaluation could not read."""
    from dashboard.alerts import AlertSettingError, alert_settings

    try:
        problems = list(alert_settings().problems)
    except AlertSettingError as exc:
        problems = [str(exc)]
    return [
        Error(
            f"BULLMQ_DASHBOARD['ALERTS'] cannot be read: {problem}.",
            hint="See docs/alerts.md for the rules' keys and values.",
            id="bullmq_dashboard.E011",
        )
        for problem in problems
    ]


def check_throughput(raw: dict[str, Any]) -> list[CheckMessage]:
    """E012 for KEY_PREFIX and THROUGHPUT settings the throughput charts could not use."""
    from dashboard.throughput import ThroughputSettingError, parse_settings

    try:
        parse_settings(raw)
    except ThroughputSettingError as exc:
        return [
            Error(
                f"BULLMQ_DASHBOARD: {exc}.",
                hint='Leave them out for the defaults: KEY_PREFIX "bullmq-dashboard", THROUGHPUT '
                '{"SAMPLING": True, "MAX_SAMPLED_QUEUES": 200, "RECENT_JOBS": 200}.',
                id="bullmq_dashboard.E012",
            )
        ]
    return []


def check_health(raw: dict[str, Any]) -> list[CheckMessage]:
    """E013 for HEALTH settings the verdict could not use."""
    from dashboard.health import HealthSettingError, parse_settings

    try:
        parse_settings(raw)
    except HealthSettingError as exc:
        return [
            Error(
                f"BULLMQ_DASHBOARD: {exc}.",
                hint="Leave a key out for its default; see docs/health.md for the keys and their values.",
                id="bullmq_dashboard.E013",
            )
        ]
    return []


def check_known_keys(raw: dict[str, Any]) -> Iterable[CheckMessage]:
    """W007 for keys of BULLMQ_DASHBOARD and its LIVE and THROUGHPUT dicts that the dashboard does not
    read."""
    yield from unknown_keys(raw, DEFAULTS, "BULLMQ_DASHBOARD")
    live = raw.get("LIVE")
    if isinstance(live, dict):
        yield from unknown_keys(live, DEFAULTS["LIVE"], "BULLMQ_DASHBOARD['LIVE']")
    throughput = raw.get("THROUGHPUT")
    if isinstance(throughput, dict):
        yield from unknown_keys(throughput, DEFAULTS["THROUGHPUT"], "BULLMQ_DASHBOARD['THROUGHPUT']")


def unknown_keys(given: dict[Any, Any], known: Iterable[str], where: str) -> Iterable[CheckMessage]:
    """W007 for each key of `given` not in `known`, with the closest known key as a suggestion."""
    known = sorted(known)
    for key in given:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key).upper(), known, n=1, cutoff=0.6)
        hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(known)}."
        yield Warning(
            f"{where} has the key {key!r}, which the dashboard does not read, so it has no effect.",
            hint=hint,
            id="bullmq_dashboard.W007",
        )


@register()
def check_htmx_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E007: django-htmx's middleware, which tells the views an htmx request from a page load."""
    from django_htmx.middleware import HtmxMiddleware

    for dotted in settings.MIDDLEWARE:
        try:
            middleware = import_string(dotted)
        except ImportError:
            continue  # Django reports unimportable middleware itself
        if isinstance(middleware, type) and issubclass(middleware, HtmxMiddleware):
            return []
    return [
        Error(
            f"{HTMX_MIDDLEWARE} is not in MIDDLEWARE: the dashboard's htmx requests would get whole pages "
            "instead of the parts they swap.",
            hint=f'Add "{HTMX_MIDDLEWARE}" to MIDDLEWARE (anywhere after SessionMiddleware is fine).',
            id="bullmq_dashboard.E007",
        )
    ]


@register()
def check_live_prerequisites(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E008/W001: with live updates on, channels installed and a channel layer configured."""
    if not _live_enabled():
        return []
    if find_spec("channels") is None:
        return [
            Error(
                "Live updates are on but the channels package is not installed.",
                hint=f"pip install channels (and serve the project with an ASGI server such as daphne), "
                f"{DISABLE_LIVE}",
                id="bullmq_dashboard.E008",
            )
        ]
    layers = getattr(settings, "CHANNEL_LAYERS", None)
    if not isinstance(layers, dict) or "default" not in layers:
        return [
            Warning(
                "Live updates are on but CHANNEL_LAYERS has no 'default' layer: every live socket is "
                "refused and the pages fall back to polling.",
                hint='Set CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}} '
                "for one server process (channels_redis.core.RedisChannelLayer for several), "
                f"{DISABLE_LIVE}",
                id="bullmq_dashboard.W001",
            )
        ]
    return []


def dashboard_mount() -> str | None:
    """Where the host mounted the app's URLs, relative to the site root ("ops/queues/"), or None."""
    try:
        overview = reverse("bullmq_dashboard:overview")
    except NoReverseMatch:
        return None
    prefix = get_script_prefix()
    return overview[len(prefix) :] if overview.startswith(prefix) else overview.lstrip("/")


@register(Tags.urls)
def check_urls_included(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W008: the app's URLs are included in the project's URLconf."""
    if dashboard_mount() is not None:
        return []
    return [
        Warning(
            "The dashboard's URLs are not included in ROOT_URLCONF, so its pages cannot be reached.",
            hint='Add path("queues/", include("dashboard.urls")) to your urlpatterns (any mount works; keep '
            "the app's own namespace, bullmq_dashboard).",
            id="bullmq_dashboard.W008",
        )
    ]


def websocket_line(mount: str) -> str:
    """The asgi.py line that routes the dashboard's websockets for pages mounted at `mount`."""
    return f'URLRouter(websocket_urls("{mount}"))'


@register(Tags.urls)
def check_websocket_routes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W002-W004, W009: ASGI_APPLICATION routes the live sockets where the pages open them."""
    mount = dashboard_mount()
    if not _live_enabled() or find_spec("channels") is None or mount is None:
        return []  # E008 and W008 say what is missing first
    dotted = getattr(settings, "ASGI_APPLICATION", None)
    fix = f'"websocket": AllowedHostsOriginValidator(AuthMiddlewareStack({websocket_line(mount)}))'
    if not dotted:
        return [
            Warning(
                "Live updates are on but ASGI_APPLICATION is not set, so the dashboard cannot tell whether "
                "its websockets are routed.",
                hint=f'Set ASGI_APPLICATION = "yourproject.asgi.application" and route {fix} in it, '
                f"{DISABLE_LIVE}",
                id="bullmq_dashboard.W002",
            )
        ]
    try:
        application = import_string(dotted)
    except Exception as exc:  # anything the host's asgi.py raises while importing
        return [
            Warning(
                f"ASGI_APPLICATION = {dotted!r} cannot be imported ({type(exc).__name__}: {exc}).",
                hint=f"Point ASGI_APPLICATION at your asgi.py's application, {DISABLE_LIVE}",
                id="bullmq_dashboard.W002",
            )
        ]
    try:
        return _route_messages(application, dotted, mount, fix)
    except Exception as exc:  # a host router or converter that fails while being read, e.g. before migrate
        return [
            Warning(
                f"The routes of ASGI_APPLICATION = {dotted!r} cannot be read ({type(exc).__name__}: {exc}), "
                "so the dashboard cannot tell whether its websockets are routed.",
                hint="If they are, add 'bullmq_dashboard.W002' to SILENCED_SYSTEM_CHECKS; otherwise route "
                f"{fix}, {DISABLE_LIVE}",
                id="bullmq_dashboard.W002",
            )
        ]


def _route_messages(application: object, dotted: str, mount: str, fix: str) -> list[CheckMessage]:
    from channels.auth import AuthMiddleware

    from dashboard.asgi_routes import consumer_routes, routed_consumer
    from dashboard.consumers import OverviewConsumer

    expected = f"{mount}ws/"
    reached = routed_consumer(application, expected)
    routes = consumer_routes(application, OverviewConsumer)
    imports = (
        "from dashboard.routing import websocket_urls; from channels.routing import URLRouter "
        "(a shared constant for the mount keeps urls.py and asgi.py together)"
    )
    if reached is None or not issubclass(reached, OverviewConsumer):
        if not routes:
            return [
                Warning(
                    f"{dotted} does not route the dashboard's websockets; the pages at /{mount} open "
                    f"them at /{expected} and get no live updates.",
                    hint=f"In asgi.py: ProtocolTypeRouter({{..., {fix}}}), with {imports}; {DISABLE_LIVE} "
                    "(If they are routed in a way this check cannot read, add 'bullmq_dashboard.W003' to "
                    "SILENCED_SYSTEM_CHECKS.)",
                    id="bullmq_dashboard.W003",
                )
            ]
        where = ", ".join(f"/{route.mount}" for route in routes)
        return [
            Warning(
                f"{dotted} routes the dashboard's websockets at {where}, but its pages are at /{mount} and "
                f"open them at /{expected}.",
                hint=f"Mount them with the pages' mount: {websocket_line(mount)} in asgi.py.",
                id="bullmq_dashboard.W004",
            )
        ]
    at_mount = [route for route in routes if route.mount == expected] or routes
    if not any(issubclass(wrapper, AuthMiddleware) for route in at_mount for wrapper in route.wrappers):
        return [
            Warning(
                f"{dotted} routes the dashboard's websockets at /{expected} without channels' "
                "AuthMiddleware, so sockets have no user and every one is refused.",
                hint=f"Wrap them: {fix}, with from channels.auth import AuthMiddlewareStack.",
                id="bullmq_dashboard.W009",
            )
        ]
    return []


def unresolvable(target: str) -> str | None:
    """Why a URL name or path leads to no view of this project (the end of a sentence), or None."""
    try:
        reverse(target)
        return None
    except NoReverseMatch:
        pass
    try:
        parts = urlsplit(target)
    except ValueError:  # an unclosed IPv6 bracket
        return "cannot be parsed as a URL"
    if parts.scheme and parts.scheme not in ("http", "https"):
        return f"has the scheme {parts.scheme}:, which a browser does not post a form to safely"
    if parts.scheme or parts.netloc:
        return None  # another site (a single sign-on server): nothing to check here
    if not target.startswith("/"):
        return "is neither a URL name that reverses nor a path starting with /"
    path = parts.path
    prefix = get_script_prefix()
    if prefix != "/" and path.startswith(prefix):
        path = "/" + path[len(prefix) :]
    try:
        resolve(path)
    except Resolver404:
        return "is a path that no view of ROOT_URLCONF answers"
    return None


@register(Tags.urls)
def check_login_urls(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W005/W006: LOGIN_URL and BULLMQ_DASHBOARD["LOGOUT_URL"] lead to views."""
    messages: list[CheckMessage] = []
    login = str(settings.LOGIN_URL)
    problem = unresolvable(login)
    if problem:
        messages.append(
            Warning(
                f"LOGIN_URL = {login!r} {problem}; the dashboard sends visitors who are not logged in there.",
                hint='Set LOGIN_URL to your login view\'s URL name or path, e.g. LOGIN_URL = "login" with '
                'path("accounts/", include("django.contrib.auth.urls")) in your urlpatterns.',
                id="bullmq_dashboard.W005",
            )
        )
    logout = _raw_settings().get("LOGOUT_URL")
    problem = unresolvable(str(logout)) if logout else None
    if problem:
        messages.append(
            Warning(
                f"BULLMQ_DASHBOARD['LOGOUT_URL'] = {logout!r} {problem}; the pages' Log out button posts "
                "there.",
                hint="Give your logout view's URL name or path (it must accept POST, as Django's LogoutView "
                "does), or None to show no Log out button.",
                id="bullmq_dashboard.W006",
            )
        )
    return messages
