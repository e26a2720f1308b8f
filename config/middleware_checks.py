"""Django's middleware deploy checks, run for the event-loop middlewares of `config.middleware`.

Django finds SecurityMiddleware, XFrameOptionsMiddleware, CsrfViewMiddleware and SessionMiddleware by
their exact dotted paths: with the subclasses listed it would warn that they are missing
(security.W001-W003) and skip every check that applies only when they are present (HSTS, SSL redirect,
nosniff, referrer and opener policies, X-Frame-Options DENY, secure CSRF cookie; the session cookie
checks still run, for the installed sessions app). A site listing the
subclasses silences those three warnings (see config/settings.py); this check runs Django's own check
functions against the MIDDLEWARE the subclasses stand for, and reports the three presence warnings as
site.W001-W003 so that silencing Django's does not hide a middleware that is really missing.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.core.checks.security import base, csrf

from config.middleware import REPLACES

PRESENCE = {
    "security.W001": "site.W001",
    "security.W002": "site.W002",
    "security.W003": "site.W003",
}
CHECKS = (
    base.check_security_middleware,
    base.check_xframe_options_middleware,
    csrf.check_csrf_middleware,
    base.check_sts,
    base.check_sts_include_subdomains,
    base.check_sts_preload,
    base.check_content_type_nosniff,
    base.check_ssl_redirect,
    base.check_xframe_deny,
    base.check_referrer_policy,
    base.check_cross_origin_opener_policy,
    csrf.check_csrf_cookie_secure,
)


@register(Tags.security, deploy=True)
def check_inline_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Django's middleware checks as if Django's classes were listed where ours are."""
    listed = list(settings.MIDDLEWARE)
    if not any(path in REPLACES for path in listed):
        return []
    # Imported here: django.test is for checks and tests, not for every process that serves pages.
    from django.test.utils import override_settings

    as_django = [REPLACES.get(path, path) for path in listed]
    with override_settings(MIDDLEWARE=as_django):
        found = [message for check in CHECKS for message in check(app_configs=app_configs)]
    messages: list[CheckMessage] = []
    for message in found:
        if message.id in PRESENCE:
            messages.append(Warning(message.msg, hint=message.hint, id=PRESENCE[message.id]))
        else:
            messages.append(message)
    return messages
