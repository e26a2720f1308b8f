"""The one settings dict, `BULLMQ_DASHBOARD`, merged over defaults and cached until settings change."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from queues.connections import ConnectionSettings
from queues.events import WatcherOptions
from queues.jobs import ReadLimits
from queues.search import SearchLimits

# The library's own defaults (queues/): the settings below take theirs from these, never repeat them.
_LIMITS = ReadLimits()
_WATCHER = WatcherOptions()
_CONNECTION = ConnectionSettings(alias="", url="")
_SEARCH = SearchLimits()

DEFAULTS: dict[str, Any] = {
    # Named Redis connections: {"alias": {"URL": ..., "PREFIXES": [...], "QUEUES": [...]}}.
    "CONNECTIONS": {"default": {"URL": "redis://127.0.0.1:6379/0"}},
    # Seconds between background SCANs that find new queues.
    "DISCOVERY_INTERVAL": 30,
    # The overview counts and shows at most this many queues (the filter, `?q=`, finds the others).
    "OVERVIEW_MAX_QUEUES": 1000,
    # The overview's rows a page (each read and followed live); the queues its census reads a second
    # in the background while the overview is viewed (ordering, filters and totals span every queue,
    # from the census: dashboard/census.py; 0: none, the census then holds what views read); the rows
    # the census never read that a view reads itself.
    "OVERVIEW_PAGE_SIZE": 50,
    "OVERVIEW_CENSUS_RATE": 5,
    "OVERVIEW_CENSUS_READS": 250,
    # The sizes the lists' selector offers; `per_page` takes any size from 1 to MAX_PAGE_SIZE.
    "PAGE_SIZES": [10, 25, 50, 100],
    "DEFAULT_PAGE_SIZE": 25,
    "MAX_PAGE_SIZE": 200,
    # Values longer than this many bytes are cut inside Redis and shown with their size.
    "DISPLAY_LIMIT": _LIMITS.display_bytes,
    "LOG_PAGE_SIZE": _LIMITS.log_page_size,
    "MAX_CHILDREN": _LIMITS.max_children,
    # Error groups (dashboard/error_groups.py): the newest SCAN_LIMIT failed jobs of a queue are grouped,
    # kept while its failed set is unchanged and at most CACHE_SECONDS; the all-queues page groups the
    # MAX_QUEUES queues with most failures, the overview the OVERVIEW_QUEUES first of those, each
    # from its newest OVERVIEW_SCAN_LIMIT failures.
    "ERROR_GROUPS": {
        "SCAN_LIMIT": 10_000,
        "CACHE_SECONDS": 30,
        "MAX_QUEUES": 20,
        "OVERVIEW_QUEUES": 3,
        "OVERVIEW_SCAN_LIMIT": 1000,
    },
    # Bearer token that lets a Prometheus scraper read `<mount>/metrics` without logging in; None: only
    # logged-in users who may view the dashboard read it.
    "METRICS_TOKEN": None,
    # The Prometheus scrape exports at most this many queues (one pipelined read of all of them).
    "METRICS_MAX_QUEUES": 10_000,
    # Alerts (dashboard/alerts.py, docs/alerts.md): RULES is a list of {"QUEUES": [patterns], "BACKLOG": n,
    # "OLDEST_WAITING": "10m", "FAILURE_RATE": 0.2, "MIN_FINISHED": n, "WINDOW": "10m", "NO_WORKERS": "5m",
    # "STALLED": n, "FOR": "1m", and the health verdict's "PAUSED", "RATE_LIMITED", "AT_CAPACITY", "STUCK":
    # True}; evaluated every INTERVAL in the web process, each transition audited
    # and posted to WEBHOOK_URL (Slack-compatible JSON) when set; EVALUATE False in processes that
    # should only show them.
    "ALERTS": {
        "RULES": [],
        "INTERVAL": 30,
        "WEBHOOK_URL": None,
        "WEBHOOK_TIMEOUT": 5,
        "BASE_URL": "",
        "EVALUATE": True,
    },
    # The health verdict of each queue (queues/health.py, dashboard/health.py, docs/health.md): the events
    # WINDOW of STALLED / DEDUPLICATED (counts; None: not checked) and "no job finished"; a job next in
    # line waiting OLDEST_WAITING makes a queue degraded (None: not checked); jobs waiting with no worker
    # for NO_WORKERS, held by the rate limiter for RATE_LIMITED more, or at the global concurrency cap
    # for AT_CAPACITY with nothing finished, make it stuck. A verdict's inputs are kept CACHE_SECONDS
    # (judged again with fresh counts meanwhile); CHILD_PARENTS parents of waiting-children (CHILD_KEYS
    # children each) tell which queues they wait on.
    "HEALTH": {
        "WINDOW": "10m",
        "OLDEST_WAITING": "10m",
        "STALLED": 1,
        "DEDUPLICATED": 1,
        "NO_WORKERS": "1m",
        "RATE_LIMITED": "5m",
        "AT_CAPACITY": "10m",
        "CACHE_SECONDS": 15,
        "CHILD_PARENTS": 5,
        "CHILD_KEYS": 3,
    },
    # The dashboard's own Redis keys (its throughput samples) start with `<KEY_PREFIX>:`; no braces, so
    # that a queue prefix's {hash tag} keeps a queue's samples in its cluster slot (check E012).
    "KEY_PREFIX": "bullmq-dashboard",
    # Throughput charts (queues/throughput.py, dashboard/throughput.py): queues whose workers do not
    # record BullMQ's metrics are sampled once a minute by the web process when SAMPLING is on (never
    # with READ_ONLY), at most MAX_SAMPLED_QUEUES of them (a week of minutes is about 220 KB of Redis
    # each); processing and wait time percentiles are over the newest RECENT_JOBS completed jobs.
    "THROUGHPUT": {"SAMPLING": True, "MAX_SAMPLED_QUEUES": 200, "RECENT_JOBS": 200},
    # Dotted path of a callable (user, action, queue) -> bool deciding every view and action.
    "PERMISSION": "dashboard.permissions.default_permission",
    "READ_ONLY": False,
    "READ_ONLY_QUEUES": [],
    # Job search (queues/search.py): one request reads at most MAX_SCAN jobs, BATCH per Redis call,
    # never a name / data / failed reason over MAX_FIELD_BYTES, and returns at most MAX_RESULTS matches.
    "SEARCH": {
        "MAX_SCAN": _SEARCH.max_scan,
        "BATCH": _SEARCH.batch,
        "MAX_FIELD_BYTES": _SEARCH.max_field_bytes,
        "MAX_RESULTS": _SEARCH.max_results,
    },
    "SOCKET_TIMEOUT": _CONNECTION.socket_timeout,
    "CONNECT_TIMEOUT": _CONNECTION.connect_timeout,
    # Connections per Redis per process, for reads and for writes each; a request waits at most
    # CONNECT_TIMEOUT for a free one, then gets a "busy" answer.
    "MAX_CONNECTIONS": _CONNECTION.max_connections,
    # The template the pages extend: the app's own page frame, or the host project's base template,
    # which must define the blocks `title`, `extra_head` (inside <head>) and `content`.
    "BASE_TEMPLATE": "bullmq_dashboard/base.html",
    # Where the pages' "Log out" button posts: a URL name or path; None shows no button.
    "LOGOUT_URL": "logout",
    # Live updates over websockets (see dashboard/live/): one events watcher per process.
    "LIVE": {
        "ENABLED": True,
        # Watched jobs are re-read at most once per this many seconds; a queue's counts at most once
        # per COUNT_INTERVAL (never less often than REFRESH_INTERVAL).
        "REFRESH_INTERVAL": _WATCHER.interval,
        "COUNT_INTERVAL": _WATCHER.count_interval,
        # At most this many queues' event streams are tailed per process.
        "MAX_QUEUES": _WATCHER.max_queues,
        # Viewed queues are re-counted this often even without events (heals trimmed or missed events).
        "RESYNC_INTERVAL": _WATCHER.resync_interval,
        # While the socket is down, pages poll their live parts this often (seconds).
        "POLL_INTERVAL": 5.0,
        # An open socket re-checks its session and view permission this often (seconds).
        "RECHECK_INTERVAL": 15.0,
        # Sockets one user may have open in one process; more are refused (close code 4429).
        "MAX_SOCKETS_PER_USER": 30,
    },
}

# Path segments the app's own URLs use; a connection alias may not take one of them.
RESERVED_ALIASES = frozenset({"api", "audit", "ws", "static", "operations"})


@dataclass(frozen=True)
class LiveSettings:
    """`BULLMQ_DASHBOARD["LIVE"]`: websocket live updates (defaults in DEFAULTS["LIVE"])."""

    enabled: bool
    refresh_interval: float
    count_interval: float
    max_queues: int
    resync_interval: float
    poll_interval: float
    recheck_interval: float
    max_sockets_per_user: int


@dataclass(frozen=True)
class DashboardConfig:
    """The validated, typed view of `BULLMQ_DASHBOARD` (defaults in DEFAULTS)."""

    raw: dict[str, Any] = field(repr=False)  # the connections' URLs and options: passwords
    connections: dict[str, ConnectionSettings]
    discovery_interval: float
    overview_max_queues: int
    overview_page_size: int
    census_rate: int
    census_reads: int
    metrics_max_queues: int
    page_sizes: tuple[int, ...]
    default_page_size: int
    max_page_size: int
    limits: ReadLimits
    permission: str
    read_only: bool
    read_only_queues: frozenset[str]
    base_template: str
    logout_url: str | None
    live: LiveSettings


def merged_settings() -> dict[str, Any]:
    """`BULLMQ_DASHBOARD` over DEFAULTS; a value that is not a dict counts as unset (check E009 says so)."""
    given = getattr(settings, "BULLMQ_DASHBOARD", None)
    return {**DEFAULTS, **(given if isinstance(given, dict) else {})}


def names(value: Any) -> tuple[str, ...]:
    """A list setting of names (queues, prefixes). A lone string is one name, never its characters: a
    READ_ONLY_QUEUES = "bull:payments" must protect that queue (check W010 asks for a list)."""
    if not value:
        return ()
    if isinstance(value, str):
        value = [value]
    return tuple(str(item) for item in value)


@cache
def get_config() -> DashboardConfig:
    """The merged configuration; cleared when a test or signal changes `BULLMQ_DASHBOARD`."""
    raw = merged_settings()
    connections = {
        alias: connection_settings(alias, options, raw) for alias, options in dict(raw["CONNECTIONS"]).items()
    }
    page_sizes = tuple(int(size) for size in raw["PAGE_SIZES"])
    return DashboardConfig(
        raw=raw,
        connections=connections,
        discovery_interval=float(raw["DISCOVERY_INTERVAL"]),
        overview_max_queues=max(1, int(raw["OVERVIEW_MAX_QUEUES"])),
        overview_page_size=max(1, int(raw["OVERVIEW_PAGE_SIZE"])),
        census_rate=max(0, int(raw["OVERVIEW_CENSUS_RATE"])),
        census_reads=max(0, int(raw["OVERVIEW_CENSUS_READS"])),
        metrics_max_queues=max(1, int(raw["METRICS_MAX_QUEUES"])),
        page_sizes=page_sizes,
        default_page_size=int(raw["DEFAULT_PAGE_SIZE"]),
        max_page_size=max(1, int(raw["MAX_PAGE_SIZE"])),
        limits=ReadLimits(
            display_bytes=int(raw["DISPLAY_LIMIT"]),
            log_page_size=int(raw["LOG_PAGE_SIZE"]),
            max_children=int(raw["MAX_CHILDREN"]),
        ),
        permission=str(raw["PERMISSION"]),
        read_only=bool(raw["READ_ONLY"]),
        read_only_queues=frozenset(names(raw["READ_ONLY_QUEUES"])),
        base_template=str(raw["BASE_TEMPLATE"]),
        logout_url=str(raw["LOGOUT_URL"]) if raw["LOGOUT_URL"] else None,
        live=live_settings(raw),
    )


def live_settings(raw: dict[str, Any]) -> LiveSettings:
    """LiveSettings from the LIVE entry, merged key by key over the defaults."""
    live = {**DEFAULTS["LIVE"], **dict(raw.get("LIVE") or {})}
    return LiveSettings(
        enabled=bool(live["ENABLED"]),
        refresh_interval=max(0.05, float(live["REFRESH_INTERVAL"])),
        count_interval=max(0.05, float(live["COUNT_INTERVAL"])),
        max_queues=max(1, int(live["MAX_QUEUES"])),
        resync_interval=max(0.1, float(live["RESYNC_INTERVAL"])),
        poll_interval=max(1.0, float(live["POLL_INTERVAL"])),
        recheck_interval=max(0.1, float(live["RECHECK_INTERVAL"])),
        max_sockets_per_user=max(1, int(live["MAX_SOCKETS_PER_USER"])),
    )


def connection_settings(alias: str, options: Any, raw: dict[str, Any]) -> ConnectionSettings:
    """ConnectionSettings from one CONNECTIONS entry (a dict, or just a URL string)."""
    if isinstance(options, str):
        options = {"URL": options}
    return ConnectionSettings(
        alias=alias,
        url=str(options["URL"]),
        prefixes=names(options.get("PREFIXES")),
        queues=names(options.get("QUEUES")),
        socket_timeout=float(options.get("SOCKET_TIMEOUT", raw["SOCKET_TIMEOUT"])),
        connect_timeout=float(options.get("CONNECT_TIMEOUT", raw["CONNECT_TIMEOUT"])),
        max_connections=max(1, int(options.get("MAX_CONNECTIONS", raw["MAX_CONNECTIONS"]))),
        options=dict(options.get("OPTIONS") or {}),
        cluster=bool(options.get("CLUSTER", False)),
        # Queues under the dashboard's own KEY_PREFIX are not its queues (their keys could be samples).
        reserved_prefix=raw["KEY_PREFIX"] if isinstance(raw.get("KEY_PREFIX"), str) else "",
    )


@receiver(setting_changed)
def _reset_config(*, setting: str, **kwargs: Any) -> None:
    if setting == "BULLMQ_DASHBOARD":
        get_config.cache_clear()
