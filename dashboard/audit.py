"""Recording actions: one AuditEntry row and one line on the `dashboard.audit` logger each."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

from dashboard.models import AuditEntry
from queues.models import QueueRef

logger = logging.getLogger("dashboard.audit")
MAX_IDS = 1000


async def record(
    request: HttpRequest,
    user: Any,
    action: str,
    queue: QueueRef | None,
    result: str,
    message: str,
    *,
    job_ids: list[str] | tuple[str, ...] = (),
    count: int = 0,
    skipped: int = 0,
    params: dict[str, Any] | None = None,
) -> AuditEntry:
    """Store and log one action or refusal."""
    authenticated = bool(getattr(user, "is_authenticated", False))
    entry = await AuditEntry.objects.acreate(
        user=user if authenticated else None,
        username=user.get_username() if authenticated else "",
        action=action[:40],
        connection=queue.connection if queue else "",
        queue=queue.key if queue else "",
        job_ids=list(job_ids)[:MAX_IDS],
        count=count,
        skipped=skipped,
        result=result,
        message=message[:2000],
        params=params or {},
        remote_addr=request.META.get("REMOTE_ADDR") or None,
    )
    logger.info(
        "%s %s %s %s: %s",
        entry.username or "anonymous",
        action,
        entry.queue or "-",
        result,
        message,
        extra={"audit": {"id": entry.pk, "job_ids": entry.job_ids, "count": count, "skipped": skipped}},
    )
    return entry
