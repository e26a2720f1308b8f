"""The audit log: every action taken or refused. Redis holds the queues; only this lives in the database."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dashboard.actions import PERMISSIONS


class AuditEntry(models.Model):
    """Who did (or tried) what to which queue or jobs, when, and with what result."""

    class Result(models.TextChoices):
        # Written before the change starts; completed with one of the others once it ended.
        STARTED = "started", "started"
        DONE = "done", "done"
        REFUSED = "refused", "refused"
        CONFLICT = "conflict", "conflict"
        INVALID = "invalid", "invalid"
        FAILED = "failed", "failed"

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40)
    connection = models.CharField(max_length=100, blank=True)
    queue = models.CharField(max_length=500, blank=True)
    job_ids = models.JSONField(default=list, blank=True)
    count = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)
    result = models.CharField(max_length=10, choices=Result.choices)
    message = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        default_permissions = ("view",)
        permissions = list(PERMISSIONS)

    def __str__(self) -> str:
        who = self.username or "anonymous"
        return f"{self.created:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.queue} {self.result}"
