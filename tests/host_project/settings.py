"""Settings of the host project: an ordinary Django project that embeds the dashboard, and nothing of the
standalone site (config/).

Django's stock middleware plus django-htmx's, Django's own ASGI handler, its own URLconf with its own
login and logout views (LOGIN_URL is a URL name), the app mounted at /ops/queues/, the pages inside the
host's base template (BULLMQ_DASHBOARD["BASE_TEMPLATE"]), in-memory channel layer and SQLite.

The second pytest run uses it (`pytest --ds=tests.host_project.settings`, see tests/conftest.py); the
browser test serves it with daphne and passes a file database and its Redis in HOST_PROJECT_DATABASE and
HOST_PROJECT_REDIS_URL (tests.support.site.host_env).
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

SECRET_KEY = "host-project-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "tests.host_project.urls"
ASGI_APPLICATION = "tests.host_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("HOST_PROJECT_DATABASE", ":memory:"),
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"

LOGIN_URL = "host-login"
LOGIN_REDIRECT_URL = "host-home"
LOGOUT_REDIRECT_URL = "host-login"

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

BULLMQ_DASHBOARD = {
    "CONNECTIONS": {"default": {"URL": os.environ.get("HOST_PROJECT_REDIS_URL", "redis://127.0.0.1:1/0")}},
    "BASE_TEMPLATE": "host/base.html",
    "LOGOUT_URL": "host-logout",
}

LOGGING = {"version": 1, "disable_existing_loggers": False}
