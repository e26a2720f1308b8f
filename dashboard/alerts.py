"""Alerts without extra infrastructure: the rules of `BULLMQ_DASHBOARD["ALERTS"]`, what fires now (the
AlertState rows every process shows as banners), and the announcements of each transition: an audit
entry and, when configured, a Slack-compatible webhook.

The evaluation itself is pure (queues.alerts) and runs in the process's monitor (dashboard.monitor).
Several processes may evaluate the same queues: the database decides which one announces a transition
(the one whose INSERT of the firing row, or DELETE of it, took effect), so each is announced once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.db import DatabaseError, IntegrityError, transaction
from django.urls import reverse

from dashboard.audit import MAX_MESSAGE, bounded_params
from dashboard.conf import DashboardConfig, get_config
from dashboard.durations import duration_ms
from dashboard.links import queue_url
from dashboard.models import AlertState, AuditEntry
from dashboard.translation import translated
from queues.alerts import Finding, Rule
from queues.messages import Message
from queues.models import QueueRef
from queues.parsing import plain_text

logger = logging.getLogger("bullmq_dashboard.alerts")

DEFAULT_INTERVAL = 30.0
# Banners list at most this many alerts (the rest are counted).
MAX_BANNERS = 20
# What a rule may set, its setting name and how the value is read.
RULE_KEYS: dict[str, tuple[str, str]] = {
    "BACKLOG": ("backlog", "count"),
    "OLDEST_WAITING": ("oldest_waiting_seconds", "duration"),
    "FAILURE_RATE": ("failure_rate", "ratio"),
    "MIN_FINISHED": ("min_finished", "count"),
    "NO_WORKERS": ("no_workers_seconds", "duration"),
    "STALLED": ("stalled", "count"),
    "WINDOW": ("window_seconds", "duration"),
    "FOR": ("for_seconds", "duration"),
    # The health verdict's reasons (docs/health.md): True to alert on them.
    "PAUSED": ("paused", "flag"),
    "RATE_LIMITED": ("rate_limited", "flag"),
    "AT_CAPACITY": ("at_capacity", "flag"),
    "STUCK": ("stuck", "flag"),
}
# Bounds of the values (E011 beyond them): durations, the window (the events stream BullMQ keeps holds
# about 10,000 events, rarely a week of them), counts, the evaluation interval and webhook timeout.
MAX_DURATION = 30 * 86_400.0
MAX_WINDOW = 7 * 86_400.0
MAX_COUNT = 10**12
MAX_INTERVAL = 3_600.0
MAX_WEBHOOK_TIMEOUT = 60.0
# A transition not announced this long after it was claimed is claimed again (its process stopped).
OUTBOX_AFTER = timedelta(minutes=5)
# Transitions posted one by one per evaluation; the rest go in one summary post (all are audited).
MAX_ANNOUNCEMENTS = 20
# Webhook posts in flight at once.
WEBHOOK_CONCURRENCY = 4
ALERT_KEYS = frozenset({"RULES", "INTERVAL", "WEBHOOK_URL", "WEBHOOK_TIMEOUT", "BASE_URL", "EVALUATE"})


class AlertSettingError(ValueError):
    """A value of `ALERTS` that cannot be read (the system check reports it; evaluation skips it)."""


def duration_seconds(value: object, *, most: float = MAX_DURATION) -> float:
    """Seconds from a number (seconds) or text like "90s", "10m", "1h", "2d": finite, 0 to `most`."""
    if isinstance(value, bool):
        raise AlertSettingError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            seconds = duration_ms(str(value), bare_unit="s") / 1000
        except ValueError as exc:
            raise AlertSettingError(
                f"{value!r} is not a duration (a number of seconds, or like 90s, 10m, 1h, 2d)"
            ) from exc
    if not math.isfinite(seconds) or not 0 <= seconds <= most:
        raise AlertSettingError(f"{value!r} must be a duration from 0 to {most:g} seconds")
    return seconds


def _rule_value(name: str, kind: str, value: object) -> object:
    if kind == "flag":
        if not isinstance(value, bool):
            raise AlertSettingError(f"{name} must be True or False, not {value!r}")
        return value
    if kind == "duration":
        return duration_seconds(value, most=MAX_WINDOW if name == "WINDOW" else MAX_DURATION)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AlertSettingError(f"{name} must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise AlertSettingError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise AlertSettingError(f"{name} must be a finite number, not {value!r}")
    if kind == "ratio":
        if not 0 <= number <= 1:
            raise AlertSettingError(f"{name} must be between 0 and 1 (0.2 is 20 %), not {value!r}")
        return number
    if not 0 <= number <= MAX_COUNT or number != int(number):
        raise AlertSettingError(f"{name} must be a whole number from 0 to {MAX_COUNT:,}, not {value!r}")
    return int(number)


def parse_rule(given: object) -> Rule:
    """One entry of ALERTS["RULES"]: {"QUEUES": [patterns], "BACKLOG": 1000, "FOR": "5m", ...}."""
    if not isinstance(given, dict):
        raise AlertSettingError(f"a rule must be a dict, not {given!r}")
    patterns = given.get("QUEUES", ["*"])
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list | tuple) or not all(isinstance(each, str) for each in patterns):
        raise AlertSettingError(f"QUEUES must be a list of patterns, not {patterns!r}")
    unknown = sorted(set(given) - set(RULE_KEYS) - {"QUEUES"})
    if unknown:
        raise AlertSettingError(f"unknown keys {', '.join(unknown)} (known: QUEUES, {', '.join(RULE_KEYS)})")
    values = {
        RULE_KEYS[key][0]: _rule_value(key, RULE_KEYS[key][1], value)
        for key, value in given.items()
        if key in RULE_KEYS and value is not None
    }
    return Rule(tuple(patterns), values)


@dataclass(frozen=True)
class AlertSettings:
    """`BULLMQ_DASHBOARD["ALERTS"]`, read."""

    rules: tuple[Rule, ...] = ()
    interval: float = DEFAULT_INTERVAL
    webhook_url: str | None = None
    webhook_timeout: float = 5.0
    # Prepended to queue links in webhook messages (the site's address, e.g. https://ops.example.com).
    base_url: str = ""
    # False: this process shows the alerts (banners, metrics) but does not evaluate them.
    evaluate: bool = True
    # Why rules were left out (check E011 reports them).
    problems: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        """True when some rule is set."""
        return bool(self.rules)


def alert_settings() -> AlertSettings:
    """The ALERTS settings (AlertSettingError when they cannot be read), read once per configuration."""
    config = get_config()
    read = _read.get(id(config))
    if read is None or read[0] is not config:
        _read.clear()
        try:
            settings = _settings_of(config)
        except AlertSettingError:
            raise
        except Exception as exc:  # any value that cannot be read is a setting error, never a 500
            raise AlertSettingError(f"{type(exc).__name__}: {exc}") from exc
        read = _read[id(config)] = (config, settings)
    return read[1]


# The settings read of the current configuration (get_config() is cached until settings change).
_read: dict[int, tuple[DashboardConfig, AlertSettings]] = {}


def _settings_of(config: DashboardConfig) -> AlertSettings:
    raw = config.raw.get("ALERTS") or {}
    if not isinstance(raw, dict):
        raise AlertSettingError("ALERTS must be a dict")
    unknown = sorted(str(key) for key in set(raw) - ALERT_KEYS)
    if unknown:
        raise AlertSettingError(f"unknown keys {', '.join(unknown)} (known: {', '.join(sorted(ALERT_KEYS))})")
    rules = raw.get("RULES") or []
    if not isinstance(rules, list | tuple):
        raise AlertSettingError("ALERTS['RULES'] must be a list of rules")
    # A rule that cannot be read is left out (and reported by E011); the others are evaluated.
    parsed: list[Rule | str] = []
    for rule in rules:
        try:
            parsed.append(parse_rule(rule))
        except AlertSettingError as exc:
            parsed.append(str(exc))
            logger.error("ALERTS: a rule is left out: %s", exc)
    webhook = raw.get("WEBHOOK_URL") or None
    if webhook is not None:
        parts = urlsplit(str(webhook))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AlertSettingError("ALERTS['WEBHOOK_URL'] must be an http:// or https:// URL")
    return AlertSettings(
        rules=tuple(rule for rule in parsed if isinstance(rule, Rule)),
        problems=tuple(
            f"rule {index + 1}: {rule}" for index, rule in enumerate(parsed) if isinstance(rule, str)
        ),
        interval=max(1.0, duration_seconds(raw.get("INTERVAL", DEFAULT_INTERVAL), most=MAX_INTERVAL)),
        webhook_url=str(webhook) if webhook else None,
        webhook_timeout=max(0.5, duration_seconds(raw.get("WEBHOOK_TIMEOUT", 5), most=MAX_WEBHOOK_TIMEOUT)),
        base_url=str(raw.get("BASE_URL") or "").rstrip("/"),
        evaluate=bool(raw.get("EVALUATE", True)),
    )


# ---- what fires: rows, reconciled with each evaluation ----


def _message_params(message: Message) -> dict[str, Any]:
    return {
        "template": message.template,
        "params": {
            key: value if isinstance(value, int | float) else str(value)
            for key, value in message.params.items()
        },
        "plural": message.plural,
        "count": message.number,
    }


def shown_message(row: AlertState) -> str:
    """The row's sentence in the active language (as stored when its template cannot be rebuilt)."""
    kept = row.params if isinstance(row.params, dict) else {}
    template = kept.get("template")
    if not isinstance(template, str) or not isinstance(kept.get("params"), dict):
        return row.message
    try:
        return translated(
            Message(template, kept["params"], plural=kept.get("plural"), count=kept.get("count"))
        )
    except (KeyError, TypeError, ValueError):
        return row.message


