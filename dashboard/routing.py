"""Websocket routes of the live pages, mirroring the page URLs below `<mount>ws/`.

Mount them where the app's HTTP URLs are mounted, with `ws/` appended, e.g. in `asgi.py`:

    URLRouter(websocket_urls("queues/"))   # pages at /queues/…, sockets at /queues/ws/…

The two mounts must agree: the system checks compare them (bullmq_dashboard.W003/W004 give the exact
line for asgi.py). No helper builds both, since urls.py and asgi.py are separate files anyway; a host
that moves the app often can keep the mount in one constant and pass it to both.
"""

from __future__ import annotations

from channels.routing import URLRouter
from django.urls import URLPattern, path

from dashboard import converters  # noqa: F401 - registers the queue key converter
from dashboard.consumers import JobConsumer, OverviewConsumer, QueueConsumer

websocket_urlpatterns = [
    path("", OverviewConsumer.as_asgi(), name="live-overview"),
    path("<str:connection>/<bullmq_queue:queue_key>/", QueueConsumer.as_asgi(), name="live-queue"),
    path("<str:connection>/<bullmq_queue:queue_key>/job/", JobConsumer.as_asgi(), name="live-job"),
]


def websocket_urls(mount: str = "queues/") -> list[URLPattern]:
    """The live routes under `<mount>ws/`, for the project's websocket URLRouter."""
    return [path(f"{mount.strip('/')}/ws/" if mount.strip("/") else "ws/", URLRouter(websocket_urlpatterns))]
