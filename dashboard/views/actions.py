"""Action endpoints: POST only, authenticated, CSRF-checked, permission-checked on the server for
exactly what the action does, audited before and after, then BullMQ's own scripts.

Order of the checks, each a refusal before anything is written: method, login (nothing is read from
Redis or written to the database for an anonymous request), CSRF, parameters, the permission for the
action the request resolves to, read-only settings, the queue (looked up in Redis), the job id. Then
an audit entry is written, the action runs as a task that a cancelled request cannot stop, and the
entry is completed; an action that would change a read-only queue through a flow is refused there.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event
from redis.exceptions import RedisError

from dashboard import audit, health, links, operations, redis_access, registry
from dashboard.actions import (
    ACTIONS,
    BULK,
    BULK_ACTIONS,
    JOB_ACTIONS,
    QUEUE_ACTIONS,
    ActionSpec,
    Params,
    Prepared,
    Scope,
    Target,
    bulk_all,
    flag,
    selected_ids,
)
from dashboard.answers import Answer, Refusal, answer_before_writing, answer_for_error
from dashboard.conf import get_config
from dashboard.models import AuditEntry
from dashboard.permissions import VIEW, has_permission, read_only
from dashboard.reach import check_reach
from dashboard.registry import UnknownConnection, UnknownQueue
from dashboard.translation import message_of, translated
from dashboard.users import User
from dashboard.views.base import BadRequest, job_id_param, queue_of_url
from queues.actions import Conflict, Invalid, Outcome, Progress, QueueWriter, writer
from queues.messages import gettext_lazy
from queues.models import NotAJob, QueueRef

# How long a request waits for an action before answering 202 with a progress URL.
WAIT_SECONDS = 5.0
Result = AuditEntry.Result


@dataclass(frozen=True)
class Plan:
    """A checked action request: the spec whose permission it needs, what to audit, what to run."""

    spec: ActionSpec
    audit_action: str
    queue: QueueRef
    prepared: list[Prepared]
    job_ids: tuple[str, ...] = ()
    # One prepared action per selected job (bulk), each skipped when its job moved on.
    per_job: bool = False
    audit_params: Params = field(default_factory=dict)


def _csrf_failure(request: HttpRequest) -> str | None:
    """The CSRF rejection reason, checked here (not by middleware) so refusals are audited too."""
    response = CsrfViewMiddleware(lambda _request: HttpResponse()).process_view(
        request, lambda _request: HttpResponse(), (), {}
    )
    return None if response is None else gettext_lazy("CSRF verification failed.")


def params_of(request: HttpRequest) -> tuple[Params, bool]:
    """Form fields or a JSON object body; True when the body was a form (bulk ids come encoded)."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, RecursionError) as exc:
            message = gettext_lazy("The request body is not valid JSON: %(error)s", error=str(exc))
            raise Refusal(400, message, Result.INVALID) from exc
        if not isinstance(body, dict):
            raise Refusal(400, gettext_lazy("The JSON body must be an object."), Result.INVALID)
        try:  # JSON may spell lone surrogates ("\ud800"), which no Redis key or value can hold
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            message = gettext_lazy("The JSON body holds text that is not valid Unicode.")
            raise Refusal(400, message, Result.INVALID) from None
        return body, False
    params: Params = {key: request.POST.get(key) for key in request.POST}
    if "ids" in request.POST:
        params["ids"] = request.POST.getlist("ids")
    return params, True


def _user_and_views(request: HttpRequest, queue: QueueRef | None) -> tuple[Any, bool]:
    """The request's user and whether it may view this queue (one thread hop)."""
    user = request.user
    may_view = bool(user.is_authenticated) and has_permission(user, VIEW, None)
    return user, may_view and queue is not None and has_permission(user, VIEW, queue)


_auser_and_views = sync_to_async(_user_and_views)
_ahas_permission = sync_to_async(has_permission)


@csrf_exempt  # checked in _checked, so that a CSRF refusal is audited like every other refusal
async def job_action(request: HttpRequest, connection: str, queue_key: str, action: str) -> HttpResponse:
    """retry, remove, promote, change_priority, update_data or duplicate the job `?id=`."""
    if action not in JOB_ACTIONS:
        return _unknown("job", action)
    return await _handle(request, connection, queue_key, Scope.JOB, action)


@csrf_exempt  # checked in _checked
async def queue_action(request: HttpRequest, connection: str, queue_key: str, action: str) -> HttpResponse:
    """pause, resume, clean, retry_all, promote_all, drain, obliterate or add on a queue."""
    if action not in QUEUE_ACTIONS:
        return _unknown("queue", action)
    return await _handle(request, connection, queue_key, Scope.QUEUE, action)


