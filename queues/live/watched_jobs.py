"""Reads of the jobs viewers watch: each job's detail with the last page of its logs, and a cheap
look at whether its logs moved (adding a log line writes no event)."""

from __future__ import annotations

from dataclasses import replace

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from queues.jobs import LOG_MARK, ReadLimits, fetch_job, fetch_logs
from queues.live.interest import JobRef
from queues.models import JobDetail, NotAJob
from queues.parsing import integer, text
from queues.scripts import run_pipeline


class WatchedJobs:
    """What the last reads found of each watched job: its state, and where its logs ended."""

    def __init__(self, limits: ReadLimits) -> None:
        self._limits = limits
        # The state each job had when last read; None once it no longer exists.
        self._states: dict[JobRef, str | None] = {}
        # The line count of each job's logs and the digest of its last line (None right after a read).
        self._log_marks: dict[JobRef, tuple[int, str | None]] = {}

    def known(self) -> set[JobRef]:
        """Jobs something is kept of."""
        return {*self._states, *self._log_marks}

    def forget(self, job: JobRef) -> None:
        """Drop what is kept of a job no longer watched."""
        self._states.pop(job, None)
        self._log_marks.pop(job, None)

    def polled(self, jobs: list[JobRef]) -> list[JobRef]:
        """Those of these jobs that are being processed (or were never read): their logs are polled."""
        return [job for job in jobs if job not in self._states or self._states[job] == "active"]

    async def logs_moved(self, client: Redis, jobs: list[JobRef]) -> list[JobRef]:
        """Jobs whose log length or last line changed since the last look (one round trip)."""
        copy_bytes = self._limits.copy_bytes

        def build(pipe: Pipeline) -> None:
            for job in jobs:
                LOG_MARK.queue(pipe, [f"{job.queue.job_key(job.job_id)}:logs"], [copy_bytes])

        # A logs key of another type answers no lines, not a failed refresh of every watched queue.
        replies = await run_pipeline(client, build, [LOG_MARK], per_command_errors=True)
        moved = []
        for job, reply in zip(jobs, replies, strict=True):
            count, digest = (
                (0, "") if isinstance(reply, Exception) else (integer(reply[0]) or 0, text(reply[1]))
            )
            previous = self._log_marks.get(job)
            # After a read of the job only its line count is known (lines are cut there, so their
            # digest would differ): compare the count, then digests from the next look on.
            if previous is not None and (
                previous[0] != count or (previous[1] is not None and previous[1] != digest)
            ):
                moved.append(job)
            self._log_marks[job] = (count, digest)
        return moved

    async def read(self, client: Redis, job: JobRef) -> JobDetail | None:
        """A watched job with the last page of its logs (the page a follower looks at)."""
        limits = self._limits
        count = self._log_marks.get(job, (0, None))[0]
        last_page = max(1, -(-count // limits.log_page_size))
        try:
            detail = await fetch_job(client, job.queue, job.job_id, limits, last_page)
        except NotAJob:  # a socket opened for a key that is no job: it shows "removed", nothing else
            detail = None
        if detail is None:
            self._states[job] = None
            return None
        if detail.logs.pages != detail.logs.page:
            logs = await fetch_logs(client, job.queue, job.job_id, detail.logs.pages, limits)
            detail = replace(detail, logs=logs)
        self._states[job] = detail.state
        self._log_marks[job] = (detail.logs.count, None)
        return detail
