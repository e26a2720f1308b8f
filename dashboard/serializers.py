"""The JSON shapes of the API, built from the `queues` models; sentences (problems) in the active language."""

from __future__ import annotations

from typing import Any

from dashboard import links
from dashboard.flow_tree import ShownNode, ShownTree, in_flow
from dashboard.translation import translated
from queues import kinds
from queues.activity import Activity
from queues.error_groups import ErrorGroups
from queues.health import Verdict
from queues.jobs import resolve_job_key
from queues.latency import Percentiles
from queues.models import ChildRef, JobDetail, JobPage, JobSummary, JsonValue, QueueCounts, QueueRef
from queues.schedulers import Scheduler, SchedulerPage
from queues.throughput import RecordedMetrics
from queues.workers import HeldJob, QueueWorkers, WorkerReport


def queue_json(counts: QueueCounts) -> dict[str, Any]:
    """One queue with its counts; `problem` says what is wrong with its keys (or null)."""
    queue = counts.queue
    return {
        "name": queue.name,
        "prefix": queue.prefix,
        "connection": queue.connection,
        "key": queue.key,
        # "bull" for a queue of the older npm `bull` (3/4), whose key layout and actions differ; "mixed"
        # for one holding keys only Bull writes beside keys only BullMQ writes (read, never acted on).
        "kind": "mixed" if kinds.is_mixed(queue) else "bull" if kinds.is_bull(queue) else "bullmq",
        "paused": counts.paused,
        # null when the queue could not be read, and per state whose key is of another type than
        # BullMQ's: a monitor reading only the numbers must not take "unknown" for 0.
        "counts": None
        if counts.error
        else {state: None if state in counts.broken_states else n for state, n in counts.counts.items()},
        # finishedOn (ms) of the newest failed job, and the failures of the hour before the read (jobs
        # removed on failure are not counted); null when the failed list could not be read.
        "lastFailedAt": counts.last_failed_at,
        "failedLastHour": counts.failed_last_hour,
        "problem": translated(counts.problem) or None,
        "api_url": links.queue_api_url(queue),
        "html_url": links.queue_url(queue),
        "health_url": links.health_api_url(queue),
    }


def health_json(verdict: Verdict) -> dict[str, Any]:
    """A queue's health verdict: `verdict` (healthy, degraded, stuck, idle), its reasons (code, the
    sentence in the active language, since when in ms or null, the value) and when it was checked (ms)."""
    return {
        "verdict": verdict.verdict.value,
        "reasons": [
            {
                "code": reason.code.value,
                "message": translated(reason.message),
                "since": reason.since,
                "value": reason.value,
            }
            for reason in verdict.reasons
        ],
        "checked_at": verdict.checked_at,
    }


def queue_detail_json(counts: QueueCounts, actions: dict[str, str]) -> dict[str, Any]:
    """A queue, its counts, its jobs URL and the actions this user may take on it."""
    return {
        **queue_json(counts),
        "jobs_url": links.jobs_api_url(counts.queue),
        "search_url": links.search_api_url(counts.queue),
        "workers_url": links.workers_api_url(counts.queue),
        "schedulers_url": links.schedulers_api_url(counts.queue),
        "metrics_url": links.queue_metrics_api_url(counts.queue),
        "error_groups_url": links.error_groups_api_url(counts.queue),
        "actions": actions,
    }


def summary_json(job: JobSummary, api_url: str | None) -> dict[str, Any]:
    """One row of a job list; a row that is not a job says why, and has no URL."""
    if job.problem:
        return {"id": job.id, "problem": translated(job.problem), "api_url": None}
    return {
        "id": job.id,
        "name": job.name,
        "timestamp": job.timestamp,
        "processedOn": job.processed_on,
        "finishedOn": job.finished_on,
        "attemptsMade": job.attempts_made,
        "failedReason": job.failed_reason,
        "progress": job.progress,
        "api_url": api_url,
    }


