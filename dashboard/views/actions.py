"""Action endpoints: POST only, CSRF-checked, permission-checked on the server, audited, then BullMQ."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.template.response import TemplateResponse
from django.views.decorators.csrf import csrf_exempt
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard import audit, links, operations, registry
from dashboard.actions import ACTIONS, BULK_ACTIONS, JOB_ACTIONS, QUEUE_ACTIONS
from dashboard.conf import get_config
from dashboard.permissions import ahas_permission, read_only
from dashboard.registry import UnknownConnection, UnknownQueue
from queues.actions import CLEANABLE_STATES, Conflict, Invalid, Outcome, QueueWriter, writer
from queues.models import QueueRef

# How long a request waits for a long action before answering 202 with a progress URL.
WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Answer:
    """The result of an action request, before it is rendered as JSON or a toast."""

    status: int
    action: str
    message: str
    done: int = 0
    skipped: int = 0
    operation: operations.Operation | None = None
    redirect: str = ""

    @property
    def ok(self) -> bool:
        """2xx."""
        return self.status < 300


class Refusal(Exception):
    """An action refused before anything was written; carries its HTTP status."""

    def __init__(self, status: int, message: str, result: str = "refused") -> None:
        super().__init__(message)
        self.status = status
        self.result = result


def _csrf_failure(request: HttpRequest) -> str | None:
    """The CSRF rejection reason, checked here (not by middleware) so refusals are audited too."""
    response = CsrfViewMiddleware(lambda _request: HttpResponse()).process_view(
        request, lambda _request: HttpResponse(), (), {}
    )
    return None if response is None else "CSRF verification failed."


def params_of(request: HttpRequest) -> dict[str, Any]:
    """Form fields or a JSON object body."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise Refusal(400, f"The request body is not valid JSON: {exc}", "invalid") from exc
        if not isinstance(body, dict):
            raise Refusal(400, "The JSON body must be an object.", "invalid")
        return body
    params: dict[str, Any] = {key: request.POST.get(key) for key in request.POST}
    if "ids" in request.POST:
        params["ids"] = request.POST.getlist("ids")
    return params


def integer(params: dict[str, Any], name: str, default: int | None = None) -> int:
    """An integer parameter (400 when missing without default or not a number)."""
    value = params.get(name)
    if value in (None, ""):
        if default is None:
            raise Invalid(f"{name} is required.")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be a whole number.") from None


def json_param(params: dict[str, Any], name: str, default: Any = None) -> Any:
    """A JSON value: as given in a JSON body, or parsed from a form field (with the parse error)."""
    value = params.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise Invalid(
            f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None


def job_ids(params: dict[str, Any]) -> list[str]:
    """Selected job ids: a JSON list, repeated form fields, or one comma-separated string."""
    raw = params.get("ids") or []
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part]
    if not isinstance(raw, list) or not all(isinstance(item, str | int) for item in raw):
        raise Invalid("ids must be a list of job ids.")
    ids = list(dict.fromkeys(str(item) for item in raw))
    if len(ids) > 10_000:
        raise Invalid("Select at most 10,000 jobs, or use “all matching”.")
    return ids


def for_audit(params: dict[str, Any], *dropped: str) -> dict[str, Any]:
    """The parameters an audit entry keeps: never the CSRF token, nor `dropped` (job data: large or
    sensitive; bulk ids: the outcome lists those done)."""
    return {key: value for key, value in params.items() if key not in {"csrfmiddlewaretoken", *dropped}}


def unknown_action(kind: str, action: str) -> JsonResponse:
    """404 for an action name the URL made up."""
    return JsonResponse(
        {"ok": False, "action": action, "message": f"Unknown {kind} action {action!r}."}, status=404
    )


def flag(params: dict[str, Any], name: str) -> bool:
    """A boolean parameter (true/1/on/yes)."""
    value = params.get(name)
    return value is True or str(value).lower() in {"1", "true", "on", "yes"}