@csrf_exempt  # checked in _checked
async def bulk_action(request: HttpRequest, connection: str, queue_key: str) -> HttpResponse:
    """retry, remove or promote selected jobs (their job permission), or every job of a state (the
    queue action that does that, with its own permission)."""
    return await _handle(request, connection, queue_key, Scope.LIST, BULK)


# Plans an action that is not in the spec table's dispatch (e.g. an error group's retry): given the
# request, the URL's queue and the parameters (and whether they came as a form), returns the Plan or
# raises a refusal. It runs after every check that comes before the parameters (see the docstring).
Planner = Callable[[HttpRequest, QueueRef, Params, bool], Awaitable[Plan]]


async def handle(
    request: HttpRequest, connection: str, queue_key: str, name: str, planner: Planner
) -> HttpResponse:
    """Run an action planned by `planner`, with the same checks, audit and answers as every action."""
    return await _handle(request, connection, queue_key, Scope.LIST, name, planner)


async def _handle(
    request: HttpRequest,
    connection: str,
    queue_key: str,
    scope: Scope,
    name: str,
    planner: Planner | None = None,
) -> HttpResponse:
    user: User | None = None
    audit_action = name
    try:
        url_queue = queue_of_url({"connection": connection, "queue_key": queue_key})
        user, may_view_queue = await _auser_and_views(request, url_queue)
        if request.method != "POST":
            raise Refusal(405, gettext_lazy("%(action)s needs a POST.", action=name))
        if not user.is_authenticated:
            raise Refusal(401, gettext_lazy("Log in to take actions."))
        if not audit.allow_action(user):
            message = gettext_lazy(
                "More than %(limit)d actions a minute; use a bulk action.", limit=audit.ACTIONS_PER_MINUTE
            )
            raise Refusal(429, message)
        if url_queue is None or not may_view_queue:
            raise Refusal(404, no_queue(queue_key, connection))
        reason = _csrf_failure(request)
        if reason:
            raise Refusal(403, reason)
        params, form = params_of(request)
        if scope is Scope.LIST and planner is None:
            audit_action = f"bulk_{params.get('action')}" if params.get("action") in BULK_ACTIONS else BULK
        plan = await (planner or _planned(scope, name))(request, url_queue, params, form)
    except (Refusal, BadRequest, Invalid, NotAJob) as exc:
        return await _refused(request, user, audit_action, connection, queue_key, exc)
    except (RedisError, OSError) as exc:  # planning only reads, so nothing was written
        answer = answer_before_writing(audit_action, exc)
        refusal = Refusal(answer.status, answer.message, answer.result)
        return await _refused(request, user, audit_action, connection, queue_key, refusal)
    return await _execute(request, user, plan)


def _planned(scope: Scope, name: str) -> Planner:
    """The planner of the spec table's actions."""
    return lambda request, url_queue, params, form: _plan(request, url_queue, scope, name, params, form)


async def _plan(
    request: HttpRequest, url_queue: QueueRef, scope: Scope, name: str, params: Params, form: bool
) -> Plan:
    """Everything checked that can be checked before the action runs; raises a refusal otherwise."""
    job_id = job_id_param(request) if scope is Scope.JOB else ""
    if scope is Scope.LIST:
        sub_action = params.get("action")
        if sub_action not in BULK_ACTIONS:
            message = gettext_lazy("action must be one of %(actions)s.", actions=", ".join(BULK_ACTIONS))
            raise Refusal(400, message, Result.INVALID)
        audit_action = f"bulk_{sub_action}"
        if flag(params, "all"):
            spec, all_params = bulk_all(str(sub_action), str(params.get("state") or ""))
            ids: list[str] = []
        else:
            spec, all_params, ids = ACTIONS[str(sub_action)], {}, selected_ids(params, encoded=form)
            if not ids:
                raise Invalid(gettext_lazy("Select at least one job."))
    else:
        spec, all_params, ids, audit_action = ACTIONS[name], {}, [job_id] if job_id else [], name
    await _permit(request, spec, url_queue)
    try:
        queue = await registry.find_queue(url_queue.connection, url_queue.key)
    except (UnknownQueue, UnknownConnection):
        raise Refusal(404, no_queue(url_queue.key, url_queue.connection)) from None
    for each in ids:
        queue.job_key(each)  # NotAJob (404) for ids that name the queue's own keys
    if spec.scope is Scope.JOB:
        prepared = [spec.prepare(Target(queue, params, each)) for each in ids]
        return Plan(spec, audit_action, queue, prepared, tuple(ids), per_job=scope is Scope.LIST)
    merged = {**params, **all_params}
    prepared_one = spec.prepare(Target(queue, merged))
    return Plan(spec, audit_action, queue, [prepared_one], audit_params=prepared_one.audit_params)


