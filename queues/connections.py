"""Redis clients per connection alias, one pool per event loop, and their settings."""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterError, NoScriptError, RedisClusterException, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError

from queues.messages import gettext_lazy
from queues.models import QueueRef


@dataclass(frozen=True)
class ConnectionSettings:
    """Where one named Redis is and which of its queues the dashboard shows."""

    alias: str
    url: str = field(repr=False)  # may hold a password: see safe_url
    # Discovery only looks under these prefixes when given (`bull`, `{tenant-a}` ...).
    prefixes: tuple[str, ...] = ()
    # An explicit list of `<prefix>:<name>` replaces discovery altogether.
    queues: tuple[str, ...] = ()
    # The dashboard's own key prefix (its throughput samples): a queue whose prefix is it or lies under
    # it is no queue of the dashboard's (its job keys could be sample keys).
    reserved_prefix: str = ""
    socket_timeout: float = 5.0
    connect_timeout: float = 2.0
    max_connections: int = 20
    # A Redis Cluster: `url` names one node (a seed); the client finds the others and follows MOVED/ASK.
    cluster: bool = False
    # May hold a password (`password`, `ssl_password`): kept out of the repr, as the URL is.
    options: dict[str, object] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @property
    def client_options(self) -> dict[str, Any]:
        """OPTIONS for redis-py, with RESP2: the replies every reader here parses (redis-py 8.2 speaks
        RESP3 unless told, which changes the shapes of XREAD's and other replies, and sends a HELLO that
        proxies and older servers refuse)."""
        return {**self.options, "protocol": 2}

    @property
    def safe_url(self) -> str:
        """The URL with any password replaced, for display and logs."""
        return redacted_url(self.url)

    def explicit_queues(self) -> list[QueueRef]:
        """The configured queue list as QueueRefs."""
        return [QueueRef.from_key(self.alias, key) for key in self.queues]


# A password in the query (`?password=`, redis-py's `ssl_password=` of an encrypted key). The name may be
# percent-encoded (`?%70assword=`): redis-py decodes names as well as values.
QUERY_PASSWORD = re.compile(r"((?:^|[&;])((?:[\w.-]|%[0-9A-Fa-f]{2})*)=)[^&;#]*")
PASSWORD_NAMES = ("password", "passwd", "pwd")


def _masked_parameter(match: re.Match[str]) -> str:
    if unquote(match[2]).lower().endswith(PASSWORD_NAMES):
        return f"{match[1]}***"
    return match[0]


def redacted_url(url: str) -> str:
    """A Redis URL without its password (of its user info or its query)."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        # Up to the last `@`, not as urlsplit reads it: an unencoded `/`, `?` or `#` in a password ends
        # urlsplit's user info early and leaves the password in the path, query or fragment. An `@` in
        # the query then masks more than the password, never less.
        user_info, _, tail = rest.rpartition("@")
        name, colon, _ = user_info.partition(":")
        if colon:
            url = f"{scheme}://{name}:***@{tail}"
    parts = urlsplit(url)
    query = QUERY_PASSWORD.sub(_masked_parameter, parts.query)
    if parts.password is None and query == parts.query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class PoolBusy(RedisError):
    """Every connection of the dashboard's pool for this Redis is in use: the dashboard is busy, Redis
    may be fine. Raised after a bounded wait instead of opening more connections."""


class BoundedPool(BlockingConnectionPool):
    """A connection pool that waits a bounded time for a free connection, then raises PoolBusy."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A free connection, or PoolBusy after `timeout` seconds."""
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, asyncio.TimeoutError | TimeoutError):
                message = gettext_lazy(
                    "All %(count)d of the dashboard's connections to this Redis are in use;"
                    " try again in a moment.",
                    count=self.max_connections,
                )
                raise PoolBusy(message) from exc
            raise


# redis.asyncio pools belong to the loop that created them; daphne has one loop, tests have many.
_Clients = dict[tuple[ConnectionSettings, bool], Redis]
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Clients] = weakref.WeakKeyDictionary()


class ScriptReloading:
    """A client that loads a script again on every NOSCRIPT, up to SCRIPT_RELOADS times.

    redis-py (and so the bullmq package) loads a script once after NOSCRIPT; a SCRIPT FLUSH between
    that load and the call reached the user as an error. NOSCRIPT means the script did not run, so
    calling it again can never repeat a write. (On a cluster, SCRIPT LOAD goes to every primary.)"""

    SCRIPT_RELOADS = 3

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._script_sources: dict[str, Any] = {}

    async def script_load(self, script: Any) -> Any:
        """SCRIPT LOAD, remembering the source by its SHA1 for evalsha's reloads."""
        sha = await super().script_load(script)  # type: ignore[misc]
        self._script_sources[sha.decode() if isinstance(sha, bytes) else str(sha)] = script
        return sha

    def script_source(self, sha: str) -> Any:
        """The source SCRIPT LOAD was given for this SHA1 (None when this client never loaded it)."""
        return self._script_sources.get(sha)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """EVALSHA; on NOSCRIPT the script is loaded again (when its source is known) and called again."""
        for reload in range(self.SCRIPT_RELOADS + 1):
            try:
                return await super().evalsha(sha, numkeys, *keys_and_args)  # type: ignore[misc]
            except NoScriptError:
                source = self._script_sources.get(sha)
                if source is None or reload == self.SCRIPT_RELOADS:
                    raise
                await self.script_load(source)
        raise AssertionError("unreachable")


