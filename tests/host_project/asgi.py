"""The host project's ASGI application: Django's own handler for HTTP, the dashboard's websockets at
/ops/queues/ws/ (next to its pages at /ops/queues/), as channels' documentation writes it."""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.host_project.settings")

# Django must be set up before anything imports models or the channels auth stack.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dashboard.routing import websocket_urls  # noqa: E402

application = ProtocolTypeRouter(
    {
        # No web server in front of this project in the tests: Django's staticfiles serves /static/.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urls("ops/queues/")))
        ),
    }
)
