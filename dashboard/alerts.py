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
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.db import IntegrityError
from django.urls import reverse

from dashboard.audit import MAX_MESSAGE, bounded_params
from dashboard.conf import DashboardConfig, get_config
from dashboard.durations import duration_ms
from dashboard.links import queue_url
from dashboard.models import AlertState, AuditEntry
from dashboard.translation import translated
from queues.alerts import Condition, Finding, Rule
from queues.messages import Message
from queues.models import QueueRef

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
}
ALERT_KEYS = frozenset({"RULES", "INTERVAL", "WEBHOOK_URL", "WEBHOOK_TIMEOUT", "BASE_URL", "EVALUATE"})


class AlertSettingError(ValueError):
    """A value of `ALERTS` that cannot be read (the system check reports it; evaluation skips it)."""


def duration_seconds(value: object) -> float:
    """Seconds from a number (seconds) or text like "90s", "10m", "1h", "2d"."""
    if isinstance(value, bool):
        raise AlertSettingError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise AlertSettingError(f"{value!r} is negative")
        return float(value)
    try:
        return duration_ms(str(value), bare_unit="s") / 1000
    except ValueError as exc:
        raise AlertSettingError(
            f"{value!r} is not a duration (a number of seconds, or like 90s, 10m, 1h, 2d)"
        ) from exc