class ScriptReloadingRedis(ScriptReloading, Redis):  # type: ignore[misc]
    """A client of one Redis server that loads scripts again on NOSCRIPT."""


class ScriptReloadingCluster(ScriptReloading, RedisCluster):  # type: ignore[misc]
    """A Redis Cluster client that loads scripts again on NOSCRIPT, and raises its own failures (no node
    reachable, a slot no node serves) as a RedisError: redis-py's RedisClusterException is none, and every
    reader and writer of the dashboard answers RedisErrors per connection or queue."""

    async def initialize(self, *args: Any, **kwargs: Any) -> Any:
        """Find the cluster's nodes and slots (again after MOVED or a failover)."""
        with _cluster_errors():
            return await super().initialize(*args, **kwargs)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """One command, on the node of its key's slot."""
        with _cluster_errors():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        """A pipeline (a MULTI when `transaction`: its keys must share one slot) raising RedisErrors."""
        if shard_hint:
            raise ClusterError("shard_hint is not supported on a cluster")
        return _ClusterPipeline(self, transaction)  # type: ignore[abstract]


class _ClusterPipeline(ClusterPipeline):
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        with _cluster_errors():
            return await super().execute(*args, **kwargs)


@contextlib.contextmanager
def _cluster_errors() -> Iterator[None]:
    try:
        yield
    except RedisClusterException as exc:
        raise ClusterError(str(exc) or type(exc).__name__) from exc


def _new_client(settings: ConnectionSettings, *, writes: bool) -> Redis:
    # Reads may be repeated once after a dropped connection (a restarted Redis); writes never are:
    # a write whose answer was lost may have run, and running it again could add a job twice.
    retries = 0 if writes else 1
    retry = Retry(NoBackoff(), retries, supported_errors=(RedisConnectionError,))
    if settings.cluster:
        return _new_cluster_client(settings, writes=writes, retry=retry)
    pool = BoundedPool.from_url(
        settings.url,
        decode_responses=writes,  # the bullmq package reads its replies as str
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.connect_timeout,
        max_connections=settings.max_connections,
        timeout=settings.connect_timeout,  # the pool's wait for a free connection
        health_check_interval=30,
        client_name="bullmq-dashboard-writer" if writes else "bullmq-dashboard",
        retry=retry,
        **settings.client_options,
    )
    return ScriptReloadingRedis.from_pool(pool)


def _new_cluster_client(settings: ConnectionSettings, *, writes: bool, retry: Retry) -> Redis:
    # A cluster client keeps a pool per node (max_connections each) and has no bounded wait for a free
    # connection: a full pool raises MaxConnectionsError at once (answered as PoolBusy's "busy").
    # MOVED and ASK are followed by the client itself, for reads and writes alike: a redirected command
    # did not run. Typed as Redis: the commands the dashboard sends are the same.
    cluster = ScriptReloadingCluster.from_url(
        settings.url,
        decode_responses=writes,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.connect_timeout,
        max_connections=settings.max_connections,
        health_check_interval=30,
        client_name="bullmq-dashboard-writer" if writes else "bullmq-dashboard",
        retry=retry,
        **settings.client_options,
    )
    return cast(Redis, cluster)


def is_cluster(client: object) -> bool:
    """True for a Redis Cluster client (or one of its pipelines)."""
    return isinstance(client, RedisCluster | ClusterPipeline)


def slot_groups(client: object, keys: list[str]) -> list[list[str]]:
    """The keys in groups one multi-key command may name: all of them on one Redis; one group per hash
    slot on a cluster (a command naming keys of two slots is refused, CROSSSLOT, even on one node)."""
    if not isinstance(client, RedisCluster):
        return [keys] if keys else []
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(client.keyslot(key), []).append(key)
    return list(groups.values())


def client_for(settings: ConnectionSettings) -> Redis:
    """The shared read client of this alias on the running loop (created on first use)."""
    return _shared(settings, writes=False)


def writer_client_for(settings: ConnectionSettings) -> Redis:
    """The shared write client of this alias on the running loop: the same URL, timeouts, TLS and ACL
    options as reads, replies decoded as the bullmq package expects, and no retries."""
    return _shared(settings, writes=True)


def _shared(settings: ConnectionSettings, *, writes: bool) -> Redis:
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get((settings, writes))
    if client is None:
        client = per_loop[(settings, writes)] = _new_client(settings, writes=writes)
    return client


async def close_clients() -> None:
    """Close every client of the running loop (tests and shutdown)."""
    loop = asyncio.get_running_loop()
    for client in _clients.pop(loop, {}).values():
        await client.aclose()
