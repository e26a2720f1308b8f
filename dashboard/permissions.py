"""Who may see and do what: one callable from settings decides every view and action."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from dashboard.conf import get_config
from queues.models import QueueRef

VIEW = "view"


def default_permission(user: Any, action: str, queue: QueueRef | None) -> bool:
    """Staff may view; each action needs its Django permission `dashboard.<action>` or superuser."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if user.is_superuser:
        return True
    if action == VIEW:
        return bool(user.is_staff)
    return bool(user.is_staff) and bool(user.has_perm(f"dashboard.{action}"))


def has_permission(user: Any, action: str, queue: QueueRef | None = None) -> bool:
    """Ask the configured permission callable."""
    check = import_string(get_config().permission)
    return bool(check(user, action, queue))