async def _guard(request: HttpRequest, action: str, connection: str, queue_key: str) -> tuple[Any, QueueRef]:
    """Refuse (405, 401, 403 CSRF, 404, 403 read-only or permission) or return the user and queue."""
    if request.method != "POST":
        raise Refusal(405, f"{action} needs a POST.")
    user = await request.auser()
    if not user.is_authenticated:
        raise Refusal(401, "Log in to take actions.")
    reason = _csrf_failure(request)
    if reason:
        raise Refusal(403, reason)
    try:
        queue = await registry.find_queue(connection, queue_key)
    except (UnknownQueue, UnknownConnection):
        raise Refusal(404, f"No queue {queue_key} on connection {connection}.") from None
    if read_only(queue):
        raise Refusal(403, f"{queue.key} is read-only here.")
    if not await ahas_permission(user, action, queue):
        raise Refusal(403, f"You may not {ACTIONS[action].label.lower()} on {queue.key}.")
    return user, queue


async def _refused(
    request: HttpRequest, action: str, queue_key: str, connection: str, refusal: Refusal
) -> HttpResponse:
    user = await request.auser()
    try:
        queue: QueueRef | None = QueueRef.from_key(connection, queue_key)
    except ValueError:
        queue = None
    await audit.record(
        request, user, action, queue, refusal.result, str(refusal), params={"status": refusal.status}
    )
    answer = Answer(refusal.status, action, str(refusal))
    response = render(request, answer)
    if refusal.status == 405:
        response["Allow"] = "POST"
    return response


def render(request: HttpRequest, answer: Answer) -> HttpResponse:
    """JSON for API clients; a toast (and a refresh event) for htmx."""
    if not getattr(request, "htmx", False):
        body: dict[str, Any] = {
            "ok": answer.ok,
            "action": answer.action,
            "done": answer.done,
            "skipped": answer.skipped,
            "message": answer.message,
        }
        if answer.operation is not None:
            body["operation_url"] = links.operation_url(answer.operation.id)
        return JsonResponse(body, status=answer.status)
    if answer.redirect and answer.ok:
        return HttpResponseClientRedirect(answer.redirect)
    response = TemplateResponse(
        request, "dashboard/partials/toast.html", {"answer": answer}, status=answer.status
    )
    response["HX-Retarget"] = "#toasts"
    response["HX-Reswap"] = "afterbegin"
    if answer.ok and answer.operation is None:
        trigger_client_event(response, "dashboard:changed", {"action": answer.action})
    return response


async def _finish(
    request: HttpRequest, user: Any, action: str, queue: QueueRef, outcome: Outcome, params: dict[str, Any]
) -> None:
    await audit.record(
        request,
        user,
        action,
        queue,
        "done",
        outcome.message,
        job_ids=outcome.job_ids,
        count=outcome.done,
        skipped=outcome.skipped,
        params=params,
    )


@csrf_exempt  # checked in _guard, so that a CSRF refusal is audited like every other refusal
async def job_action(
    request: HttpRequest, connection: str, queue_key: str, action: str, job_id: str
) -> HttpResponse:
    """retry, remove, promote, change_priority, update_data or duplicate one job."""
    if action not in JOB_ACTIONS:
        return unknown_action("job", action)
    try:
        user, queue = await _guard(request, action, connection, queue_key)
        params = params_of(request)
    except Refusal as refusal:
        return await _refused(request, action, queue_key, connection, refusal)
    settings = get_config().connections[connection]
    audit_params = for_audit(params, "data")
    try:
        async with writer(settings, queue) as queue_writer:
            outcome = await _run_job_action(queue_writer, action, job_id, params)
    except (Conflict, Invalid) as exc:
        result, status = ("conflict", 409) if isinstance(exc, Conflict) else ("invalid", 400)
        await audit.record(
            request, user, action, queue, result, str(exc), job_ids=[job_id], params=audit_params
        )
        return render(request, Answer(status, action, str(exc)))
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        await audit.record(
            request, user, action, queue, "failed", f"Redis unreachable: {exc}", job_ids=[job_id]
        )
        return render(request, Answer(503, action, "Redis is unreachable; nothing was changed."))
    await _finish(request, user, action, queue, outcome, audit_params)
    redirect = ""
    if action == "remove" and flag(params, "leave_page"):
        redirect = links.queue_url(queue)
    elif action == "duplicate" and outcome.job_ids:
        redirect = links.job_url(queue, outcome.job_ids[0]) if flag(params, "open_copy") else ""
    return render(
        request, Answer(200, action, outcome.message, outcome.done, outcome.skipped, redirect=redirect)
    )


