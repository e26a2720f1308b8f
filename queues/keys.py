"""Which names under a queue's key prefix are BullMQ's own keys, and which strings can be job ids.

A job's hash lives at `<prefix>:<name>:<job id>`, right beside the queue's own keys (`meta`, `events`,
`wait`, ...) and the keys that belong to other jobs (`<id>:logs`, `<id>:lock`, ...). A job id is text
someone else chose, so before a key is built from it the id is checked against those names: an id that
names one of them is not a job, whatever its key holds, and nothing of it is read or written.
"""

from __future__ import annotations

import re

from queues.messages import gettext_lazy

# The queue's own keys, as Node BullMQ 6 (QueueKeys.getKeys, metrics, schedulers) and older versions
# and Bull 3/4 (`priority`, `meta-paused`) name them. The empty name is the bare `<prefix>:<name>:`.
QUEUE_KEY_NAMES = frozenset(
    {
        "",
        "active",
        "wait",
        "waiting-children",
        "paused",
        "id",
        "delayed",
        "prioritized",
        "stalled-check",
        "completed",
        "failed",
        "stalled",
        "repeat",
        "limiter",
        "meta",
        "meta-paused",
        "events",
        "pc",
        "marker",
        "de",
        "dn",
        "priority",
        "metrics",
    }
)
# `<prefix>:<name>:<head>:...` keys that belong to the queue, not to a job: deduplication (`de:<id>`,
# `dn:<id>`) and throughput metrics (`metrics:completed`, `metrics:completed:data`).
QUEUE_KEY_HEADS = ("de:", "dn:", "metrics:")
# Keys that belong to a job `<id>`: its logs, lock and flow dependencies.
JOB_KEY_SUFFIXES = (":logs", ":lock", ":dependencies", ":processed", ":failed", ":unsuccessful")
# A job scheduler is the hash `repeat:<scheduler id>`; the jobs it makes are `repeat:<scheduler id>:<ms>`.
SCHEDULER_RUN = re.compile(r"repeat:.+:\d+", re.DOTALL)
INTEGER = re.compile(r"-?\d+")
# Longer ids are refused for new jobs: every key of a job repeats its id.
MAX_NEW_ID_LENGTH = 1024


def not_a_job(job_id: str) -> str | None:
    """Why `job_id` names a key that is not a job (one of the queue's own keys), or None."""
    if job_id in QUEUE_KEY_NAMES:
        return gettext_lazy("%(job)r is the name of one of the queue's own keys, not of a job.", job=job_id)
    if job_id.startswith(QUEUE_KEY_HEADS):
        return gettext_lazy(
            "%(job)r names a deduplication or metrics key of the queue, not a job.", job=job_id
        )
    if job_id.endswith(JOB_KEY_SUFFIXES):
        return gettext_lazy(
            "%(job)r names a key that belongs to another job (its logs, lock or children).", job=job_id
        )
    if job_id.startswith("repeat:") and not SCHEDULER_RUN.fullmatch(job_id):
        return gettext_lazy("%(job)r names a job scheduler, not a job.", job=job_id)
    return None


def new_job_id_problem(job_id: str) -> str | None:
    """Why `job_id` may not be given to a new job, or None.

    Node BullMQ refuses integer ids (they collide with the ids it generates from the `id` counter)
    and ids with `:`; ids that name the queue's own keys it accepts, and they break the queue (a job
    `active` turns the `active` list into a hash). All three are refused here.
    """
    if not job_id:
        return gettext_lazy("The job id is empty; leave it out to let BullMQ choose one.")
    if INTEGER.fullmatch(job_id):
        return gettext_lazy(
            "Job id %(job)r is an integer; BullMQ generates integer ids itself, so it could collide.",
            job=job_id,
        )
    if ":" in job_id:
        return gettext_lazy(
            "Job id %(job)r contains ':', which BullMQ does not allow in custom ids.", job=job_id
        )
    if len(job_id.encode("utf-8", "surrogatepass")) > MAX_NEW_ID_LENGTH:
        return gettext_lazy("Job ids are limited to %(limit)d bytes here.", limit=MAX_NEW_ID_LENGTH)
    return not_a_job(job_id)
