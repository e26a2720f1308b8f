"""The host project's URLs with the dashboard mounted inside i18n_patterns (English unprefixed, German
at /de/ops/queues/), as docs/embedding.md allows."""

from django.conf.urls.i18n import i18n_patterns
from django.urls import include, path

from tests.host_project.urls import urlpatterns as host_urlpatterns

urlpatterns = [
    *[pattern for pattern in host_urlpatterns if "ops/queues" not in str(pattern.pattern)],
    *i18n_patterns(path("ops/queues/", include("dashboard.urls")), prefix_default_language=False),
]