async def _run_job_action(
    queue_writer: QueueWriter, action: str, job_id: str, params: dict[str, Any]
) -> Outcome:
    if action == "retry":
        return await queue_writer.retry(job_id)
    if action == "remove":
        return await queue_writer.remove(job_id, remove_children=not flag(params, "keep_children"))
    if action == "promote":
        return await queue_writer.promote(job_id)
    if action == "change_priority":
        return await queue_writer.change_priority(job_id, integer(params, "priority"))
    if action == "update_data":
        if "data" not in params:
            raise Invalid("data is required.")
        return await queue_writer.update_data(job_id, json_param(params, "data"))
    return await queue_writer.duplicate(job_id, json_param(params, "data"))


@csrf_exempt  # checked in _guard
async def queue_action(request: HttpRequest, connection: str, queue_key: str, action: str) -> HttpResponse:
    """pause, resume, clean, retry_all, promote_all, drain, obliterate or add on a queue."""
    if action not in QUEUE_ACTIONS:
        return unknown_action("queue", action)
    try:
        user, queue = await _guard(request, action, connection, queue_key)
        params = params_of(request)
        work = _queue_work(action, queue, params)
    except Refusal as refusal:
        return await _refused(request, action, queue_key, connection, refusal)
    except Invalid as exc:
        user = await request.auser()
        await audit.record(
            request, user, action, QueueRef.from_key(connection, queue_key), "invalid", str(exc)
        )
        return render(request, Answer(400, action, str(exc)))
    audit_params = for_audit(params, "data")
    return await _run_operation(request, user, action, queue, audit_params, work)


def _queue_work(
    action: str, queue: QueueRef, params: dict[str, Any]
) -> Callable[[QueueWriter, operations.Operation], Awaitable[Outcome]]:
    """Validate the parameters now (400 before anything runs) and return the work to do."""
    if action == "pause":
        return lambda w, op: w.pause()
    if action == "resume":
        return lambda w, op: w.resume()
    if action == "clean":
        state = str(params.get("state") or "")
        if state not in CLEANABLE_STATES:
            raise Invalid(f"state must be one of {', '.join(CLEANABLE_STATES)}.")
        grace, limit = integer(params, "grace"), integer(params, "limit")
        if grace < 0 or limit < 0:
            raise Invalid("grace and limit must not be negative.")
        return lambda w, op: w.clean(state, grace, limit, op.report)
    if action == "retry_all":
        state = str(params.get("state") or "failed")
        if state not in ("failed", "completed"):
            raise Invalid("state must be failed or completed.")
        return lambda w, op: w.retry_all(state, op.report)
    if action == "promote_all":
        return lambda w, op: w.promote_all(op.report)
    if action == "drain":
        delayed = not flag(params, "keep_delayed")
        return lambda w, op: w.drain(delayed)
    if action == "obliterate":
        if params.get("confirm") != queue.name:
            raise Invalid(f"Type the queue name ({queue.name}) to confirm obliterate.")
        force = flag(params, "force")
        return lambda w, op: w.obliterate(force)
    name = str(params.get("name") or "").strip()
    if not name:
        raise Invalid("name is required.")
    data = json_param(params, "data", {})
    opts = {
        key: params.get(key)
        for key in ("delay", "priority", "attempts", "jobId")
        if params.get(key) not in (None, "")
    }
    return lambda w, op: w.add(name, data, opts)


