"""The dashboard pointed at a test Redis, and stopped after a test."""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

from dashboard.registry import stop_background_work
from queues.connections import close_clients


async def close_dashboard() -> None:
    """Stop what page views started on this test's loop: the live hub's lease, the overview's census,
    discovery, clients."""
    from dashboard.census import get_census
    from dashboard.live.hub import get_hub
    from dashboard.monitor import get_monitor

    await get_monitor().stop()
    await get_census().stop()
    await get_hub().shutdown()
    await stop_background_work()
    await close_clients()


def dashboard_settings(url: str, **extra: Any) -> dict[str, Any]:
    """A BULLMQ_DASHBOARD dict pointing at a test Redis, over the settings module's own dict (so the host
    project keeps its BASE_TEMPLATE and LOGOUT_URL)."""
    # The module's own dict, not settings.BULLMQ_DASHBOARD, which an enclosing override may have replaced.
    module = import_module(os.environ["DJANGO_SETTINGS_MODULE"])
    own = dict(getattr(module, "BULLMQ_DASHBOARD", {}))
    # No background sampling while tests count Redis commands and keys; the sampling tests call it.
    quiet = {"THROUGHPUT": {**own.get("THROUGHPUT", {}), "SAMPLING": False}}
    return {**own, **quiet, "CONNECTIONS": {"default": {"URL": url}}, **extra}