@dataclass(frozen=True)
class Announcement:
    """A transition this process claimed: the alert fired or resolved; `row` is its AlertState row,
    finished once the transition was audited and posted."""

    queue: QueueRef
    condition: str
    firing: bool
    since: datetime
    value: float
    message: str
    row: int = 0


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


AlertKey = tuple[str, str, str]


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation read: the queues evaluated, the alerts that fire among them, the
    connections that answered and the queues the rules cover there."""

    evaluated: list[QueueRef]
    firing: list[Finding]
    answered: frozenset[str]
    covered: frozenset[QueueRef]
    now_ms: int


def _announcement(row: AlertState, firing: bool) -> Announcement:
    queue = QueueRef.from_key(row.connection, row.queue)
    return Announcement(queue, row.condition, firing, row.since, row.value, row.message, row.pk)


def _stale(row: AlertState, evaluation: Evaluation, configured: set[str]) -> bool:
    """True for a firing row that should not fire: its queue was evaluated without it, or its
    connection answered and no rule covers the queue there any more (rule removed, queue gone), or
    its connection is no longer configured."""
    if row.connection not in configured:
        return True
    try:
        queue = QueueRef.from_key(row.connection, row.queue)
    except ValueError:
        return True
    return queue in set(evaluation.evaluated) or (
        row.connection in evaluation.answered and queue not in evaluation.covered
    )


def _reconcile(evaluation: Evaluation) -> tuple[list[Announcement], frozenset[AlertKey]]:
    """Make the rows match what fires; returns the transitions claimed here (several processes may
    evaluate: the one whose insert or update takes effect claims it) and the alerts that fire now."""
    now = _at(evaluation.now_ms)
    wanted = {(f.queue.connection, f.queue.key, str(f.condition)): f for f in evaluation.firing}
    every = {
        (row.connection, row.queue, row.condition): row
        for row in AlertState.objects.filter(resolved__isnull=True).iterator()
    }
    configured = set(get_config().connections)
    claimed: list[Announcement] = []
    for key, finding in wanted.items():
        row = every.get(key)
        message = str(finding.message)[:MAX_MESSAGE]
        if row is not None:
            if row.value != finding.value or row.message != message:
                AlertState.objects.filter(pk=row.pk).update(
                    value=finding.value, message=message, params=_message_params(finding.message)
                )
            continue
        try:
            with transaction.atomic():
                row = AlertState.objects.create(
                    connection=finding.queue.connection,
                    queue=finding.queue.key,
                    condition=str(finding.condition),
                    since=now,
                    value=finding.value,
                    message=message,
                    params=_message_params(finding.message),
                    claimed=now,
                )
        except IntegrityError:
            continue  # another process fired it first and announces it
        except DatabaseError as exc:  # one row the database refuses must not stop the others
            logger.warning("alert of %s not stored: %s", plain_text(finding.queue.key[:200]), exc)
            continue
        claimed.append(_announcement(row, True))
    firing_now = set(wanted)
    for key, row in every.items():
        if key in wanted or not _stale(row, evaluation, configured):
            if key not in wanted:
                firing_now.add(key)
            continue
        if AlertState.objects.filter(pk=row.pk, resolved__isnull=True).update(
            resolved=now, announced=False, claimed=now
        ):
            claimed.append(_announcement(row, False))
    claimed.extend(_unannounced(now))
    return claimed, frozenset(firing_now)


def _unannounced(now: datetime) -> list[Announcement]:
    """Transitions whose process stopped before it announced them (a restart mid-way), claimed again
    after OUTBOX_AFTER."""
    found = []
    stuck = AlertState.objects.filter(announced=False, claimed__lt=now - OUTBOX_AFTER)
    for row in stuck.order_by("claimed")[:MAX_ANNOUNCEMENTS]:
        if AlertState.objects.filter(pk=row.pk, claimed=row.claimed).update(claimed=now):
            found.append(_announcement(row, row.resolved is None))
    return found


def _finish(announcement: Announcement) -> None:
    """An announced transition: a fired alert's row is kept (it fires), a resolved one's deleted."""
    rows = AlertState.objects.filter(pk=announcement.row)
    if announcement.firing:
        rows.update(announced=True)
    else:
        rows.delete()


def _audit(announcement: Announcement, webhook: str) -> AuditEntry:
    verb = "fired" if announcement.firing else "resolved"
    entry = AuditEntry.objects.create(
        user=None,
        username="alerts",
        action=f"alert_{verb}"[:40],
        connection=announcement.queue.connection[:100],
        queue=announcement.queue.key[:500],
        result=AuditEntry.Result.DONE,
        message=f"{announcement.condition} {verb}: {announcement.message}"[:MAX_MESSAGE],
        params=bounded_params(
            {
                "condition": announcement.condition,
                "value": announcement.value,
                "since": announcement.since.isoformat(),
                "webhook": webhook,
            }
        ),
    )
    _finish(announcement)
    return entry


# ---- the webhook ----


def slack_escape(text: str) -> str:
    """Text for Slack's mrkdwn: control characters (a newline would start a forged line), bidi and
    zero-width marks shown as escapes; &, < and > escaped, so a queue name cannot mention @channel or
    make a link."""
    return plain_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(announcement: Announcement, link: str) -> dict[str, Any]:
    """A Slack-compatible message (the `text` field) with the alert's fields beside it for other
    receivers."""
    queue = announcement.queue
    state = "FIRING" if announcement.firing else "RESOLVED"
    icon = ":rotating_light:" if announcement.firing else ":white_check_mark:"
    where = f"{queue.key} ({queue.connection})"
    text = f"{icon} {state} {slack_escape(where)}: {slack_escape(announcement.message)}"
    if link:
        text += f" <{slack_escape(link)}|open>"
    return {
        "text": text,
        "alert": {
            "status": state.lower(),
            "connection": queue.connection,
            "prefix": queue.prefix,
            "queue": queue.name,
            "condition": announcement.condition,
            "value": announcement.value,
            "since": announcement.since.isoformat(),
            "message": announcement.message,
            "url": link,
        },
    }


def summary_payload(announcements: list[Announcement]) -> dict[str, Any]:
    """One post for the transitions beyond MAX_ANNOUNCEMENTS of one evaluation (an alert storm)."""
    fired = sum(1 for each in announcements if each.firing)
    resolved = len(announcements) - fired
    text = (
        f":rotating_light: and {len(announcements)} more alert transitions "
        f"({fired} fired, {resolved} resolved); see the dashboard's audit log"
    )
    return {"text": text, "alerts": {"more": len(announcements), "fired": fired, "resolved": resolved}}


def post_webhook(url: str, payload: dict[str, Any], timeout: float) -> str:
    """POST the payload as JSON; returns what happened, in words for the audit entry (never raises)."""
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "bullmq-dashboard"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return f"sent ({response.status})"
    except Exception as exc:  # a webhook that fails must not stop the evaluation
        logger.warning("alert webhook failed: %s", exc)
        return f"failed: {exc}"[:200]


def _link(settings: AlertSettings, queue: QueueRef) -> str:
    if not settings.base_url:
        return ""
    return settings.base_url + queue_url(queue)


async def announce(settings: AlertSettings, claimed: list[Announcement]) -> list[AuditEntry]:
    """Post each transition to the webhook (when set; at most MAX_ANNOUNCEMENTS one by one, a few at a
    time, the rest in one summary) and audit each; returns the audit entries."""
    posts = asyncio.Semaphore(WEBHOOK_CONCURRENCY)

    async def one(announcement: Announcement, post: bool) -> AuditEntry:
        webhook = "not configured"
        if settings.webhook_url and post:
            payload = webhook_payload(announcement, _link(settings, announcement.queue))
            async with posts:
                webhook = await asyncio.to_thread(
                    post_webhook, settings.webhook_url, payload, settings.webhook_timeout
                )
        elif settings.webhook_url:
            webhook = "in the summary post"
        logger.info(
            "alert %s %s %s: %s",
            "fired" if announcement.firing else "resolved",
            plain_text(announcement.queue.key[:200]),
            announcement.condition,
            plain_text(announcement.message[:500]),
        )
        return await sync_to_async(_audit)(announcement, webhook)

    one_by_one, rest = claimed[:MAX_ANNOUNCEMENTS], claimed[MAX_ANNOUNCEMENTS:]
    entries = list(await asyncio.gather(*(one(each, True) for each in one_by_one)))
    if rest and settings.webhook_url:
        await asyncio.to_thread(
            post_webhook, settings.webhook_url, summary_payload(rest), settings.webhook_timeout
        )
    entries.extend([await one(each, False) for each in rest])
    return entries


async def reconcile(evaluation: Evaluation) -> tuple[list[Announcement], frozenset[AlertKey]]:
    """`_reconcile` in a thread (it uses the database)."""
    return await sync_to_async(_reconcile)(evaluation)


# ---- banners ----


@dataclass(frozen=True)
class Banner:
    """A firing alert as the pages list it."""

    queue: QueueRef
    condition: str
    since: datetime
    message: str


def _banners(queue: QueueRef | None, visible: set[tuple[str, str]]) -> tuple[list[Banner], int]:
    rows = AlertState.objects.filter(resolved__isnull=True)
    if queue is not None:
        rows = rows.filter(connection=queue.connection, queue=queue.key)
    banners: list[Banner] = []
    total = 0
    # Tuples first (cheap), whole rows only for the banners listed.
    for pk, connection, key in (
        rows.order_by("since", "id").values_list("pk", "connection", "queue").iterator()
    ):
        if (connection, key) not in visible:
            continue
        total += 1
        if len(banners) < MAX_BANNERS:
            row = AlertState.objects.get(pk=pk)
            banners.append(
                Banner(QueueRef.from_key(connection, key), row.condition, row.since, shown_message(row))
            )
    return banners, total


async def firing_banners(viewable: list[QueueRef], queue: QueueRef | None = None) -> tuple[list[Banner], int]:
    """The firing alerts of the queues a user may view (of one queue, on its page), at most MAX_BANNERS,
    and how many fire in all."""
    visible = {(each.connection, each.key) for each in viewable}
    return await sync_to_async(_banners)(queue, visible)


def _firing_conditions() -> dict[QueueRef, tuple[str, ...]]:
    found: dict[QueueRef, list[str]] = {}
    rows = AlertState.objects.filter(resolved__isnull=True)
    for connection, queue_key, condition in rows.values_list("connection", "queue", "condition").iterator():
        try:
            queue = QueueRef.from_key(connection, queue_key)
        except ValueError:
            continue
        found.setdefault(queue, []).append(condition)
    return {queue: tuple(sorted(conditions)) for queue, conditions in found.items()}


async def firing_conditions() -> dict[QueueRef, tuple[str, ...]]:
    """The conditions that fire, by queue (for the Prometheus exposition); none while no rule is set."""
    if not alerts_enabled():
        return {}
    return await sync_to_async(_firing_conditions)()


def alerts_enabled() -> bool:
    """True when rules are set and readable (an unreadable setting is reported by check E011)."""
    try:
        return alert_settings().enabled
    except AlertSettingError:
        return False


async def alert_context(viewable: list[QueueRef], queue: QueueRef | None = None) -> dict[str, Any]:
    """The template context of partials/alert_banners.html for a page (nothing when no rule is set)."""
    if not alerts_enabled():
        return {}
    banners, total = await firing_banners(viewable, queue)
    connections = {each.queue.connection for each in banners}
    return {
        "alert_banners": banners,
        "alert_total": total,
        "show_connection": len(connections) > 1,
        # Where the banner is fetched again when the live socket says the firing alerts changed.
        "alerts_url": alerts_url(queue),
    }


def alerts_url(queue: QueueRef | None) -> str:
    """The banner's own URL: the overview's, or a queue page's."""
    if queue is None:
        return reverse("bullmq_dashboard:alerts")
    return reverse("bullmq_dashboard:queue-alerts", args=[queue.connection, queue.key])
