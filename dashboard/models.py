"""The audit log: every action taken or refused. Redis holds the queues; only this lives in the database."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from dashboard.actions import PERMISSIONS


class AuditEntry(models.Model):
    """Who did (or tried) what to which queue or jobs, when, and with what result."""

    class Result(models.TextChoices):
        # Written before the change starts; completed with one of the others once it ended.
        STARTED = "started", pgettext_lazy("audit result", "started")
        DONE = "done", pgettext_lazy("audit result", "done")
        REFUSED = "refused", pgettext_lazy("audit result", "refused")
        CONFLICT = "conflict", pgettext_lazy("audit result", "conflict")
        INVALID = "invalid", pgettext_lazy("audit result", "invalid")
        FAILED = "failed", pgettext_lazy("audit result", "failed")

    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("user")
    )
    username = models.CharField(_("username"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=40)
    connection = models.CharField(_("connection"), max_length=100, blank=True)
    queue = models.CharField(_("queue"), max_length=500, blank=True)
    job_ids = models.JSONField(_("job ids"), default=list, blank=True)
    count = models.IntegerField(_("done"), default=0)
    skipped = models.IntegerField(_("skipped"), default=0)
    result = models.CharField(_("result"), max_length=10, choices=Result.choices)
    # In English, as the action said it (entries are read by every operator, in any language).
    message = models.TextField(_("message"), blank=True)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(_("address"), null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        default_permissions = ("view",)
        permissions = list(PERMISSIONS)

    def __str__(self) -> str:
        who = self.username or "anonymous"
        return f"{self.created:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.queue} {self.result}"


class AlertState(models.Model):
    """An alert of one queue and condition while it fires (dashboard/alerts.py): one row per alert,
    created when it fires and deleted once its resolution is announced, so that one process of many
    announces each transition and every process shows the same banners."""

    connection = models.CharField(_("connection"), max_length=100)
    queue = models.CharField(_("queue"), max_length=500)
    condition = models.CharField(_("condition"), max_length=40)
    since = models.DateTimeField(_("since"))
    value = models.FloatField(_("value"), default=0)
    # In English, as the evaluation said it; pages translate the template kept in `params`.
    message = models.TextField(_("message"), blank=True)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    # The transition's announcement (audit entry, webhook): done, and when a process claimed it (a
    # process that stops mid-way leaves it to be claimed again).
    announced = models.BooleanField(_("announced"), default=False)
    claimed = models.DateTimeField(_("claimed"), null=True, blank=True)
    # Set when the alert stopped firing; the row is deleted once that is announced.
    resolved = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        ordering = ["since", "id"]
        verbose_name = _("firing alert")
        verbose_name_plural = _("firing alerts")
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "queue", "condition"], name="bullmq_one_alert_per_condition"
            )
        ]

    def __str__(self) -> str:
        return f"{self.queue} {self.condition} since {self.since:%Y-%m-%d %H:%M:%S}"
