"""ASGI entry point served by daphne: HTTP, and the dashboard's websockets under /queues/ws/.

HTTP: /healthz and the static files are answered before Django (config.health, config.static_files);
every other request goes to Django.
"""

import os
from typing import Any

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

from config.asgi_handler import ThreadPoolASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before anything imports models or the channels auth stack.
django.setup(set_prefix=False)
# The thread-keeping handler, unless a settings module (the serving benchmark's) asks for Django's own.
django_asgi_app = ThreadPoolASGIHandler() if getattr(settings, "SITE_THREAD_POOL", True) else ASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config import health  # noqa: E402
from config.static_files import StaticFiles  # noqa: E402
from dashboard.routing import websocket_urls  # noqa: E402

static_files = StaticFiles()


async def http_application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The site's HTTP: the health check, static files, then Django."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path") or ""
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    if path == health.PATH:
        await health.health_check(scope, receive, send)
    elif static_files.serves(path):
        await static_files(scope, receive, send)
    else:
        await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urls("queues/")))),
    }
)
