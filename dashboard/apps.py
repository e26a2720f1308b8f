"""App configuration: registers the system checks."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    """The BullMQ dashboard app. Its import package is `dashboard`; everything a host project sees is
    namespaced `bullmq_dashboard` (app label, permissions, URL namespace, templates, static files,
    settings), so it cannot collide with a host's own `dashboard` app."""

    name = "dashboard"
    label = "bullmq_dashboard"
    verbose_name = _("BullMQ dashboard")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect checks and the settings-changed receivers (the config cache, the queue directories)."""
        from dashboard import checks, conf, registry, template_checks  # noqa: F401
        from dashboard.live import sessions  # noqa: F401
