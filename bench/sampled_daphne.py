"""daphne as `python -m daphne` runs it, plus a sampler on its event loop that no endpoint could give.

    python -m bench.sampled_daphne --samples FILE --every SECONDS [daphne's own arguments]

Every SECONDS the sampler appends one JSON line to FILE, read from inside the serving process:

- `tasks`: asyncio tasks alive on daphne's event loop (`asyncio.all_tasks`): one per open connection's
  application instance, the consumers' receive loops, the live watcher's and the hub's own tasks;
  `task_kinds`: the most common coroutine names among them, to tell what grows;
- `threads`: Python threads (`threading.active_count()`; the thread-pool handler's and asgiref's);
- `layer_groups`, `layer_members`, `layer_channels`: the in-memory channel layer's groups, channel
  memberships summed over them, and channels with a message queue (None for another layer, e.g. Redis);
- `daphne_connections`: daphne's own table of open connections (HTTP keep-alive and websockets);
- `hub_viewers` (and `hub_views` by page kind), `hub_sent`, `hub_leases`, `watcher`: the live hub's open
  sockets, remembered digests of what each group was sent, page-view leases, whether its watcher runs.

It runs on the loop between requests, like any other callback (it takes well under a millisecond for a
few hundred tasks), and reads only; it never creates the hub or the layer if nothing did yet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

# daphne.server installs the asyncio reactor: it must come before anything imports Twisted's reactor.
import daphne.server
from daphne.cli import CommandLineInterface
from twisted.internet import reactor, task


def _layer_sizes() -> dict[str, int | None]:
    from channels.layers import InMemoryChannelLayer, channel_layers

    layer = channel_layers.backends.get("default")
    if not isinstance(layer, InMemoryChannelLayer):
        return {"layer_groups": None, "layer_members": None, "layer_channels": None}
    return {
        "layer_groups": len(layer.groups),
        "layer_members": sum(len(members) for members in layer.groups.values()),
        "layer_channels": len(layer.channels),
    }


def _hub_sizes(loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    from dashboard.live import hub as hub_module

    hub = hub_module._hubs.get(loop)
    if hub is None:
        return {"hub_viewers": 0, "hub_views": {}, "hub_sent": 0, "hub_leases": 0, "watcher": False}
    return {
        "hub_viewers": hub.viewers,
        "hub_views": dict(Counter(view.kind.value for view in hub._views.values())),
        "hub_sent": len(hub._sent),
        "hub_leases": len(hub._leases),
        "watcher": hub.watcher is not None,
    }


def _kind(item: asyncio.Task[Any]) -> str:
    coro = item.get_coro()
    return getattr(coro, "__qualname__", type(coro).__name__)


def sample(cli: CommandLineInterface, loop: asyncio.AbstractEventLoop, out: Path, started: float) -> None:
    """Append one line of what the serving process holds now."""
    tasks = asyncio.all_tasks(loop)
    server = cli.server
    line = {
        # daphne's own table of open HTTP and websocket connections (each with its application instance)
        "daphne_connections": len(server.connections) if server is not None else None,
        "t": round(time.monotonic() - started, 2),
        "wall": time.time(),
        "tasks": len(tasks),
        "task_kinds": dict(Counter(_kind(item) for item in tasks).most_common(8)),
        "threads": threading.active_count(),
        **_layer_sizes(),
        **_hub_sizes(loop),
    }
    with out.open("a") as handle:
        handle.write(json.dumps(line) + "\n")


def main() -> None:
    """Start the sampler with the reactor, then hand the rest of argv to daphne's own CLI."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--every", type=float, default=10.0)
    ours, rest = parser.parse_known_args()
    started = time.monotonic()
    cli = CommandLineInterface()
    looping = task.LoopingCall(sample, cli, daphne.server.twisted_loop, ours.samples, started)
    # now=False: the first sample comes after the application is loaded and serving.
    reactor.callWhenRunning(looping.start, ours.every, now=False)
    cli.run(rest)  # what `python -m daphne` does with its arguments


if __name__ == "__main__":
    main()
