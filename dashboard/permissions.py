"""Who may see and do what: one callable from settings decides every view and action."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from asgiref.sync import sync_to_async
from django.utils.module_loading import import_string

from dashboard.actions import ACTIONS, BULK_ACTIONS
from dashboard.conf import get_config
from dashboard.redis_access import redis_read_only
from dashboard.users import User
from queues.flows import FlowReach
from queues.messages import gettext_lazy
from queues.models import QueueRef

# The permission callable of settings: (user, action, queue or None) -> may.
PermissionCheck = Callable[[User, str, QueueRef | None], bool]

# The app label: permissions are `bullmq_dashboard.<codename>`.
APP_LABEL = "bullmq_dashboard"
VIEW = "view"
# The audit log shows every queue's actions and who took them: a permission of its own.
VIEW_AUDIT = "view_audit"


def default_permission(user: User, action: str, queue: QueueRef | None) -> bool:
    """Active staff may view (every queue); the audit log needs `bullmq_dashboard.view_auditentry`;
    each action needs its permission (e.g. `bullmq_dashboard.retry_job`); superusers may do everything.
    A user model without Django's staff and permission fields (no PermissionsMixin) may do nothing."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if getattr(user, "is_superuser", False):
        return True
    if not getattr(user, "is_staff", False):
        return False
    if action == VIEW:
        return True
    if action == VIEW_AUDIT:
        return _has_perm(user, "view_auditentry")
    if action == "bulk":
        return any(default_permission(user, name, queue) for name in BULK_ACTIONS)
    spec = ACTIONS.get(action)
    return spec is not None and _has_perm(user, spec.permission)


def _has_perm(user: User, codename: str) -> bool:
    check = getattr(user, "has_perm", None)
    return bool(check(f"{APP_LABEL}.{codename}")) if callable(check) else False


def has_permission(user: User, action: str, queue: QueueRef | None = None) -> bool:
    """Ask the configured permission callable (it may touch the database: call from sync code)."""
    return bool(_callable(get_config().permission)(user, action, queue))


@cache
def _callable(path: str) -> PermissionCheck:
    # Resolved once per path: a page asks for every action's permission.
    check: PermissionCheck = import_string(path)
    return check


DEFAULT_PERMISSION = "dashboard.permissions.default_permission"


def permission_depends_on_queue() -> bool:
    """False for the default callable, whose answers are the same for every queue; True for any
    other, which may decide per queue (so flows into other queues must be checked)."""
    return get_config().permission != DEFAULT_PERMISSION


def read_only(queue: QueueRef | None) -> bool:
    """True when settings forbid every write, or writes to this queue, or the connection's Redis user
    was seen to be read-only there (dashboard.redis_access)."""
    config = get_config()
    return (
        config.read_only
        or (queue is not None and queue.key in config.read_only_queues)
        or redis_read_only(queue)
    )


def read_only_reached(reach: FlowReach) -> str | None:
    """Why an action whose flow links reach these jobs may not run (a read-only queue among them, or
    too many links to tell), or None."""
    protected = get_config().read_only_queues
    if not protected:
        return None
    for job_key in sorted(reach.job_keys):
        for queue_key in protected:
            if job_key.startswith(queue_key + ":"):
                job_id = job_key[len(queue_key) + 1 :]
                return gettext_lazy(
                    "%(queue)s is read-only here, and this action would change its job %(job)s "
                    "(a flow parent or child of the jobs acted on). Nothing was changed.",
                    queue=queue_key,
                    job=job_id,
                )
    if not reach.complete:
        return gettext_lazy(
            "The jobs acted on have more flow parents or children than can be checked against the "
            "read-only queues; nothing was changed."
        )
    return None


def permitted(user: User, actions: Iterable[str], queue: QueueRef | None) -> set[str]:
    """The subset of `actions` this user may take on this queue now (read-only mode allows none)."""
    if read_only(queue):
        return set()
    return {action for action in actions if has_permission(user, action, queue)}


@dataclass(frozen=True)
class Access:
    """What one request may do: its user, whether it may open the dashboard, whether it may view the
    URL's queue, and the actions it may take there."""

    user: User
    may_view: bool
    may_view_queue: bool = False
    allowed: frozenset[str] = frozenset()


def access(request: Any, queue: QueueRef | None, with_actions: bool = False) -> Access:
    """The request's user (loaded now, with its session), and, given the queue a URL names (parsed
    from the URL, not looked up in Redis yet), whether it may view it and which actions it may take.

    Asked together because each question costs a thread hop from async views (the permission
    callable may use the database).
    """
    user = request.user
    may_view = bool(user.is_authenticated) and has_permission(user, VIEW, None)
    if not may_view or queue is None:
        return Access(user, may_view)
    if not has_permission(user, VIEW, queue):
        return Access(user, True, may_view_queue=False)
    allowed = frozenset(permitted(user, [*ACTIONS, "bulk"], queue)) if with_actions else frozenset()
    return Access(user, True, may_view_queue=True, allowed=allowed)


def visible(user: User, queues: Iterable[QueueRef]) -> list[QueueRef]:
    """The queues this user may view, in order: the configured permission callable is asked for each;
    the default one, whose answer is the same for every queue, once (asking it 10,000 times took 75 ms
    of every overview view)."""
    listed = list(queues)
    if listed and not permission_depends_on_queue():
        return listed if has_permission(user, VIEW, listed[0]) else []
    return [queue for queue in listed if has_permission(user, VIEW, queue)]


aaccess = sync_to_async(access)
ahas_permission = sync_to_async(has_permission)
avisible = sync_to_async(visible)