def page_json(page: JobPage) -> dict[str, Any]:
    """A page of a state's jobs."""
    api_url = links.job_api_urls(page.queue)
    return {
        "state": page.state,
        "problem": translated(page.problem) or None,
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
        "pages": page.pages,
        "jobs": [summary_json(job, None if job.problem else api_url(job.id)) for job in page.jobs],
    }


def json_field(value: JsonValue) -> Any:
    """The parsed value, or the raw stored string where it is not (complete) valid JSON."""
    return value.parsed if value.is_valid else value.raw.value


def detail_json(job: JobDetail, known: list[QueueRef], actions: dict[str, str]) -> dict[str, Any]:
    """The full job."""
    queue = job.queue
    return {
        "id": job.id,
        "name": job.name,
        "queue": queue.key,
        "state": job.state,
        "data": json_field(job.data),
        "opts": json_field(job.opts),
        "returnvalue": json_field(job.returnvalue) if job.returnvalue else None,
        "progress": job.progress,
        "timestamp": job.timestamp,
        "processedOn": job.processed_on,
        "finishedOn": job.finished_on,
        "delay": job.delay,
        "priority": job.priority,
        "attemptsMade": job.attempts_made,
        "attemptsStarted": job.attempts_started,
        "attempts": job.attempts_allowed,
        "failedReason": job.failed_reason.value if job.failed_reason else None,
        "stacktrace": job.stacktrace if job.stacktrace_raw is None else [job.stacktrace_raw.value],
        "processedBy": job.processed_by or None,
        "logs": {"count": job.logs.count, "items": job.logs.items, "notRead": job.logs.not_read},
        "parent": parent_json(job, known),
        "children": [child_json(child, known) for child in job.children],
        "childrenCounts": job.children_counts,
        "truncated": {
            name: {
                "size": value.size,
                "read": not value.unread,
                "raw_url": links.raw_field_url(queue, job.id, name),
            }
            for name, value in job.fields.items()
            if value.truncated
        },
        "childrenNotListed": job.children_not_listed,
        "extra": {name: value.value for name, value in job.extra_fields.items()},
        "hiddenFields": job.hidden_fields,
        "actions": actions,
        "api_url": links.job_api_url(queue, job.id),
        "html_url": links.job_url(queue, job.id),
        "flow_url": links.flow_api_url(queue, job.id) if in_flow(job) else None,
    }


def parent_json(job: JobDetail, known: list[QueueRef]) -> dict[str, Any] | None:
    """The flow parent (its key, as BullMQ follows it), with its id and links when it can be linked."""
    if job.parent is None:
        return None
    result: dict[str, Any] = {"key": job.parent.job_key}
    resolved = resolve_job_key(known, job.parent.job_key) if job.parent.addressable else None
    if resolved is not None:
        queue, job_id = resolved
        result.update(
            id=job_id,
            queueKey=queue.key,
            api_url=links.job_api_url(queue, job_id),
            html_url=links.job_url(queue, job_id),
        )
    return result


def child_json(child: ChildRef, known: list[QueueRef]) -> dict[str, Any]:
    """A flow child with links when its queue is known and its key can be linked."""
    result: dict[str, Any] = {
        "key": child.job_key,
        "processed": child.processed,
        "failed": child.failed,
        "ignored": child.ignored,
    }
    resolved = resolve_job_key(known, child.job_key) if child.addressable else None
    if resolved is not None:
        queue, job_id = resolved
        result.update(
            id=job_id,
            queueKey=queue.key,
            api_url=links.job_api_url(queue, job_id),
            html_url=links.job_url(queue, job_id),
        )
    return result


def held_job_json(queue: QueueRef, job: HeldJob) -> dict[str, Any]:
    """An active job a worker holds (its `pb` names the worker)."""
    return {
        "id": job.id,
        "name": job.name,
        "processedBy": job.processed_by or None,
        "processedOn": job.processed_on,
        "api_url": links.job_api_url(queue, job.id) if job.addressable else None,
    }