async def _permit(request: HttpRequest, spec: ActionSpec, queue: QueueRef) -> None:
    """Refuse unless the user may take exactly this action on this queue and the queue is writable."""
    if redis_access.redis_read_only(queue):
        raise Refusal(403, redis_access.refusal_message(queue))
    if read_only(queue):
        raise Refusal(403, gettext_lazy("%(queue)s is read-only here.", queue=queue.key))
    if not await _ahas_permission(request.user, spec.name, queue):
        raise Refusal(
            403,
            gettext_lazy("You may not use “%(action)s” on %(queue)s.", action=spec.label, queue=queue.key),
        )
    await redis_access.refresh(queue)
    if redis_access.redis_read_only(queue):
        raise Refusal(403, redis_access.refusal_message(queue))


async def _refused(
    request: HttpRequest, user: User | None, action: str, connection: str, queue_key: str, exc: Exception
) -> HttpResponse:
    status = exc.status if isinstance(exc, Refusal) else 404 if isinstance(exc, NotAJob) else 400
    message = message_of(exc)
    actor = audit.request_actor(request, user)
    await audit.refused(actor, action, queue_key, connection, status, str(message))
    response = render(request, Answer(status, action, message))
    if status == 405:
        response["Allow"] = "POST"
    return response


async def _execute(request: HttpRequest, user: User, plan: Plan) -> HttpResponse:
    """Audit, run the plan as an operation, and answer when it is done or after WAIT_SECONDS."""
    prepared = plan.prepared
    settings = get_config().connections[plan.queue.connection]

    async def run(operation: operations.Operation) -> Answer:
        # The entry is written in the operation's task, so a request cancelled at any point leaves
        # either no entry and no change, or an entry that the same task completes.
        try:
            entry = await audit.begin(
                audit.request_actor(request, user),
                plan.audit_action,
                plan.queue,
                job_ids=plan.job_ids,
                params=plan.audit_params or (prepared[0].audit_params if prepared else {}),
            )
        except Exception:  # no audit entry, no change
            audit.logger.exception("could not write the audit entry of %s", plan.audit_action)
            message = gettext_lazy("The audit log could not be written, so nothing was changed.")
            return Answer(503, plan.audit_action, message, result=Result.FAILED)
        try:
            await _check_reach(plan, user)
            async with writer(settings, plan.queue) as queue_writer:
                outcome = await _work(plan, queue_writer, operation.report)
            answer = Answer(
                200,
                plan.audit_action,
                outcome.message,
                outcome.done,
                outcome.skipped,
                job_ids=outcome.job_ids,
            )
            await _complete(entry, answer, outcome.job_ids)
        except Exception as exc:  # every failure becomes an answer and completes the audit entry
            answer = answer_for_error(plan.audit_action, exc, operation.progress)
            await _complete(entry, answer, None)
        finally:
            # The page that refreshes after the toast shows the health the action left, not a kept one.
            health.invalidate(plan.queue)
        return answer

    operation = operations.start(plan.audit_action, plan.queue, run)
    if not await operations.wait(operation, WAIT_SECONDS):
        message = running(plan.spec.label, operation.progress)
        return render(
            request, Answer(202, plan.audit_action, message, operation.progress, operation=operation)
        )
    answer = operation.answer
    assert answer is not None
    return render(request, _with_redirect(request, plan, await _with_undo(request, plan, answer)))


async def _with_undo(request: HttpRequest, plan: Plan, answer: Answer) -> Answer:
    """A done Pause offers Undo in its toast: Resume, a POST through the same checks and audit, shown
    only to a user who may resume this queue."""
    if plan.spec.name != "pause" or not answer.ok or read_only(plan.queue):
        return answer
    if not await _ahas_permission(request.user, "resume", plan.queue):
        return answer
    return replace(answer, undo=links.queue_action_url(plan.queue, "resume"))


async def _check_reach(plan: Plan, user: User) -> None:
    """Refuse (403) an action whose script would change a read-only queue, or one where this user may
    not take the same action, through flow parents or children (dashboard.reach)."""
    await check_reach(plan.queue, plan.spec, plan.prepared, user)


