"""URLs of the site under test, from its own URLconf: the standalone site mounts the app at /queues/, the
host project at /ops/queues/, so tests never write the mount themselves."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import reverse


def mount() -> str:
    """Where the app's pages are: "/queues/" (standalone) or "/ops/queues/" (host project)."""
    return reverse("bullmq_dashboard:overview")


def dashboard_url(rest: str = "") -> str:
    """A path below the mount, e.g. dashboard_url("api/queues/") or dashboard_url("default/bull:email/")."""
    return mount() + rest


def socket_path(rest: str = "") -> str:
    """A websocket path below `<mount>ws/`, e.g. socket_path() for the overview's socket."""
    return f"{mount()}ws/{rest}"


def ws_path(page_url: str, query: str = "") -> str:
    """The socket path of a page URL (a URL below the mount)."""
    path = socket_path(page_url.removeprefix(mount()))
    if not query:
        return path
    return f"{path}{'&' if '?' in path else '?'}{query}"


def login_url() -> str:
    """The project's login page (LOGIN_URL, a name or a path)."""
    return resolve_url(settings.LOGIN_URL)
