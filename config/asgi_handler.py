"""Django's ASGI handler, keeping the threads that run each request's sync code instead of starting one.

Django gives every request its own thread for sync work (session and user loads, template rendering,
signals) and joins it when the request ends; starting and joining that thread cost about 0.4 ms per
request here, a tenth of a job list page. This handler lends each request an idle single-thread
executor from a pool, so requests keep their own thread while they run (as Django intends: one slow
query does not hold up another request) and the thread outlives them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

# Idle executors kept for the next requests; more concurrent requests than this start (and later
# stop) extra threads, as Django would for every request.
MAX_IDLE_THREADS = 16


class ThreadPoolASGIHandler(ASGIHandler):
    """ASGIHandler whose per-request sync thread comes from a pool of idle single-thread executors."""

    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one HTTP request with a borrowed executor for its thread-sensitive code."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # Django's own error for other protocols
            return
        executor = self._idle.pop() if self._idle else self._new_executor()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < MAX_IDLE_THREADS:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    @staticmethod
    def _new_executor() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-request")