def _rule_value(name: str, kind: str, value: object) -> object:
    if kind == "duration":
        return duration_seconds(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AlertSettingError(f"{name} must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise AlertSettingError(f"{name} must be a number, not {value!r}") from None
    if kind == "ratio":
        if not 0 <= number <= 1:
            raise AlertSettingError(f"{name} must be between 0 and 1 (0.2 is 20 %), not {value!r}")
        return number
    if number < 0 or number != int(number):
        raise AlertSettingError(f"{name} must be a whole number of 0 or more, not {value!r}")
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
        read = _read[id(config)] = (config, _settings_of(config))
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
    webhook = raw.get("WEBHOOK_URL") or None
    if webhook is not None:
        parts = urlsplit(str(webhook))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AlertSettingError("ALERTS['WEBHOOK_URL'] must be an http:// or https:// URL")
    return AlertSettings(
        rules=tuple(parse_rule(rule) for rule in rules),
        interval=max(1.0, duration_seconds(raw.get("INTERVAL", DEFAULT_INTERVAL))),
        webhook_url=str(webhook) if webhook else None,
        webhook_timeout=max(0.5, duration_seconds(raw.get("WEBHOOK_TIMEOUT", 5))),
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
    """A transition this process won: the alert fired or resolved."""

    queue: QueueRef
    condition: str
    firing: bool
    since: datetime
    value: float
    message: str


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


AlertKey = tuple[str, str, str]


def _reconcile(
    evaluated: list[QueueRef], firing: list[Finding], now_ms: int
) -> tuple[list[Announcement], frozenset[AlertKey]]:
    """Make the rows of the evaluated queues match what fires; returns the transitions won here and
    the alerts that fire now (of every queue)."""
    evaluated_keys = {(queue.connection, queue.key) for queue in evaluated}
    wanted = {(f.queue.connection, f.queue.key, str(f.condition)): f for f in firing}
    every = {(row.connection, row.queue, row.condition): row for row in AlertState.objects.all().iterator()}
    rows = {key: row for key, row in every.items() if (key[0], key[1]) in evaluated_keys}
    firing_now = frozenset(key for key in every if key not in rows) | frozenset(wanted)
    won: list[Announcement] = []
    for key, finding in wanted.items():
        row = rows.get(key)
        if row is not None:
            if row.value != finding.value or row.message != str(finding.message)[:MAX_MESSAGE]:
                AlertState.objects.filter(pk=row.pk).update(
                    value=finding.value,
                    message=str(finding.message)[:MAX_MESSAGE],
                    params=_message_params(finding.message),
                )
            continue
        try:
            AlertState.objects.create(
                connection=finding.queue.connection,
                queue=finding.queue.key,
                condition=str(finding.condition),
                since=_at(now_ms),
                value=finding.value,
                message=str(finding.message)[:MAX_MESSAGE],
                params=_message_params(finding.message),
            )
        except IntegrityError:
            continue  # another process fired it first and announces it
        won.append(
            Announcement(
                finding.queue, str(finding.condition), True, _at(now_ms), finding.value, str(finding.message)
            )
        )
    for key, row in rows.items():
        if key in wanted:
            continue
        deleted, _ = AlertState.objects.filter(pk=row.pk).delete()
        if deleted:
            queue = QueueRef.from_key(row.connection, row.queue)
            won.append(Announcement(queue, row.condition, False, row.since, row.value, row.message))
    return won, firing_now


def _audit(announcement: Announcement, webhook: str) -> AuditEntry:
    verb = "fired" if announcement.firing else "resolved"
    return AuditEntry.objects.create(
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


# ---- the webhook ----


def slack_escape(text: str) -> str:
    """Text for Slack's mrkdwn: &, < and > escaped, so a queue name cannot mention @channel or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


async def announce(settings: AlertSettings, won: Iterable[Announcement]) -> list[AuditEntry]:
    """Call the webhook (when set) and audit each transition; returns the audit entries."""
    entries = []
    for announcement in won:
        webhook = "not configured"
        if settings.webhook_url:
            payload = webhook_payload(announcement, _link(settings, announcement.queue))
            webhook = await asyncio.to_thread(
                post_webhook, settings.webhook_url, payload, settings.webhook_timeout
            )
        entries.append(await sync_to_async(_audit)(announcement, webhook))
        logger.info(
            "alert %s %s %s: %s",
            "fired" if announcement.firing else "resolved",
            announcement.queue.key,
            announcement.condition,
            announcement.message,
        )
    return entries


async def reconcile(
    evaluated: list[QueueRef], firing: list[Finding], now_ms: int
) -> tuple[list[Announcement], frozenset[AlertKey]]:
    """`_reconcile` in a thread (it uses the database)."""
    return await sync_to_async(_reconcile)(evaluated, firing, now_ms)


# ---- banners ----


@dataclass(frozen=True)
class Banner:
    """A firing alert as the pages list it."""

    queue: QueueRef
    condition: str
    since: datetime
    message: str


def _banners(queues: set[QueueRef] | None, visible: set[tuple[str, str]] | None) -> tuple[list[Banner], int]:
    rows = AlertState.objects.all()
    banners: list[Banner] = []
    total = 0
    for row in rows.iterator():
        key = (row.connection, row.queue)
        if visible is not None and key not in visible:
            continue
        prefix, _, name = row.queue.rpartition(":")
        queue = QueueRef(row.connection, prefix, name)
        if queues is not None and queue not in queues:
            continue
        total += 1
        if len(banners) < MAX_BANNERS:
            banners.append(Banner(queue, row.condition, row.since, shown_message(row)))
    return banners, total


async def firing_banners(viewable: list[QueueRef], queue: QueueRef | None = None) -> tuple[list[Banner], int]:
    """The firing alerts of the queues a user may view (of one queue, on its page), at most MAX_BANNERS,
    and how many fire in all."""
    visible = {(each.connection, each.key) for each in viewable}
    return await sync_to_async(_banners)({queue} if queue else None, visible)


CONDITION_NAMES = {condition.value: condition for condition in Condition}


def _firing_conditions() -> dict[QueueRef, tuple[str, ...]]:
    found: dict[QueueRef, list[str]] = {}
    for connection, queue_key, condition in AlertState.objects.values_list(
        "connection", "queue", "condition"
    ):
        prefix, _, name = queue_key.rpartition(":")
        found.setdefault(QueueRef(connection, prefix, name), []).append(condition)
    return {queue: tuple(sorted(conditions)) for queue, conditions in found.items()}


async def firing_conditions() -> dict[QueueRef, tuple[str, ...]]:
    """The conditions that fire, by queue (for the Prometheus exposition)."""
    return await sync_to_async(_firing_conditions)()


async def alert_context(viewable: list[QueueRef], queue: QueueRef | None = None) -> dict[str, Any]:
    """The template context of partials/alert_banners.html for a page (nothing when no rule is set)."""
    try:
        if not alert_settings().enabled:
            return {}
    except AlertSettingError:
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
