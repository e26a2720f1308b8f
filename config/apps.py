"""The standalone site as an installed app, so that its own system checks are registered."""

from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The standalone site's checks (its event-loop middlewares stand in for Django's)."""

    name = "config"
    label = "bullmq_site"
    verbose_name = "BullMQ dashboard site"

    def ready(self) -> None:
        """Register the site's checks."""
        from config import middleware_checks  # noqa: F401
