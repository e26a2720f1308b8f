"""System checks that explain a wrong `BULLMQ_DASHBOARD` setting in words a host developer understands.

IDs: bullmq_dashboard.E001 connections missing or malformed; E002 reserved or unsafe connection alias;
E003 unsupported Redis URL; E004 permission callable not importable; E005 default page size not
among the choices; E006 malformed queue in an explicit QUEUES list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import import_string

from dashboard.conf import DEFAULTS, RESERVED_ALIASES


@register()
def check_dashboard_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate the BULLMQ_DASHBOARD dict."""
    raw = {**DEFAULTS, **getattr(settings, "BULLMQ_DASHBOARD", {})}
    errors: list[CheckMessage] = []
    connections = raw.get("CONNECTIONS")
    if not isinstance(connections, dict) or not connections:
        return [
            Error(
                "BULLMQ_DASHBOARD['CONNECTIONS'] must be a non-empty dict of alias -> {'URL': ...}.",
                id="bullmq_dashboard.E001",
            )
        ]
    for alias, options in connections.items():
        errors.extend(check_connection(alias, options))
    try:
        import_string(str(raw["PERMISSION"]))
    except ImportError as exc:
        errors.append(
            Error(
                f"BULLMQ_DASHBOARD['PERMISSION'] = {raw['PERMISSION']!r} cannot be imported: {exc}",
                hint="Give the dotted path of a callable (user, action, queue) -> bool.",
                id="bullmq_dashboard.E004",
            )
        )
    if raw["DEFAULT_PAGE_SIZE"] not in raw["PAGE_SIZES"]:
        errors.append(
            Error(
                "BULLMQ_DASHBOARD['DEFAULT_PAGE_SIZE'] must be one of BULLMQ_DASHBOARD['PAGE_SIZES'].",
                id="bullmq_dashboard.E005",
            )
        )
    return errors


def check_connection(alias: object, options: object) -> list[CheckMessage]:
    """Problems of one CONNECTIONS entry."""
    errors: list[CheckMessage] = []
    if not isinstance(alias, str) or not alias or "/" in alias or alias in RESERVED_ALIASES:
        errors.append(
            Error(
                f"Connection alias {alias!r} cannot be used in URLs.",
                hint=f"Use a plain name other than {', '.join(sorted(RESERVED_ALIASES))}.",
                id="bullmq_dashboard.E002",
            )
        )
    url = options if isinstance(options, str) else options.get("URL") if isinstance(options, dict) else None
    if not isinstance(url, str):
        return [
            *errors,
            Error(
                f"Connection {alias!r} needs a 'URL' such as redis://host:6379/0.", id="bullmq_dashboard.E001"
            ),
        ]
    if urlsplit(url).scheme not in {"redis", "rediss", "unix"}:
        errors.append(
            Error(
                f"Connection {alias!r} has an unsupported URL scheme; use redis://, rediss:// or unix://.",
                id="bullmq_dashboard.E003",
            )
        )
    for key in options.get("QUEUES") or () if isinstance(options, dict) else ():
        prefix, sep, name = str(key).rpartition(":")
        if not (sep and prefix and name):
            errors.append(
                Error(
                    f"Queue {key!r} of connection {alias!r} must be written '<prefix>:<name>'.",
                    id="bullmq_dashboard.E006",
                )
            )
    return errors
