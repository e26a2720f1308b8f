"""URLs of the standalone site: the dashboard at /queues/, Django's login and admin.

Static files and /healthz are answered in config/asgi.py before Django; with DEBUG on, /static/ comes
here instead and staticfiles serves the apps' files without collectstatic (`make demo`).
"""

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/queues/", permanent=False)),
    path("queues/", include("dashboard.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]

# Empty unless DEBUG is on.
urlpatterns += staticfiles_urlpatterns()
