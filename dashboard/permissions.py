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
from queues.models import QueueRef

VIEW = "view"


def default_permission(user: Any, action: str, queue: QueueRef | None) -> bool:
    """Active staff may view; each action needs its permission (e.g. `dashboard.retry_job`) or superuser."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if user.is_superuser:
        return True
    if not user.is_staff:
        return False
    if action == VIEW:
        return True
    if action == "bulk":
        return any(default_permission(user, name, queue) for name in BULK_ACTIONS)
    spec = ACTIONS.get(action)
    return spec is not None and bool(spec.permission) and bool(user.has_perm(f"dashboard.{spec.permission}"))


def has_permission(user: Any, action: str, queue: QueueRef | None = None) -> bool:
    """Ask the configured permission callable (it may touch the database: call from sync code)."""
    return bool(_callable(get_config().permission)(user, action, queue))


@cache
def _callable(path: str) -> Callable[[Any, str, QueueRef | None], Any]:
    # Resolved once per path: a page asks for every action's permission.
    check: Callable[[Any, str, QueueRef | None], Any] = import_string(path)
    return check


def read_only(queue: QueueRef | None) -> bool:
    """True when settings forbid every write, or writes to this queue."""
    config = get_config()
    return config.read_only or (queue is not None and queue.key in config.read_only_queues)


def permitted(user: Any, actions: Iterable[str], queue: QueueRef | None) -> set[str]:
    """The subset of `actions` this user may take on this queue now (read-only mode allows none)."""
    if read_only(queue):
        return set()
    return {action for action in actions if has_permission(user, action, queue)}


@dataclass(frozen=True)
class Access:
    """What one request may do: its user, whether it may view, the actions it may take on its queue."""

    user: Any
    may_view: bool
    allowed: frozenset[str] = frozenset()


def access(request: Any, queue: QueueRef | None) -> Access:
    """The request's user (loaded now, with its session) and, given a queue, every action it may take there.

    Asked together because each question costs a thread hop from async views (the permission
    callable may use the database).
    """
    user = request.user
    may_view = bool(user.is_authenticated) and has_permission(user, VIEW, None)
    if not may_view or queue is None:
        return Access(user, may_view)
    return Access(user, may_view, frozenset(permitted(user, [*ACTIONS, "bulk"], queue)))


aaccess = sync_to_async(access)
ahas_permission = sync_to_async(has_permission)