@csrf_exempt  # checked in _guard
async def bulk_action(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """retry, remove or promote selected jobs, or all jobs of a state, in batches."""
    try:
        params = params_of(request) if request.method == "POST" else {}
        sub_action = str(params.get("action") or "")
        if request.method == "POST" and sub_action not in BULK_ACTIONS:
            raise Refusal(400, f"action must be one of {', '.join(BULK_ACTIONS)}.", "invalid")
        user, queue = await _guard(request, BULK_ACTIONS.get(sub_action, "bulk"), connection, queue_key)
        work = _bulk_work(sub_action, params)
    except Refusal as refusal:
        return await _refused(request, "bulk", queue_key, connection, refusal)
    except Invalid as exc:
        user = await request.auser()
        await audit.record(
            request, user, f"bulk_{sub_action}", QueueRef.from_key(connection, queue_key), "invalid", str(exc)
        )
        return render(request, Answer(400, "bulk", str(exc)))
    audit_params = for_audit(params, "ids")
    return await _run_operation(request, user, f"bulk_{sub_action}", queue, audit_params, work)


def _bulk_work(
    sub_action: str, params: dict[str, Any]
) -> Callable[[QueueWriter, operations.Operation], Awaitable[Outcome]]:
    if flag(params, "all"):
        state = str(params.get("state") or "")
        if sub_action == "retry" and state in ("failed", "completed"):
            return lambda w, op: w.retry_all(state, op.report)
        if sub_action == "promote" and state == "delayed":
            return lambda w, op: w.promote_all(op.report)
        if sub_action == "remove" and state in CLEANABLE_STATES:
            return lambda w, op: w.clean(state, 0, 0, op.report)
        raise Invalid(f"Cannot {sub_action} all {state or '?'} jobs.")
    ids = job_ids(params)
    if not ids:
        raise Invalid("Select at least one job.")

    async def each(queue_writer: QueueWriter, operation: operations.Operation) -> Outcome:
        method = {
            "retry": queue_writer.retry,
            "remove": queue_writer.remove,
            "promote": queue_writer.promote,
        }[sub_action]
        done: list[str] = []
        skipped = 0
        for index, job_id in enumerate(ids, start=1):
            try:
                await method(job_id)
                done.append(job_id)
            except Conflict:
                skipped += 1
            await operation.report(index)
        verb = {"retry": "retried", "remove": "removed", "promote": "promoted"}[sub_action]
        message = f"{len(done)} {verb}, {skipped} skipped because their state changed."
        return Outcome(len(done), skipped, message, tuple(done))

    return each


async def _run_operation(
    request: HttpRequest,
    user: Any,
    action: str,
    queue: QueueRef,
    params: dict[str, Any],
    work: Callable[[QueueWriter, operations.Operation], Awaitable[Outcome]],
) -> HttpResponse:
    """Run queue-level and bulk work as a background operation; answer when done or after a few seconds."""
    settings = get_config().connections[queue.connection]

    async def run(operation: operations.Operation) -> Outcome:
        async with writer(settings, queue) as queue_writer:
            return await work(queue_writer, operation)

    async def finish(operation: operations.Operation) -> None:
        if operation.outcome is not None:
            await _finish(request, user, action, queue, operation.outcome, params)
        else:
            result = "conflict" if operation.error.startswith("Conflict") else "failed"
            await audit.record(request, user, action, queue, result, operation.error, params=params)

    operation = operations.start(action, queue.key, run, finish)
    if not await operations.wait(operation, WAIT_SECONDS):
        label = ACTIONS.get(action, ACTIONS["bulk"]).label
        message = f"{label} is running in batches: {operation.progress} so far."
        return render(request, Answer(202, action, message, operation.progress, operation=operation))
    return render(request, answer_of(operation))


def answer_of(operation: operations.Operation) -> Answer:
    """The Answer for a finished operation."""
    if operation.outcome is not None:
        outcome = operation.outcome
        return Answer(200, operation.action, outcome.message, outcome.done, outcome.skipped)
    status = 409 if operation.error.startswith("Conflict") else 500
    return Answer(status, operation.action, operation.error.removeprefix("Conflict: "))


async def operation_status(request: HttpRequest, operation_id: str) -> HttpResponse:
    """Progress of a long action (polled by its toast, or by an API client)."""
    user = await request.auser()
    if not user.is_authenticated:
        return JsonResponse({"ok": False, "message": "Log in first."}, status=401)
    operation = operations.get(operation_id)
    if operation is None:
        return JsonResponse(
            {"ok": False, "message": "No such operation (it may have run on another process)."}, status=404
        )
    if operation.finished:
        return render(request, answer_of(operation))
    message = f"Still running: {operation.progress} so far."
    return render(request, Answer(202, operation.action, message, operation.progress, operation=operation))
