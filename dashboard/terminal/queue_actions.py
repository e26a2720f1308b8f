"""Queue actions taken at the terminal, through the web's actions layer and audit log.

The same spec (dashboard.actions.ACTIONS) prepares the work; the same checks refuse it, each refusal
stored in the audit log: a dashboard user named with `--user` must be allowed to view the queue and to
take the action, as the permission callable decides for the web; without one, the actor is the OS
login (`cli:<login>`), whom the permission callable does not know, and whom only the read-only
settings bind. Then, as the web does, the entry is written before the change, the flow reach is
checked, BullMQ's scripts run over the connection's write client, and the entry is completed.

Planning and executing are two steps, so the command can ask for confirmation between them without an
event loop running (a Ctrl-C at the prompt stops the command at once, and nothing was written).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.utils.translation import gettext

from dashboard import audit, registry
from dashboard.actions import ACTIONS, ActionSpec, Params, Prepared, Target
from dashboard.answers import Answer, Refusal, answer_for_error
from dashboard.conf import get_config
from dashboard.models import AuditEntry
from dashboard.permissions import VIEW, has_permission, read_only
from dashboard.reach import check_reach
from dashboard.terminal.queue_names import resolve
from dashboard.terminal.reading import Selection, aliases, known_queues
from dashboard.translation import message_of, translated
from dashboard.users import User
from queues.actions import Invalid, writer
from queues.clean_estimate import estimate_clean
from queues.counts import fetch_counts
from queues.messages import gettext_lazy
from queues.models import QueueRef
from queues.parsing import plain_text

Result = AuditEntry.Result
# The terminal's subcommands and the ACTIONS spec each one takes.
SUBCOMMANDS = {"retry-failed": "retry_all", "clean": "clean", "pause": "pause", "resume": "resume"}


@dataclass(frozen=True)
class Request:
    """An action asked for at the terminal: its ACTIONS name, the QUEUE argument, its parameters (as
    the web's form fields), and the dashboard user it is taken as (None: the OS login)."""

    action: str
    queue: str
    params: Params
    username: str | None = None


@dataclass(frozen=True)
class Plan:
    """A checked request: the spec, the queue, the prepared work, who takes it, and the question to
    confirm first (None when the web asks none either)."""

    spec: ActionSpec
    queue: QueueRef
    prepared: Prepared
    actor: audit.Actor
    question: str | None


async def plan(request: Request) -> Plan:
    """Resolve the queue, check the permission and the read-only settings (refusals audited), validate
    the parameters and word the confirmation. Nothing is written to Redis."""
    spec = ACTIONS[request.action]
    user = await _user(request.username)
    actor = audit.terminal_actor(user)
    known, down = await known_queues(Selection())
    queue = resolve(request.queue, known, down, aliases(Selection()))
    try:
        await _apermit(spec, queue, user)
        prepared = spec.prepare(Target(queue, request.params))
    except (Refusal, Invalid) as exc:
        status = exc.status if isinstance(exc, Refusal) else 400
        message = message_of(exc)
        await audit.refused(actor, spec.name, queue.key, queue.connection, status, str(message))
        raise CommandError(translated(message)) from None
    return Plan(spec, queue, prepared, actor, await _question(spec, queue, request.params))


async def execute(checked: Plan, progress: Callable[[int], None]) -> Answer:
    """Write the audit entry, check the flow reach, run the work, complete the entry; a Ctrl-C while
    it runs lets it finish (its entry is completed), as a closed browser tab does on the web."""
    task = asyncio.ensure_future(_run(checked, progress))
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            # Ctrl-C: the action runs to its end and completes its entry; a second Ctrl-C raises
            # KeyboardInterrupt out of the loop (asyncio.run) and stops at once.
            progress(-1)


async def _run(checked: Plan, progress: Callable[[int], None]) -> Answer:
    spec, queue, prepared = checked.spec, checked.queue, checked.prepared
    done = 0

    async def report(count: int) -> None:
        nonlocal done
        done = count
        progress(count)

    try:
        entry = await audit.begin(checked.actor, spec.name, queue, params=prepared.audit_params)
    except Exception:  # no audit entry, no change
        audit.logger.exception("could not write the audit entry of %s", spec.name)
        message = gettext_lazy("The audit log could not be written, so nothing was changed.")
        return Answer(503, spec.name, message, result=Result.FAILED)
    try:
        await check_reach(queue, spec, [prepared], checked.actor.user)
        async with writer(get_config().connections[queue.connection], queue) as queue_writer:
            outcome = await prepared.work(queue_writer, report)
        answer = Answer(
            200, spec.name, outcome.message, outcome.done, outcome.skipped, job_ids=outcome.job_ids
        )
        job_ids: tuple[str, ...] | None = outcome.job_ids
    except Exception as exc:  # every failure becomes an answer and completes the entry
        answer, job_ids = answer_for_error(spec.name, exc, done), None
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
    return answer


async def _user(username: str | None) -> User | None:
    if username is None:
        return None
    model = get_user_model()
    try:
        user: User = await model._default_manager.aget_by_natural_key(username)
        return user
    except model.DoesNotExist:
        raise CommandError(gettext("No user %(user)s.") % {"user": plain_text(username)}) from None


def _permit(spec: ActionSpec, queue: QueueRef, user: User | None) -> None:
    """The web's checks, in the web's order: the queue must be one this user may view, writable, and
    the action one this user may take. The OS login is bound by the read-only settings only."""
    if user is not None and not (has_permission(user, VIEW, None) and has_permission(user, VIEW, queue)):
        message = gettext_lazy(
            "No queue %(queue)s on connection %(connection)s.", queue=queue.key, connection=queue.connection
        )
        raise Refusal(404, message)
    if read_only(queue):
        raise Refusal(403, gettext_lazy("%(queue)s is read-only here.", queue=queue.key))
    if user is not None and not has_permission(user, spec.name, queue):
        raise Refusal(
            403,
            gettext_lazy("You may not use “%(action)s” on %(queue)s.", action=spec.label, queue=queue.key),
        )


_apermit: Callable[[ActionSpec, QueueRef, User | None], Awaitable[None]] = sync_to_async(_permit)


async def _question(spec: ActionSpec, queue: QueueRef, params: Params) -> str | None:
    """What a destructive or bulk action will do, with numbers, as the web's dialog says it."""
    client = registry.client(queue.connection)
    name = plain_text(queue.name)
    if spec.name == "clean":
        estimate = await estimate_clean(
            client, queue, str(params["state"]), int(params["grace"]), int(params["limit"])
        )
        removal = gettext("Remove these jobs? This cannot be undone.")
        return f"{translated(estimate.message())} {removal}"
    if spec.name == "retry_all":
        (counts,) = await fetch_counts(client, [queue])
        return gettext("Queue %(queue)s: all %(n)s failed jobs, of any age, move back to waiting.") % {
            "queue": name,
            "n": f"{counts.counts.get('failed', 0):,}",
        }
    return None  # pause and resume: the web asks nothing either (a pause offers Undo instead)
