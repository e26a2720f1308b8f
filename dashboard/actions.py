"""The actions an operator can take, one spec each: what it acts on, the permission it needs, the states
it applies to, how its parameters are read, the work it runs and where that work can reach.

The views dispatch from this table only: an action name that is not in it is an error, never a
fall-through to another action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from queues.actions import (
    CLEANABLE_STATES,
    EDITABLE_STATES,
    PRIORITY_STATES,
    PROMOTABLE_STATES,
    RETRYABLE_STATES,
    CleanRequest,
    Invalid,
    NewJob,
    Outcome,
    Progress,
    QueueWriter,
    check_dedup_id,
    check_global_concurrency,
    check_json,
    check_priority,
    check_retry_state,
    job_options,
)
from queues.flows import FlowReach, job_reach, states_reach
from queues.messages import gettext_lazy, pgettext_lazy
from queues.models import QueueRef
from queues.states import STATES

ANY_STATE = tuple(STATES)
# What BullMQ's drain empties: wait, the legacy paused list (BullMQ < 5), prioritized, delayed unless kept.
DRAINED_STATES = ("waiting", "paused", "prioritized", "delayed")


class Scope(StrEnum):
    """What an action acts on."""

    JOB = "job"
    QUEUE = "queue"
    LIST = "list"


Params = dict[str, Any]
Work = Callable[[QueueWriter, Progress], Awaitable[Outcome]]
ReachCheck = Callable[[Redis], Awaitable[FlowReach]]


@dataclass(frozen=True)
class Prepared:
    """A validated action: the work to run, where its effects can reach through flows, and the
    parameters its audit entry keeps."""

    work: Work
    reach: ReachCheck | None = None
    audit_params: Params = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """What an action request names: the queue, the job (for job actions) and the parameters."""

    queue: QueueRef
    params: Params
    job_id: str = ""


@dataclass(frozen=True)
class ActionSpec:
    """One action: its API name, scope, permission codename, label, states, and its preparation."""

    name: str
    scope: Scope
    permission: str
    # The button's words: English (the permission's name says it so), translated where it is shown.
    label: str
    prepare: Callable[[Target], Prepared]
    states: tuple[str, ...] = ANY_STATE
    destructive: bool = False
    # Long work that runs in batches: a background operation with progress.
    background: bool = False


# ---- reading parameters (form fields or a JSON body; a wrong one is Invalid, a 400) ----


def integer(params: Params, name: str, default: int | None = None) -> int:
    """An integer parameter (Invalid when missing without default or not a number)."""
    value = params.get(name)
    if value in (None, ""):
        if default is None:
            raise Invalid(gettext_lazy("%(name)s is required.", name=name))
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid(gettext_lazy("%(name)s must be a whole number.", name=name))
    try:
        return int(value)
    except ValueError:
        raise Invalid(gettext_lazy("%(name)s must be a whole number.", name=name)) from None


def json_param(params: Params, name: str, default: Any = None) -> Any:
    """A JSON value: as given in a JSON body, or parsed from a form field (with the parse error)."""
    import json

    value = params.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        message = gettext_lazy(
            "%(name)s is not valid JSON: %(error)s at line %(line)d, column %(column)d.",
            name=name,
            error=exc.msg,
            line=exc.lineno,
            column=exc.colno,
        )
        raise Invalid(message) from None
    except RecursionError:
        raise Invalid(gettext_lazy("%(name)s is nested too deeply.", name=name)) from None


def flag(params: Params, name: str) -> bool:
    """A boolean parameter (true/1/on/yes)."""
    value = params.get(name)
    return value is True or str(value).lower() in {"1", "true", "on", "yes"}


def text_param(params: Params, name: str, default: str = "") -> str:
    """A string parameter."""
    value = params.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise Invalid(gettext_lazy("%(name)s must be a string.", name=name))
    return str(value)


def dedup_id_param(params: Params) -> str:
    """The deduplication id: `dedup_id` as given (a JSON body), or `dedup_id_quoted` percent-encoded (a
    form's hidden field: form encoding would change the id's line breaks on the way back)."""
    from urllib.parse import unquote

    quoted = params.get("dedup_id_quoted")
    if quoted is None:
        return text_param(params, "dedup_id")
    if not isinstance(quoted, str):
        raise Invalid(gettext_lazy("%(name)s must be a string.", name="dedup_id_quoted"))
    try:
        return unquote(quoted, errors="strict")
    except UnicodeDecodeError:
        raise Invalid(gettext_lazy("The deduplication id is not valid UTF-8.")) from None


def kept(params: Params, *names: str) -> Params:
    """The parameters an audit entry keeps (never job data: large or sensitive)."""
    return {name: params[name] for name in names if name in params}


# ---- flow reach ----


def _job_reach(target: Target, descendants: bool) -> ReachCheck:
    return lambda client: job_reach(client, target.queue, target.job_id, descendants=descendants)


def _states_reach(target: Target, states: tuple[str, ...]) -> ReachCheck:
    return lambda client: states_reach(client, target.queue, states)


# ---- preparations: validate now (a 400 before anything runs), return the work ----


def _retry(target: Target) -> Prepared:
    return Prepared(lambda w, _p: w.retry(target.job_id), _job_reach(target, descendants=False))


def _remove(target: Target) -> Prepared:
    children = not flag(target.params, "keep_children")
    return Prepared(
        lambda w, _p: w.remove(target.job_id, remove_children=children),
        _job_reach(target, descendants=children),
        {"keep_children": not children},
    )


def _promote(target: Target) -> Prepared:
    return Prepared(lambda w, _p: w.promote(target.job_id))


def _change_priority(target: Target) -> Prepared:
    priority = check_priority(integer(target.params, "priority"))
    return Prepared(lambda w, _p: w.change_priority(target.job_id, priority), None, {"priority": priority})


def _update_data(target: Target) -> Prepared:
    if "data" not in target.params:
        raise Invalid(gettext_lazy("%(name)s is required.", name="data"))
    data = json_param(target.params, "data")
    check_json(data)
    return Prepared(lambda w, _p: w.update_data(target.job_id, data))


def _duplicate(target: Target) -> Prepared:
    data = json_param(target.params, "data")
    if data is not None:
        check_json(data)
    new_id = text_param(target.params, "jobId") or None
    job_options({"jobId": new_id})  # a refused id is a 400 before anything is read
    return Prepared(
        lambda w, _p: w.duplicate(target.job_id, data, new_id), None, kept(target.params, "jobId")
    )


def _pause(target: Target) -> Prepared:
    return Prepared(lambda w, _p: w.pause())


def _resume(target: Target) -> Prepared:
    return Prepared(lambda w, _p: w.resume())


def _clean(target: Target) -> Prepared:
    request = CleanRequest(
        text_param(target.params, "state"), integer(target.params, "grace"), integer(target.params, "limit")
    )
    return Prepared(
        lambda w, progress: w.clean(request, progress),
        _states_reach(target, (request.state,)),
        {"state": request.state, "grace": request.grace_ms, "limit": request.limit},
    )


def _retry_all(target: Target) -> Prepared:
    state = check_retry_state(text_param(target.params, "state", "failed") or "failed")
    return Prepared(
        lambda w, progress: w.retry_all(state, progress), _states_reach(target, (state,)), {"state": state}
    )


def _promote_all(target: Target) -> Prepared:
    return Prepared(lambda w, progress: w.promote_all(progress))


def _drain(target: Target) -> Prepared:
    delayed = not flag(target.params, "keep_delayed")
    states = DRAINED_STATES if delayed else DRAINED_STATES[:3]
    return Prepared(
        lambda w, _p: w.drain(delayed), _states_reach(target, states), {"keep_delayed": not delayed}
    )


def _obliterate(target: Target) -> Prepared:
    if target.params.get("confirm") != target.queue.name:
        message = gettext_lazy(
            "Type the queue name (%(queue)s) to confirm obliterate.", queue=target.queue.name
        )
        raise Invalid(message)
    force = flag(target.params, "force")
    return Prepared(lambda w, _p: w.obliterate(force), _states_reach(target, ANY_STATE), {"force": force})


def _add(target: Target) -> Prepared:
    params = target.params
    opts = {
        key: params.get(key)
        for key in ("delay", "priority", "attempts", "jobId")
        if params.get(key) not in (None, "")
    }
    job = NewJob(text_param(params, "name").strip(), json_param(params, "data", {}), job_options(opts))
    return Prepared(lambda w, _p: w.add(job), None, {"name": job.name, **job.opts})


def _remove_scheduler(target: Target) -> Prepared:
    scheduler_id = text_param(target.params, "scheduler")
    if not scheduler_id:
        raise Invalid(gettext_lazy("%(name)s is required.", name="scheduler"))
    return Prepared(lambda w, _p: w.remove_scheduler(scheduler_id), None, {"scheduler": scheduler_id})


def _set_global_concurrency(target: Target) -> Prepared:
    concurrency = check_global_concurrency(integer(target.params, "concurrency", default=0))
    return Prepared(
        lambda w, _p: w.set_global_concurrency(concurrency), None, {"concurrency": concurrency or 0}
    )


def _remove_rate_limit_key(target: Target) -> Prepared:
    return Prepared(lambda w, _p: w.remove_rate_limit_key())


def _promote_oldest_delayed(target: Target) -> Prepared:
    return Prepared(lambda w, _p: w.promote_oldest_delayed())


def _release_deduplication(target: Target) -> Prepared:
    dedup_id = check_dedup_id(dedup_id_param(target.params))
    return Prepared(lambda w, _p: w.release_deduplication(dedup_id), None, {"dedup_id": dedup_id})


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            "retry", Scope.JOB, "retry_job", pgettext_lazy("action", "Retry"), _retry, RETRYABLE_STATES
        ),
        ActionSpec(
            "remove", Scope.JOB, "remove_job", pgettext_lazy("action", "Remove"), _remove, destructive=True
        ),
        ActionSpec(
            "promote",
            Scope.JOB,
            "promote_job",
            pgettext_lazy("action", "Promote"),
            _promote,
            PROMOTABLE_STATES,
        ),
        ActionSpec(
            "change_priority",
            Scope.JOB,
            "change_job_priority",
            pgettext_lazy("action", "Change priority"),
            _change_priority,
            PRIORITY_STATES,
        ),
        ActionSpec(
            "update_data",
            Scope.JOB,
            "update_job_data",
            pgettext_lazy("action", "Edit data"),
            _update_data,
            EDITABLE_STATES,
        ),
        ActionSpec("duplicate", Scope.JOB, "duplicate_job", pgettext_lazy("action", "Duplicate"), _duplicate),
        ActionSpec("pause", Scope.QUEUE, "pause_queue", pgettext_lazy("action", "Pause"), _pause),
        ActionSpec("resume", Scope.QUEUE, "resume_queue", pgettext_lazy("action", "Resume"), _resume),
        ActionSpec(
            "clean",
            Scope.QUEUE,
            "clean_queue",
            pgettext_lazy("action", "Clean"),
            _clean,
            destructive=True,
            background=True,
        ),
        ActionSpec(
            "retry_all",
            Scope.QUEUE,
            "retry_all_jobs",
            pgettext_lazy("action", "Retry all failed"),
            _retry_all,
            background=True,
        ),
        ActionSpec(
            "promote_all",
            Scope.QUEUE,
            "promote_all_jobs",
            pgettext_lazy("action", "Promote all delayed"),
            _promote_all,
            background=True,
        ),
        ActionSpec(
            "drain",
            Scope.QUEUE,
            "drain_queue",
            pgettext_lazy("action", "Drain"),
            _drain,
            destructive=True,
            background=True,
        ),
        ActionSpec(
            "obliterate",
            Scope.QUEUE,
            "obliterate_queue",
            pgettext_lazy("action", "Obliterate"),
            _obliterate,
            destructive=True,
            background=True,
        ),
        ActionSpec("add", Scope.QUEUE, "add_job", pgettext_lazy("action", "Add job"), _add),
        ActionSpec(
            "remove_scheduler",
            Scope.QUEUE,
            "remove_job_scheduler",
            pgettext_lazy("action", "Remove scheduler"),
            _remove_scheduler,
            destructive=True,
        ),
        # The fixes the health panel offers next to their causes (issue 15).
        ActionSpec(
            "set_global_concurrency",
            Scope.QUEUE,
            "set_global_concurrency",
            pgettext_lazy("action", "Change global concurrency"),
            _set_global_concurrency,
        ),
        ActionSpec(
            "remove_rate_limit_key",
            Scope.QUEUE,
            "release_rate_limit",
            pgettext_lazy("action", "Release rate limit"),
            _remove_rate_limit_key,
        ),
        ActionSpec(
            "promote_oldest_delayed",
            Scope.QUEUE,
            "promote_oldest_delayed",
            pgettext_lazy("action", "Promote oldest delayed"),
            _promote_oldest_delayed,
        ),
        ActionSpec(
            "release_deduplication",
            Scope.QUEUE,
            "release_deduplication",
            pgettext_lazy("action", "Release deduplication id"),
            _release_deduplication,
        ),
    )
}

JOB_ACTIONS = tuple(name for name, spec in ACTIONS.items() if spec.scope is Scope.JOB)
QUEUE_ACTIONS = tuple(name for name, spec in ACTIONS.items() if spec.scope is Scope.QUEUE)
# What a bulk selection can do: the job action each selected id gets, and for "all N in this state"
# the queue action that does it (with its own, queue-level permission).
BULK_ACTIONS = ("retry", "remove", "promote")
BULK = "bulk"
MAX_SELECTED = 10_000


def bulk_all(sub_action: str, state: str) -> tuple[ActionSpec, Params]:
    """The queue action and parameters that apply a bulk action to every job of a state."""
    if sub_action == "retry" and state in RETRYABLE_STATES:
        return ACTIONS["retry_all"], {"state": state}
    if sub_action == "promote" and state == "delayed":
        return ACTIONS["promote_all"], {}
    if sub_action == "remove" and state in CLEANABLE_STATES:
        return ACTIONS["clean"], {"state": state, "grace": 0, "limit": 0}
    raise Invalid(
        gettext_lazy("Cannot %(action)s all %(state)s jobs.", action=sub_action, state=state or "?")
    )


def selected_ids(params: Params, *, encoded: bool) -> list[str]:
    """The selected job ids: a JSON list of ids, or form fields `ids` holding percent-encoded ids (so
    that HTML attribute and form newline rules cannot change an id on its way back)."""
    from urllib.parse import unquote

    raw = params.get("ids") or []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise Invalid(gettext_lazy("ids must be a list of job ids (strings)."))
    if encoded:
        try:
            raw = [unquote(item, errors="strict") for item in raw]
        except UnicodeDecodeError:
            raise Invalid(gettext_lazy("A selected job id is not valid UTF-8.")) from None
    ids = list(dict.fromkeys(raw))
    if len(ids) > MAX_SELECTED:
        raise Invalid(
            gettext_lazy("Select at most %(limit)s jobs, or use “all matching”.", limit=f"{MAX_SELECTED:,}")
        )
    if any(not job_id for job_id in ids):
        raise Invalid(gettext_lazy("A selected job id is empty."))
    return ids


PERMISSIONS: list[tuple[str, Any]] = [
    (spec.permission, f"Can {spec.label.lower()} ({spec.scope})") for spec in ACTIONS.values()
]
