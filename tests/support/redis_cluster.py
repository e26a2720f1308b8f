"""A private Redis Cluster of three masters (and, when asked, a replica of each) on free loopback ports.

    with ThrowawayCluster(replicas=True) as cluster:
        cluster.url                      # redis://127.0.0.1:<first master>/0, a seed node
        cluster.migrate_slot(slot, node) # live resharding: clients see ASK, then MOVED
        cluster.failover(master)         # a replica takes over (CLUSTER FAILOVER): clients see MOVED

Like ThrowawayRedis: a temporary directory, no persistence, its own servers only, all stopped and deleted on
exit. Needs Redis 7 or later (the cluster bus port is chosen with `--cluster-port`) and its `redis-cli` (or
`valkey-cli`) for `--cluster create`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import redis

from queues.throwaway_redis import find_redis_server, stop_process

# How long a node may stay silent before the others mark it failing. Short enough that a killed master
# is noticed within a test; long enough that a busy two-core machine does not trigger a failover nobody
# asked for.
NODE_TIMEOUT_MS = 5000
# Starts on fresh ports after one of them was taken by another process in between.
START_ATTEMPTS = 3


class Node(NamedTuple):
    """A node's client address."""

    host: str
    port: int

    @property
    def name(self) -> str:
        """`host:port`, as redis-cli and CLUSTER NODES spell it."""
        return f"{self.host}:{self.port}"


class NodeView(NamedTuple):
    """One line of CLUSTER NODES."""

    node_id: str
    node: Node
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]  # inclusive ranges; migrating/importing markers left out

    @property
    def is_master(self) -> bool:
        """Whether the node serves slots itself (or could: a master without slots counts too)."""
        return "master" in self.flags


def find_redis_cli(server: str | None = None) -> str:
    """Path of a cli binary: $REDIS_CLI, the one beside the server binary, redis-cli or valkey-cli on PATH."""
    explicit = os.environ.get("REDIS_CLI")
    if explicit:
        return explicit
    server = server or find_redis_server()
    folder = Path(server).parent
    for name in ("redis-cli", "valkey-cli"):
        beside = folder / name
        if beside.is_file():
            return str(beside)
    for name in ("redis-cli", "valkey-cli"):
        on_path = shutil.which(name)
        if on_path:
            return on_path
    raise RuntimeError("no redis-cli found beside redis-server or on PATH: a cluster is created with it")


def parse_cluster_nodes(text: str) -> list[NodeView]:
    """CLUSTER NODES' reply, line by line."""
    views: list[NodeView] = []
    for line in text.strip().splitlines():
        fields = line.split()
        address = fields[1].split("@", 1)[0].split(",", 1)[0]
        host, _, port = address.rpartition(":")
        slots: list[tuple[int, int]] = []
        for part in fields[8:]:
            if part.startswith("["):  # [slot->-id] / [slot-<-id]: a migration under way
                continue
            first, _, last = part.partition("-")
            slots.append((int(first), int(last or first)))
        views.append(
            NodeView(
                node_id=fields[0],
                node=Node(host, int(port)),
                flags=frozenset(fields[2].split(",")),
                master_id=None if fields[3] == "-" else fields[3],
                slots=tuple(sorted(slots)),
            )
        )
    return views


