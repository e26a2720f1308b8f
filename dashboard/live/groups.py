"""Channels group names: valid (ASCII letters, digits, `-_.`, under 100 characters) and per process.

Each process runs its own watcher, so its groups carry a token of the process: with a channel layer
shared by several daphne processes (channels-redis) a viewer hears only its own process's watcher,
never the same update once per process. What is pushed is rendered in the language of the page that
opened the socket, so every group but the session's is per language (`in_language`).
"""

from __future__ import annotations

import functools
import hashlib
import secrets

from queues.events import JobRef
from queues.models import QueueRef

PROCESS_TOKEN = secrets.token_hex(6)
PREFIX = f"bullmq-dashboard-live.{PROCESS_TOKEN}"


@functools.lru_cache(maxsize=65536)
def digest(*parts: str, length: int = 20) -> str:
    """A short hex digest of some strings (names may hold any character; group names may not)."""
    return hashlib.sha1("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:length]


def everyone_group() -> str:
    """Every live viewer of this process (Redis status banners)."""
    return f"{PREFIX}.all"


def overview_group() -> str:
    """Viewers of the overview."""
    return f"{PREFIX}.overview"


def queue_group(queue: QueueRef) -> str:
    """Viewers of one queue's page."""
    return f"{PREFIX}.q.{digest(queue.connection, queue.key)}"


def job_group(job: JobRef) -> str:
    """Viewers of one job's page."""
    return f"{PREFIX}.j.{digest(job.queue.connection, job.queue.key, job.job_id)}"


def session_group(session_key: str) -> str:
    """Every socket of one login session, in every process (a logout closes them all)."""
    return f"bullmq-dashboard-live.session.{digest(session_key)}"


def in_language(group: str, language: str) -> str:
    """The group of the viewers of `group` whose pages are in `language` (a language code)."""
    return f"{group}.{digest(language, length=8)}" if language else group
