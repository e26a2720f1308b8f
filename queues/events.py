"""The events watcher's public names (the watcher itself lives in `queues.live`)."""

from queues.live.interest import Interest, JobRef
from queues.live.options import WatcherOptions
from queues.live.reachability import REDIS_FAULTS, StatusChange
from queues.live.refresh import LiveUpdate, Publish
from queues.live.watcher import EventWatcher, ListQueues

__all__ = [
    "REDIS_FAULTS",
    "EventWatcher",
    "Interest",
    "JobRef",
    "ListQueues",
    "LiveUpdate",
    "Publish",
    "StatusChange",
    "WatcherOptions",
]
