"""The audit log in the Django admin, read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from dashboard.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Browse and filter the audit log; nobody edits history."""

    list_display = ("created", "username", "action", "queue", "count", "skipped", "result", "message")
    list_filter = ("result", "action", "connection")
    search_fields = ("username", "queue", "message", "action")
    date_hierarchy = "created"
    readonly_fields = [field.name for field in AuditEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
