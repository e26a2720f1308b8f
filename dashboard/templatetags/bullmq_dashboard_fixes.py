"""Links of the fixes the health panel shows next to each reason (partials/health_fix.html)."""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch

from dashboard import links
from dashboard.live.fragments import queue_dom_id
from queues.models import QueueRef

register = template.Library()


@register.simple_tag
def state_list_url(queue: QueueRef, state: str) -> str:
    """The queue page on one state's tab."""
    return links.queue_list_url(queue, state)


@register.simple_tag
def other_queue_health_url(queue: QueueRef, queue_key: object) -> str:
    """The health panel of another queue of the same connection (a reason's value); "" when the value
    is no queue key."""
    try:
        return links.queue_url(QueueRef.from_key(queue.connection, str(queue_key))) + "#health"
    except (ValueError, NoReverseMatch):  # UnicodeEncodeError is a ValueError
        return ""


@register.simple_tag
def dedup_lookup_url(queue: QueueRef) -> str:
    """The queue's deduplication id lookup."""
    return links.dedup_lookup_url(queue)


@register.simple_tag
def health_fix_dom_id(queue: QueueRef, code: str) -> str:
    """The id of the fix of one reason on a queue's page (kept across pushes: hx-preserve)."""
    return f"health-fix-{queue_dom_id(queue)}-{code}"


@register.simple_tag
def health_fix_url(queue: QueueRef, code: str, value: object) -> str:
    """Where a pushed fix loads this user's buttons."""
    return links.health_fix_url(queue, code, value)
