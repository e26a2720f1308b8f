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
from redis.exceptions import (
    ClusterCrossSlotError,
    ClusterError,
    CrossSlotTransactionError,
    MaxConnectionsError,
    NoScriptError,
    RedisClusterException,
    RedisClusterUnreachableError,
    RedisError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

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
        self.remember_script(sha, script)
        return sha

    def remember_script(self, sha: Any, script: Any) -> None:
        """Keep a script's source by its SHA1, for evalsha's reloads."""
        self._script_sources[sha.decode() if isinstance(sha, bytes) else str(sha)] = script

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

    # How long a command waits for a free connection of a node whose pool is full (redis-py's cluster
    # pools have no bounded wait of their own), and the pool's size (set by _new_cluster_client).
    pool_wait = 0.0
    pool_size = 0

    async def initialize(self, *args: Any, **kwargs: Any) -> Any:
        """Find the cluster's nodes and slots (again after MOVED or a failover)."""
        with _cluster_errors(self.pool_size):
            return await super().initialize(*args, **kwargs)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """One command, on the node of its key's slot; a script naming keys of several slots is refused
        (CROSSSLOT, as Redis itself would), and a full pool is waited for up to `pool_wait` seconds."""
        with _cluster_errors(self.pool_size):
            if _script_slots(self, args) > 1:
                raise ClusterCrossSlotError(ClusterCrossSlotError.message)
            if self.get_default_node() is None:
                # Nodes not known yet: redis-py would send a script to any node (its keys' slot unknown),
                # maybe one that is down, and a write gets no second try. Find the nodes first.
                await self.initialize()
            waited = 0.0
            while True:
                try:
                    return await super().execute_command(*args, **kwargs)
                except ClusterError as exc:
                    if str(exc) != REDIRECTS_EXHAUSTED:
                        raise
                    # Every attempt was redirected (MOVED, ASK) or refused (TRYAGAIN) while a slot moves:
                    # the command never ran, which a TryAgainError says (redis-py's own error says nothing).
                    raise TryAgainError(f"{exc} (the slot was moving between nodes)") from exc
                except MaxConnectionsError:
                    # No connection was taken, so nothing was sent: waiting and sending it then is
                    # exact, for writes too (BoundedPool waits the same way on a single Redis).
                    if waited >= self.pool_wait:
                        raise
                    await asyncio.sleep(POOL_POLL_SECONDS)
                    waited += POOL_POLL_SECONDS

    async def script_load(self, script: Any) -> Any:
        """SCRIPT LOAD on every primary that answers. A script runs on its keys' node only: a primary
        that is down (whose own queues cannot be read anyway) does not keep the other queues from their
        scripts. Raises when no primary answered, and on any error reply (an ACL refusal)."""
        primaries = self.get_primaries()
        if not primaries:  # nodes not known yet: redis-py finds them first
            return await super().script_load(script)
        answers = await asyncio.gather(
            *(self.execute_command("SCRIPT LOAD", script, target_nodes=node) for node in primaries),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, UNREACHABLE_NODE):
                raise answer
        loaded = [answer for answer in answers if not isinstance(answer, BaseException)]
        if not loaded:
            raise cast(BaseException, answers[0])
        self.remember_script(loaded[0], script)
        return loaded[0]

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        """A pipeline (a MULTI when `transaction`: its keys must share one slot) raising RedisErrors."""
        if shard_hint:
            raise ClusterError("shard_hint is not supported on a cluster")
        return _ClusterPipeline(self, transaction)  # type: ignore[abstract]


# redis-py's ClusterError once a command's redirections (MOVED, ASK, TRYAGAIN) used up its TTL.
REDIRECTS_EXHAUSTED = "TTL exhausted."
# A node that could not be reached (or answered too late): the other nodes' work goes on without it.
UNREACHABLE_NODE = (RedisConnectionError, RedisTimeoutError, ClusterError)
# How often a command waiting for a free connection of a cluster node's full pool looks again.
POOL_POLL_SECONDS = 0.01
SCRIPT_CALLS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"})


def _script_keys(args: tuple[Any, ...]) -> list[Any] | None:
    """The keys a script call (EVAL, EVALSHA ...) declares; None for any other command."""
    if len(args) < 3 or str(args[0]).upper() not in SCRIPT_CALLS:
        return None
    try:
        count = int(args[2])
    except (TypeError, ValueError):
        return None
    return list(args[3 : 3 + count])


def _script_slots(client: RedisCluster, args: tuple[Any, ...]) -> int:
    """How many hash slots the keys of a script call lie in (0 for another command or no keys)."""
    return len({client.keyslot(key) for key in _script_keys(args) or ()})


def _command_keys(client: RedisCluster, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any] | None:
    """The keys a command names, when they can be told without asking Redis: a script's declared keys,
    those redis-py passes along (`keys=`), XREAD's streams, or the fixed key positions of Redis's COMMAND
    table; None otherwise."""
    keys = _script_keys(args)
    if keys is not None or not args:
        return keys
    if isinstance(kwargs.get("keys"), list | tuple):
        return list(kwargs["keys"])
    words = [arg.decode("latin-1") if isinstance(arg, bytes) else str(arg) for arg in args]
    name = words[0].lower()
    if name == "xread":
        upper = [word.upper() for word in words]
        if "STREAMS" not in upper:
            return None
        streams = list(args[upper.index("STREAMS") + 1 :])
        return streams[: len(streams) // 2]
    spec = client.commands_parser.commands.get(name)
    if not isinstance(spec, dict) or "movablekeys" in spec.get("flags", ()):
        return None
    first, last, step = spec.get("first_key_pos", 0), spec.get("last_key_pos", 0), spec.get("step_count", 0)
    if (
        not (isinstance(first, int) and isinstance(last, int) and isinstance(step, int))
        or first < 1
        or step < 1
    ):
        return None
    if last < 0:
        last += len(args)
    return list(args[first : min(last, len(args) - 1) + 1 : step])


class _ClusterPipeline(ClusterPipeline):
    """A cluster pipeline whose failures stay with the commands they concern.

    redis-py fails a whole pipeline when one node cannot be reached, and refuses it before sending
    anything when one script call names keys of two slots (a queue whose prefix has no {hash tag}): one
    dead master, or one such queue among thousands, would fail every queue's read. Here, without a
    MULTI, the commands whose keys lie in one slot are sent in one pipeline per node (concurrently, as
    redis-py does), the others in one more: a node that fails answers its own commands' places with its
    error, a script call across slots gets Redis's own CROSSSLOT error in its place, and only when every
    part failed does the pipeline raise. Each command is still sent once: nothing is resent."""

    def __init__(self, client: RedisCluster, transaction: bool | None = None) -> None:
        super().__init__(client, transaction)
        self._queued: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """Queue a command (in a MULTI, one naming keys of another slot is refused now)."""
        with _cluster_errors(self._pool_size):
            if self._transaction and _script_slots(self.cluster_client, args) > 1:
                raise ClusterCrossSlotError(ClusterCrossSlotError.message)
            queued = super().execute_command(*args, **kwargs)
        self._queued.append((args, kwargs))
        return queued

    def _split_command_across_slots(self, command: str, *keys: Any) -> Any:
        """EXISTS, DEL, TOUCH of keys in several slots as one command with one reply, as on a single Redis
        (redis-py queues one per slot, each with its own reply, so the replies after it no longer line up
        with the commands queued); sent per slot and summed by redis-py's multi-shard routing."""
        if self._transaction:
            return super()._split_command_across_slots(command, *keys)
        return self.execute_command(command, *keys)

    @property
    def _pool_size(self) -> int:
        return int(getattr(self.cluster_client, "pool_size", 0))

    async def reset(self) -> None:  # type: ignore[override]
        """Forget the queued commands."""
        self._queued = []
        await super().reset()  # type: ignore[no-untyped-call]

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        """The replies, in the order the commands were queued (see the class docstring)."""
        queued = self._queued
        # (A command staged around execute_command, as mset_nonatomic and unlink do, is not in `queued`:
        # such a pipeline is sent as redis-py sends it.)
        if self._transaction or not queued or len(queued) != len(self):
            with _cluster_errors(self._pool_size):
                return await super().execute(raise_on_error, allow_redirections)
        groups, crossing = self._parts(queued)
        await self.reset()
        answers = await asyncio.gather(
            *(self._run_part(queued, node, indices, allow_redirections) for node, indices in groups.items()),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, RedisError):
                raise answer
        failed = {
            node: answer
            for node, answer in zip(groups, answers, strict=True)
            if isinstance(answer, BaseException)
        }
        if failed and len(failed) == len(answers) and not self._other_nodes_left(failed):
            raise next(iter(failed.values()))
        results: list[Any] = [None] * len(queued)
        for index in crossing:
            results[index] = ClusterCrossSlotError(ClusterCrossSlotError.message)
        for indices, answer in zip(groups.values(), answers, strict=True):
            for position, index in enumerate(indices):
                results[index] = answer if isinstance(answer, BaseException) else answer[position]
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results

    def _other_nodes_left(self, failed: dict[str | None, BaseException]) -> bool:
        """Whether the parts that failed were each a node that could not be reached, and the cluster has
        primaries none of them was sent to: then the connection is not down, only those nodes' keys are
        (a read of the queues of a dead master alone must not say the whole cluster is unreachable)."""
        if None in failed or not all(
            isinstance(error, RedisConnectionError | RedisTimeoutError) for error in failed.values()
        ):
            return False
        return bool({node.name for node in self.cluster_client.get_primaries()} - set(failed))

    def _parts(
        self, queued: list[tuple[tuple[Any, ...], dict[str, Any]]]
    ) -> tuple[dict[str | None, list[int]], list[int]]:
        """The queued commands' positions by the node of their keys' slot (None: not one slot, or not
        told by the arguments), and those of the script calls across slots."""
        by_node: dict[str | None, list[int]] = {}
        crossing: list[int] = []
        client = self.cluster_client
        for index, (args, kwargs) in enumerate(queued):
            keys = None if "target_nodes" in kwargs else _command_keys(client, args, kwargs)
            slots = {client.keyslot(key) for key in keys or ()}
            if len(slots) > 1 and _script_keys(args):
                crossing.append(index)
                continue
            node: str | None = None
            if len(slots) == 1:
                try:
                    node = client.nodes_manager.get_node_from_slot(slots.pop()).name
                except SlotNotCoveredError:  # not known yet: redis-py finds it when it is sent
                    node = None
            by_node.setdefault(node, []).append(index)
        return by_node, crossing

    async def _free_connection(self, name: str | None) -> None:
        """Wait, up to the client's `pool_wait`, until the pool of node `name` has a connection to give
        (redis-py's cluster pools raise MaxConnectionsError at once). The connection is not taken here:
        another request may take it first, and the pipeline then fails with PoolBusy; nothing is sent
        twice, as a pipeline is never sent again."""
        node = self.cluster_client.get_node(node_name=name) if name else None
        wait = float(getattr(self.cluster_client, "pool_wait", 0.0))
        waited = 0.0
        while node is not None and waited < wait and not _has_free_connection(node):
            await asyncio.sleep(POOL_POLL_SECONDS)
            waited += POOL_POLL_SECONDS

    async def _run_part(
        self,
        queued: list[tuple[tuple[Any, ...], dict[str, Any]]],
        node: str | None,
        indices: list[int],
        allow_redirections: bool,
    ) -> list[Any]:
        await self._free_connection(node)
        pipe = ClusterPipeline(self.cluster_client)  # type: ignore[abstract]
        for index in indices:
            args, kwargs = queued[index]
            pipe.execute_command(*args, **kwargs)
        with _cluster_errors(self._pool_size):
            return await pipe.execute(raise_on_error=False, allow_redirections=allow_redirections)


def _has_free_connection(node: Any) -> bool:
    """Whether a cluster node's pool would give a connection now (True when it cannot be told)."""
    free, taken = getattr(node, "_free", None), getattr(node, "_connections", None)
    if free is None or taken is None:
        return True
    return bool(free) or len(taken) < int(getattr(node, "max_connections", 0))


@contextlib.contextmanager
def _cluster_errors(pool_size: int = 0) -> Iterator[None]:
    try:
        yield
    except CrossSlotTransactionError as exc:
        # A MULTI naming keys of two slots (a queue without a {hash tag}): refused before it was sent.
        raise ClusterCrossSlotError(ClusterCrossSlotError.message) from exc
    except RedisClusterUnreachableError as exc:
        # No node could be connected to (no command was sent): down, as a single Redis would be.
        raise RedisConnectionError(str(exc) or type(exc).__name__) from exc
    except RedisClusterException as exc:
        raise ClusterError(str(exc) or type(exc).__name__) from exc
    except MaxConnectionsError as exc:
        # Every connection of the dashboard's pool for one node is in use: the dashboard is busy, the
        # cluster may be fine (a ConnectionError would say it is down).
        message = gettext_lazy(
            "All %(count)d of the dashboard's connections to this Redis are in use; try again in a moment.",
            count=pool_size,
        )
        raise PoolBusy(message) from exc


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
    # connection: a full pool raises MaxConnectionsError at once, so a command waits for one up to the
    # connect timeout (as BoundedPool does), then raises PoolBusy.
    # MOVED and ASK are followed by the client itself, for reads and writes alike: a redirected command
    # did not run. Typed as Redis: the commands the dashboard sends are the same.
    cluster = cast(
        ScriptReloadingCluster,
        ScriptReloadingCluster.from_url(
            settings.url,
            decode_responses=writes,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            max_connections=settings.max_connections,
            health_check_interval=30,
            client_name="bullmq-dashboard-writer" if writes else "bullmq-dashboard",
            retry=retry,
            **settings.client_options,
        ),
    )
    cluster.pool_wait = settings.connect_timeout
    cluster.pool_size = settings.max_connections
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
