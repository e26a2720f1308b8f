"""Job states as Node BullMQ's getJobCounts() and getJobs() name them, and where each lives in Redis."""

from __future__ import annotations

from dataclasses import dataclass

from queues.messages import Message, pgettext_lazy


@dataclass(frozen=True)
class StateKey:
    """A job state, the key type suffix that holds it, and whether that key is a list or a zset."""

    name: str
    suffix: str
    is_list: bool


STATE_KEYS: tuple[StateKey, ...] = (
    StateKey("waiting", "wait", True),
    StateKey("active", "active", True),
    StateKey("prioritized", "prioritized", False),
    StateKey("delayed", "delayed", False),
    StateKey("completed", "completed", False),
    StateKey("failed", "failed", False),
    StateKey("waiting-children", "waiting-children", False),
    # BullMQ < 6 keeps a paused queue's jobs in their own list (pause renames `wait`); 6 only flags `meta`.
    StateKey("paused", "paused", True),
)

STATES: tuple[str, ...] = tuple(state.name for state in STATE_KEYS)
BY_NAME: dict[str, StateKey] = {state.name: state for state in STATE_KEYS}
# The states' names for people (tabs, column heads, sentences), translated where they are shown.
STATE_NAMES: dict[str, Message] = {
    "waiting": pgettext_lazy("job state", "waiting"),
    "active": pgettext_lazy("job state", "active"),
    "prioritized": pgettext_lazy("job state", "prioritized"),
    "delayed": pgettext_lazy("job state", "delayed"),
    "completed": pgettext_lazy("job state", "completed"),
    "failed": pgettext_lazy("job state", "failed"),
    "waiting-children": pgettext_lazy("job state", "waiting-children"),
    "paused": pgettext_lazy("job state", "paused"),
}


def state_key(name: str) -> StateKey:
    """The StateKey for a state name; KeyError for names BullMQ does not have."""
    return BY_NAME[name]


def state_name(name: str) -> str:
    """A state's name for people; an unknown name (another BullMQ version's) as it is."""
    return STATE_NAMES.get(name, name)