async def _work(plan: Plan, queue_writer: QueueWriter, progress: Progress) -> Outcome:
    if not plan.per_job:
        return await plan.prepared[0].work(queue_writer, progress)
    done: list[str] = []
    skipped = 0
    for index, (job_id, prepared) in enumerate(zip(plan.job_ids, plan.prepared, strict=True), start=1):
        try:
            await prepared.work(queue_writer, progress)
            done.append(job_id)
        except (Conflict, NotAJob):
            skipped += 1
        await progress(index)
    return Outcome(len(done), skipped, _bulk_message(plan.spec.name, len(done), skipped), tuple(done))


def _bulk_message(action: str, done: int, skipped: int) -> str:
    """What a bulk action on selected jobs did."""
    if action == "retry":
        return gettext_lazy(
            "%(done)d retried, %(skipped)d skipped because their state changed.", done=done, skipped=skipped
        )
    if action == "remove":
        return gettext_lazy(
            "%(done)d removed, %(skipped)d skipped because their state changed.", done=done, skipped=skipped
        )
    return gettext_lazy(
        "%(done)d promoted, %(skipped)d skipped because their state changed.", done=done, skipped=skipped
    )


async def _complete(entry: AuditEntry, answer: Answer, job_ids: tuple[str, ...] | None) -> None:
    try:
        await audit.complete(
            entry,
            answer.result,
            str(answer.message),
            job_ids=job_ids,
            count=answer.done,
            skipped=answer.skipped,
        )
    except Exception:  # the database went away: the change is done, the log line says what it was
        audit.logger.exception("could not complete audit entry %s: %s", entry.pk, answer.message)


def _with_redirect(request: HttpRequest, plan: Plan, answer: Answer) -> Answer:
    if not answer.ok or plan.per_job or not plan.job_ids:
        return answer
    params, _form = params_of(request)
    redirect = ""
    if plan.spec.name == "remove" and flag(params, "leave_page"):
        redirect = links.queue_url(plan.queue)
    elif plan.spec.name == "duplicate" and flag(params, "open_copy") and answer.job_ids:
        redirect = links.job_url(plan.queue, answer.job_ids[0])
    return replace(answer, redirect=redirect)


def no_queue(queue_key: str, connection: str) -> str:
    """The refusal for a queue that is not there (or not for this user)."""
    return gettext_lazy(
        "No queue %(queue)s on connection %(connection)s.", queue=queue_key, connection=connection
    )


def running(label: str, progress: int) -> str:
    """The answer while an action runs on in the background."""
    return gettext_lazy("%(action)s is running in batches: %(done)d so far.", action=label, done=progress)


def _unknown(kind: str, action: str) -> JsonResponse:
    """404 for an action name the URL made up."""
    if kind == "job":
        message = gettext_lazy("Unknown job action %(action)r.", action=action)
    else:
        message = gettext_lazy("Unknown queue action %(action)r.", action=action)
    return JsonResponse({"ok": False, "action": action, "message": translated(message)}, status=404)


def render(request: HttpRequest, answer: Answer) -> HttpResponse:
    """JSON for API clients; a toast (and a refresh event) for htmx."""
    if not getattr(request, "htmx", False):
        body: dict[str, Any] = {
            "ok": answer.ok,
            "action": answer.action,
            "done": answer.done,
            "skipped": answer.skipped,
            "message": translated(answer.message),
        }
        if answer.operation is not None:
            body["operation_url"] = links.operation_url(answer.operation.id)
        return JsonResponse(body, status=answer.status)
    if answer.redirect and answer.ok:
        return HttpResponseClientRedirect(answer.redirect)
    response = TemplateResponse(
        request, "bullmq_dashboard/partials/toast.html", {"answer": answer}, status=answer.status
    )
    response["HX-Retarget"] = "#bullmq-toasts"
    response["HX-Reswap"] = "afterbegin"
    if answer.ok and answer.operation is None:
        trigger_client_event(response, "bullmq-dashboard:changed", {"action": answer.action})
    return response


async def operation_status(request: HttpRequest, operation_id: str) -> HttpResponse:
    """Progress of a long action (polled by its toast, or by an API client): for users who may view
    its queue."""
    operation = operations.get(operation_id)
    user, may_view_queue = await _auser_and_views(request, operation.queue if operation else None)
    if not user.is_authenticated:
        return JsonResponse({"ok": False, "message": gettext("Log in first.")}, status=401)
    if operation is None or not may_view_queue:
        message = gettext("No such operation (it may have run on another process).")
        return JsonResponse({"ok": False, "message": message}, status=404)
    if operation.answer is not None:
        return render(request, operation.answer)
    message = gettext_lazy("Still running: %(done)d so far.", done=operation.progress)
    return render(request, Answer(202, operation.action, message, operation.progress, operation=operation))