def queue_workers_json(report: WorkerReport, found: QueueWorkers) -> dict[str, Any]:
    """A queue's workers from one CLIENT LIST: `problem` when it was refused, `capped` when its answer
    was larger than what is read."""
    queue = found.queue
    return {
        "queue": queue.key,
        "connection": queue.connection,
        "problem": translated(report.problem or found.problem) or None,
        "capped": report.capped,
        "active": found.active,
        "activeNotRead": found.active_not_read,
        "workers": [
            {
                "name": worker.name or None,
                "clientName": worker.client_name,
                "clientId": worker.client_id,
                "address": worker.address,
                "ageSeconds": worker.age_seconds,
                "idleSeconds": worker.idle_seconds,
                "library": worker.library or None,
                "jobs": [held_job_json(queue, job) for job in worker.jobs],
            }
            for worker in found.workers
        ],
        "otherActiveJobs": [held_job_json(queue, job) for job in found.other_jobs],
        "html_url": links.workers_url(queue),
    }


def scheduler_json(queue: QueueRef, scheduler: Scheduler, remove_url: str | None) -> dict[str, Any]:
    """One job scheduler (or legacy repeatable) as Node's getJobSchedulers names its fields."""
    return {
        "key": scheduler.id,
        "kind": scheduler.kind,
        "name": scheduler.name,
        "next": scheduler.next_millis,
        "pattern": scheduler.pattern or None,
        "every": scheduler.every,
        "tz": scheduler.tz or None,
        "limit": scheduler.limit,
        "iterationCount": scheduler.iterations,
        "startDate": scheduler.start_date,
        "endDate": scheduler.end_date,
        "offset": scheduler.offset,
        "template": {
            "data": json_field(scheduler.data) if scheduler.data else None,
            "opts": json_field(scheduler.opts) if scheduler.opts else None,
        },
        "latestJob": {
            "id": scheduler.latest_job,
            "state": scheduler.latest_state,
            "api_url": links.job_api_url(queue, scheduler.latest_job),
        }
        if scheduler.latest_job
        else None,
        "problem": translated(scheduler.problem) or None,
        "remove_url": remove_url if scheduler.removable else None,
    }


def schedulers_json(page: SchedulerPage, remove_url: str | None) -> dict[str, Any]:
    """A page of a queue's schedulers, soonest next run first."""
    return {
        "queue": page.queue.key,
        "problem": translated(page.problem) or None,
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
        "pages": page.pages,
        "cut": page.cut,
        "schedulers": [scheduler_json(page.queue, each, remove_url) for each in page.schedulers],
        "html_url": links.schedulers_url(page.queue),
    }


def flow_node_json(shown: ShownNode) -> dict[str, Any]:
    """One node of a flow tree and its children; a node this user may not open has its key alone."""
    node = shown.node
    result: dict[str, Any] = {
        "key": node.key,
        "relation": node.relation,
        "current": node.current,
        "id": None,
        "queueKey": None,
        "name": None,
        "state": None,
        "counts": None,
        "more": 0,
        "problem": translated(shown.problem) or None,
        "html_url": None,
        "api_url": None,
        "flow_url": None,
        "children": [flow_node_json(child) for child in shown.children],
    }
    if shown.visible and shown.queue is not None:
        result.update(
            id=shown.job_id,
            queueKey=shown.queue.key,
            name=node.name if not node.name_unread else None,
            state=node.state,
            counts=node.counts,
            more=shown.more,
            html_url=shown.html_url,
            api_url=shown.api_url,
            flow_url=shown.flow_api_url,
        )
    return result


def flow_json(shown: ShownTree) -> dict[str, Any]:
    """A job's whole flow from its root, and which bounds the read reached."""
    tree = shown.tree
    current = shown.current
    return {
        "id": current.job_id,
        "queueKey": current.queue.key if current.queue is not None else None,
        "html_url": current.flow_url,
        "nodes": tree.node_count,
        "root": flow_node_json(shown.root),
        "rootParent": (
            {"key": tree.dangling_key or None, "shape": tree.dangling_shape} if tree.dangling_shape else None
        ),
        "truncated": {
            "ancestors": tree.ancestors_cut,
            "cycle": tree.cycle,
            "nodes": tree.nodes_cut,
            "bytes": tree.budget_spent,
            "stateSearch": tree.scan_spent,
        },
    }


