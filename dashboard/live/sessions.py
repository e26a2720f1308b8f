"""Closing a session's live sockets when it logs out (the sockets re-check their session, too)."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from dashboard.live.groups import session_group

logger = logging.getLogger("bullmq_dashboard.live")


@receiver(user_logged_out)
def close_sockets_of_session(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """Tell every socket of the session that just logged out to close."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    layer = get_channel_layer()
    if not session_key or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(session_group(session_key), {"type": "live.logout"})
    except Exception:  # a channel layer that is away must not fail the logout itself
        logger.warning("could not close the live sockets of a session that logged out", exc_info=True)
