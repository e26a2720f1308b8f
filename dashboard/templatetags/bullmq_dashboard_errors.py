"""Template links of the error group pages (built by dashboard.links)."""

from __future__ import annotations

from django import template

from dashboard import links
from queues.models import QueueRef

register = template.Library()


@register.simple_tag
def error_groups_url(queue: QueueRef) -> str:
    """The queue's error groups page."""
    return links.error_groups_url(queue)


@register.simple_tag
def error_group_url(queue: QueueRef, fingerprint: str) -> str:
    """One error group, opened on its queue's page."""
    return links.error_group_url(queue, fingerprint)


@register.simple_tag
def all_error_groups_url() -> str:
    """The error groups of the queues with most failures."""
    return links.all_error_groups_url()