def error_groups_json(result: ErrorGroups, actions: dict[str, str]) -> dict[str, Any]:
    """A queue's failed jobs grouped by fingerprint: each group with its count, first and last seen
    (finishedOn, ms), a sample job, and the actions on the whole group (POST `fingerprint` there);
    `scanned` failed jobs were read of `total`, the newest `bound` at most (`bound_hit` when there are
    more)."""
    queue = result.queue
    api_url = links.job_api_urls(queue)
    groups = []
    for group in result.groups:
        sample = None
        if group.sample is not None:
            sample = summary_json(group.sample, None if group.sample.problem else api_url(group.sample.id))
            sample["html_url"] = None if group.sample.problem else links.job_url(queue, group.sample.id)
            sample["stacktrace"] = group.sample_trace or None
        groups.append(
            {
                "fingerprint": group.fingerprint,
                "count": group.count,
                "first_seen": group.first_seen,
                "last_seen": group.last_seen,
                "sample": sample,
                "exception": group.exception or None,
                "message": group.message,
                "frame": group.frame or None,
                "grouped_by_reason_only": group.partial,
                "not_addressable": group.unaddressable,
                "html_url": links.error_group_url(queue, group.fingerprint),
                "actions": dict(actions),
            }
        )
    return {
        "queue": queue.key,
        "connection": queue.connection,
        "groups": groups,
        "more_groups": result.more_groups,
        "more_jobs": result.more_jobs,
        "scanned": result.scanned,
        "total": result.total,
        "bound": result.bound,
        "bound_hit": result.bound_hit,
        "problem": translated(result.problem) or None,
    }


def _recorded_json(recorded: RecordedMetrics | None) -> dict[str, Any] | None:
    if recorded is None:
        return None
    return {
        "count": recorded.count,
        "prevTS": recorded.prev_ts,
        "prevCount": recorded.prev_count,
        "dataLength": recorded.length,
        "dataStart": recorded.first_index,
        # The list's points from dataStart on, newest first, as Node's getMetrics(type, start, end) has them.
        "data": list(recorded.points),
    }


def _percentiles_json(found: Percentiles | None) -> dict[str, int] | None:
    if found is None:
        return None
    return {"p50": found.p50, "p90": found.p90, "p99": found.p99, "jobs": found.count}


def queue_metrics_json(activity: Activity, sampling_unavailable: str) -> dict[str, Any]:
    """A queue's throughput over a window (buckets of `bucketMinutes`, null where nobody counted) and its
    latency: the age of the job next in line and percentiles of the newest completed jobs (ms)."""
    throughput, latency = activity.throughput, activity.latency
    queue = throughput.queue
    return {
        "queue": queue.key,
        "window": throughput.window.name,
        "bucketMinutes": throughput.window.bucket_minutes,
        "from": throughput.first_minute,
        "to": throughput.last_minute + 60_000,
        # "bullmq": the workers' own metrics; "sampled": the dashboard's samples; "none": no history yet.
        "source": throughput.source,
        "sampledSince": throughput.sampled_since,
        "stale": throughput.stale,
        "samplingUnavailable": translated(sampling_unavailable) or None,
        "completed": throughput.completed_total,
        "failed": throughput.failed_total,
        "countedMinutes": throughput.counted_minutes,
        "buckets": [
            {
                "start": bucket.start_ms,
                "completed": bucket.completed,
                "failed": bucket.failed,
                "lowerBound": bucket.lower_bound,
            }
            for bucket in throughput.buckets
        ],
        "bullmq": {
            "completed": _recorded_json(throughput.completed_metrics),
            "failed": _recorded_json(throughput.failed_metrics),
        },
        "oldestWaitingSince": latency.oldest_waiting_since,
        "oldestWaitingMs": latency.oldest_waiting_ms,
        "recentJobs": latency.jobs_read,
        "processingMs": _percentiles_json(latency.processing),
        "waitMs": _percentiles_json(latency.waiting),
        "problems": [translated(problem) for problem in (*throughput.problems, latency.problem) if problem],
        "html_url": links.queue_metrics_url(queue, throughput.window.name),
    }