class ThrowawayCluster:
    """Starts 3 cluster-enabled redis-servers (+ 3 replicas with `replicas=True`), joins them into one
    cluster and waits until every node agrees on it; stops and deletes everything on exit."""

    MASTERS = 3

    def __init__(self, *, replicas: bool = False, extra_args: tuple[str, ...] = ()) -> None:
        self.replicas = replicas
        # More redis-server options for every node, e.g. ("--enable-debug-command", "local").
        self.extra_args = extra_args
        self._count = self.MASTERS * (2 if replicas else 1)
        self._pick_ports()
        self.startup_seconds = 0.0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._processes: dict[Node, subprocess.Popen[bytes]] = {}
        self._clients: dict[Node, redis.Redis] = {}

    # -- life cycle ----------------------------------------------------------------------------------------

    def _pick_ports(self) -> None:
        """A data port and a cluster bus port per node, all different: picked while every probe socket
        is still open (ports picked one after another may repeat: one node's bus port would then be
        another's data port)."""
        probes = [socket.socket() for _ in range(2 * self._count)]
        try:
            for probe in probes:
                probe.bind(("127.0.0.1", 0))
            ports = [int(probe.getsockname()[1]) for probe in probes]
        finally:
            for probe in probes:
                probe.close()
        self.nodes: tuple[Node, ...] = tuple(Node("127.0.0.1", port) for port in ports[: self._count])
        self._bus_ports = dict(zip(self.nodes, ports[self._count :], strict=True))
        # redis-cli --cluster create makes the first MASTERS addresses the masters.
        self.url = f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> ThrowawayCluster:
        """Start the servers, create the cluster and wait until every node says cluster_state:ok. A port
        another process took between the pick and the start makes it try again on new ports."""
        began = time.monotonic()
        for attempt in range(START_ATTEMPTS):
            try:
                self._start_once()
                break
            except RuntimeError as exc:
                if "Address already in use" not in str(exc) or attempt == START_ATTEMPTS - 1:
                    raise
                self._pick_ports()
        self.startup_seconds = time.monotonic() - began
        return self

    def _start_once(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="throwaway-cluster-")
        server = find_redis_server()
        try:
            for node in self.nodes:
                self._processes[node] = self._spawn(server, node)
            for node in self.nodes:
                self._wait_for_ping(node)
            self._create(find_redis_cli(server))
            self.wait_until_stable()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, server: str, node: Node) -> subprocess.Popen[bytes]:
        assert self._dir is not None
        folder = Path(self._dir.name) / str(node.port)
        folder.mkdir()
        return subprocess.Popen(
            [
                server,
                "--port", str(node.port),
                # Not port + 10000, which may be taken or beyond 65535.
                "--cluster-port", str(self._bus_ports[node]),
                "--bind", node.host,
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(folder / "nodes.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--save", "",
                "--appendonly", "no",
                # A replica's first sync would otherwise wait 5 s for more replicas to share it.
                "--repl-diskless-sync-delay", "0",
                "--dir", str(folder),
                "--logfile", str(folder / "redis.log"),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _wait_for_ping(self, node: Node) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            process = self._processes[node]
            if process.poll() is not None:
                raise RuntimeError(
                    f"redis-server {node.name} exited with {process.returncode}: {self._log(node)}"
                )
            try:
                if self.client(node).ping():
                    return
            except redis.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server {node.name} did not answer within 10 s")

    def _create(self, cli: str) -> None:
        result = subprocess.run(
            [
                cli,
                "--cluster", "create",
                *(node.name for node in self.nodes),
                "--cluster-replicas", "1" if self.replicas else "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        if result.returncode != 0 or "[OK] All 16384 slots covered" not in result.stdout:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        """Stop every server and remove the directory."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self._processes.values():
            stop_process(process)
        self._processes.clear()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- looking at it -------------------------------------------------------------------------------------

    def client(self, node: Node) -> redis.Redis:
        """A plain (not cluster-aware) client of one node, replies decoded: for CLUSTER commands."""
        client = self._clients.get(node)
        if client is None:
            client = self._clients[node] = redis.Redis(
                host=node.host, port=node.port, decode_responses=True, socket_timeout=10
            )
            # The raw text, not redis-py's dicts of it (which keep no flags' order and drop migrations).
            for command in ("CLUSTER NODES", "CLUSTER INFO"):
                client.set_response_callback(command, lambda response, **_: response)
        return client

    def command(self, node: Node, *args: object) -> Any:
        """One command sent to one node (CLUSTER ..., ROLE, MIGRATE), its reply decoded."""
        return self.client(node).execute_command(*args)  # type: ignore[no-untyped-call]

    def view(self, node: Node | None = None) -> list[NodeView]:
        """The cluster as one node (the first live one by default) sees it."""
        return parse_cluster_nodes(self.command(node or self._any(), "CLUSTER NODES"))

    def _any(self) -> Node:
        return next(iter(self.live_nodes()), self.nodes[0])

    def node_id(self, node: Node) -> str:
        """A node's cluster id."""
        return str(self.command(node, "CLUSTER MYID"))

    def masters(self) -> list[Node]:
        """The masters that serve slots now (a failover changes them), ordered by their lowest slot (a
        migrate_slot can change the order)."""
        views = [view for view in self.view() if view.is_master and view.slots]
        return [view.node for view in sorted(views, key=lambda view: view.slots[0])]

    def replicas_of(self, master: Node) -> list[Node]:
        """The replicas of one master."""
        master_id = self.node_id(master)
        return [view.node for view in self.view() if view.master_id == master_id]

    def owner(self, slot: int) -> Node:
        """The master serving `slot`, as the first live node sees it."""
        for view in self.view():
            if view.is_master and any(first <= slot <= last for first, last in view.slots):
                return view.node
        raise LookupError(f"no node serves slot {slot}")

    def keyslot(self, key: str) -> int:
        """CLUSTER KEYSLOT of a key (hash tags included)."""
        return int(self.command(self._any(), "CLUSTER KEYSLOT", key))

    def live_nodes(self) -> list[Node]:
        """The started nodes whose process still runs."""
        return [node for node in self.nodes if self._processes[node].poll() is None]

    def _agreement(self, node: Node) -> tuple[tuple[str, str, str | None, tuple[tuple[int, int], ...]], ...]:
        return tuple(
            sorted(
                (view.node_id, "master" if view.is_master else "replica", view.master_id, view.slots)
                for view in self.view(node)
                if "fail" not in view.flags
            )
        )

    def _stable(self) -> bool:
        seen = set()
        for node in self.live_nodes():
            info = self.command(node, "CLUSTER INFO")
            if "cluster_state:ok" not in info:
                return False
            views = self.view(node)
            if any(view.flags & {"handshake", "noaddr", "fail?"} for view in views):
                return False
            if any("[" in line for line in self.command(node, "CLUSTER NODES").splitlines()):
                return False  # a slot still migrating
            role = self.command(node, "ROLE")
            if role[0] == "slave" and role[3] != "connected":
                return False  # a replica still syncing: a manual failover would wait for it
            seen.add(self._agreement(node))
        return len(seen) == 1

    def wait_until_stable(self, timeout: float = 30) -> None:
        """Wait until every live node says cluster_state:ok, has finished its handshakes and replication,
        and all of them see the same masters, replicas and slots."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._stable():
                    return
            except redis.ConnectionError:
                pass
            time.sleep(0.05)
        views = {node.name: self.command(node, "CLUSTER NODES") for node in self.live_nodes()}
        raise RuntimeError(f"the cluster did not settle within {timeout} s: {views}")

    def _log(self, node: Node) -> str:
        if self._dir is None:
            return ""
        path = Path(self._dir.name) / str(node.port) / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    # -- changing it under a client ------------------------------------------------------------------------

    def migrate_slot(
        self,
        slot: int,
        to_node: Node,
        *,
        batch: int = 100,
        between_batches: Callable[[int], None] | None = None,
    ) -> int:
        """Move one slot and its keys to `to_node` (a master), live, as `redis-cli --cluster reshard` does:
        IMPORTING on the target, MIGRATING on the source, MIGRATE of its keys `batch` at a time, then SETSLOT
        NODE on every master. While keys move, a client asking the source for a moved key gets ASK; after,
        MOVED. `between_batches(moved so far)` runs after each batch, mid-migration (before the first one
        too, with 0), so a test can read then. Returns how many keys moved."""
        source = self.owner(slot)
        if source == to_node:
            raise ValueError(f"slot {slot} is already on {to_node.name}")
        source_id, target_id = self.node_id(source), self.node_id(to_node)
        self.command(to_node, "CLUSTER SETSLOT", slot, "IMPORTING", source_id)
        self.command(source, "CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        moved = 0
        if between_batches is not None:
            between_batches(moved)
        while keys := self.command(source, "CLUSTER GETKEYSINSLOT", slot, batch):
            self.command(
                source, "MIGRATE", to_node.host, to_node.port, "", 0, 10000, "REPLACE", "KEYS", *keys
            )
            moved += len(keys)
            if between_batches is not None:
                between_batches(moved)
        # The target first, so that it never refuses the slot while the source already redirects to it.
        self.command(to_node, "CLUSTER SETSLOT", slot, "NODE", target_id)
        self.command(source, "CLUSTER SETSLOT", slot, "NODE", target_id)
        for master in self.masters():
            if master not in (source, to_node):
                self.command(master, "CLUSTER SETSLOT", slot, "NODE", target_id)
        self.wait_until_stable()
        return moved

    def failover(self, master: Node) -> Node:
        """Make a replica of `master` the master (CLUSTER FAILOVER on it: the old master stops writes, the
        replica catches up, then takes over) and wait until every node agrees. Returns the new master."""
        replicas = self.replicas_of(master)
        if not replicas:
            raise RuntimeError(f"{master.name} has no replica: start the cluster with replicas=True")
        promoted = replicas[0]
        self.command(promoted, "CLUSTER FAILOVER")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.command(promoted, "ROLE")[0] == "master":
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{promoted.name} did not take over from {master.name} within 30 s")
        self.wait_until_stable()
        return promoted
