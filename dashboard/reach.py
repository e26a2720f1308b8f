"""Where an action's BullMQ script can reach through flow parents and children, checked before it runs:
against the read-only queues, and against the permissions of the user who takes it.

The web's actions and the terminal's (`manage.py queues`) both ask here, so an action is refused for
the same reasons wherever it is taken.
"""

from __future__ import annotations

from collections.abc import Iterable

from asgiref.sync import sync_to_async

from dashboard import registry
from dashboard.actions import ActionSpec, Prepared
from dashboard.answers import Refusal
from dashboard.conf import get_config
from dashboard.permissions import VIEW, has_permission, permission_depends_on_queue, read_only_reached
from dashboard.users import User
from queues.flows import FlowReach
from queues.jobs import resolve_job_key
from queues.messages import gettext_lazy
from queues.models import QueueRef


async def check_reach(
    queue: QueueRef, spec: ActionSpec, prepared: Iterable[Prepared], user: User | None
) -> None:
    """Refuse (403) an action whose BullMQ script would, through flow parents or children, change a
    read-only queue or a queue where this user may not take the same action. Without a user (the OS
    account at a terminal, whom the permission callable does not know) only read-only queues count."""
    per_queue = permission_depends_on_queue() and user is not None
    if not get_config().read_only_queues and not per_queue:
        return  # nothing the flow links could reach is protected differently from this queue
    reach = FlowReach()
    client = registry.client(queue.connection)
    for each in prepared:
        if each.reach is not None:
            reach = reach.merged(await each.reach(client))
    refusal = read_only_reached(reach)
    if refusal is not None:
        raise Refusal(403, refusal)
    if not per_queue or user is None or not reach.job_keys:
        return
    known = await registry.directory(queue.connection).get()
    reached: set[QueueRef] = set()
    for job_key in reach.job_keys:
        resolved = resolve_job_key(known, job_key)
        if resolved is None:
            message = gettext_lazy(
                "This would change %(job)s, a job of a queue the dashboard does not list.", job=job_key
            )
            raise Refusal(403, message)
        reached.add(resolved[0])
    denied = await _adenied(user, spec.name, sorted(reached - {queue}))
    if denied:
        message = gettext_lazy(
            "This would change jobs in %(queues)s (flow parents or children), where you may not use"
            " “%(action)s”.",
            queues=", ".join(each.key for each in denied),
            action=spec.label,
        )
        raise Refusal(403, message)


def _denied(user: User, action: str, queues: list[QueueRef]) -> list[QueueRef]:
    return [
        queue
        for queue in queues
        if not (has_permission(user, VIEW, queue) and has_permission(user, action, queue))
    ]


_adenied = sync_to_async(_denied)
