"""App configuration: registers the system checks."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The BullMQ dashboard app."""

    name = "dashboard"
    verbose_name = "BullMQ dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect checks and the settings-changed receiver."""
        from dashboard import checks, conf, middleware_checks  # noqa: F401
        from dashboard.live import sessions  # noqa: F401
