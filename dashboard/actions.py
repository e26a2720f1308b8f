"""The actions an operator can take: names, scopes, the Django permission each needs, when each applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from queues.states import STATES

ANY_STATE = tuple(STATES)


@dataclass(frozen=True)
class ActionSpec:
    """One action: its API name, what it acts on, its permission codename and the states it applies to."""

    name: str
    scope: str  # "job", "queue" or "list"
    permission: str
    label: str
    states: tuple[str, ...] = ANY_STATE
    destructive: bool = False


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("retry", "job", "retry_job", "Retry", ("failed", "completed")),
        ActionSpec("remove", "job", "remove_job", "Remove", destructive=True),
        ActionSpec("promote", "job", "promote_job", "Promote", ("delayed",)),
        ActionSpec(
            "change_priority", "job", "change_job_priority", "Change priority", ("waiting", "prioritized")
        ),
        ActionSpec(
            "update_data",
            "job",
            "update_job_data",
            "Edit data",
            ("waiting", "delayed", "failed", "prioritized"),
        ),
        ActionSpec("duplicate", "job", "duplicate_job", "Duplicate"),
        ActionSpec("pause", "queue", "pause_queue", "Pause"),
        ActionSpec("resume", "queue", "resume_queue", "Resume"),
        ActionSpec("clean", "queue", "clean_queue", "Clean", destructive=True),
        ActionSpec("retry_all", "queue", "retry_all_jobs", "Retry all failed"),
        ActionSpec("promote_all", "queue", "promote_all_jobs", "Promote all delayed"),
        ActionSpec("drain", "queue", "drain_queue", "Drain", destructive=True),
        ActionSpec("obliterate", "queue", "obliterate_queue", "Obliterate", destructive=True),
        ActionSpec("add", "queue", "add_job", "Add job"),
        # A bulk selection needs the permission of what it does (retry_job, remove_job, promote_job).
        ActionSpec("bulk", "list", "", "Bulk action"),
    )
}

JOB_ACTIONS = tuple(name for name, spec in ACTIONS.items() if spec.scope == "job")
QUEUE_ACTIONS = tuple(name for name, spec in ACTIONS.items() if spec.scope == "queue")
# What a bulk selection can do, and the job action whose permission each needs.
BULK_ACTIONS = {"retry": "retry", "remove": "remove", "promote": "promote"}

PERMISSIONS: list[tuple[str, Any]] = [
    (spec.permission, f"Can {spec.label.lower()} ({spec.scope})")
    for spec in ACTIONS.values()
    if spec.permission
]
