"""Settings of the standalone site; every deployment choice comes from the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.environment import env_flag, env_list
from config.security_headers import DEFAULT_POLICY as DEFAULT_CSP

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_flag("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for local use).")
    SECRET_KEY = "insecure-local-development-key-do-not-deploy"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "dashboard",
    "config.apps.SiteConfig",
]

# Django's standard stack, as config.middleware's subclasses that skip a thread hop per hook when
# the hook does no I/O (about 2 ms of every request). Django's deploy checks look for the originals by
# dotted path; config.middleware_checks runs them for these and reports missing ones itself.
MIDDLEWARE = [
    "config.middleware.SecurityMiddleware",
    "config.security_headers.ContentSecurityPolicyMiddleware",
    "config.middleware.SessionMiddleware",
    "config.middleware.CommonMiddleware",
    "config.middleware.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    "config.middleware.MessageMiddleware",
    "config.middleware.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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


def database_from_url(url: str) -> dict[str, object]:
    """A DATABASES entry from `sqlite:///path` or `postgres://user:pass@host:port/name`."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path[1:]) or ":memory:"}
    engines = {
        "postgres": "django.db.backends.postgresql",
        "postgresql": "django.db.backends.postgresql",
        "mysql": "django.db.backends.mysql",
    }
    if parts.scheme not in engines:
        raise ImproperlyConfigured(f"DATABASE_URL scheme {parts.scheme!r} is not supported.")
    return {
        "ENGINE": engines[parts.scheme],
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


DATABASES = {
    "default": database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
}

# Keep database connections between requests (each request thread holds its own): opening one per
# request was a tenth of a job list page's time with SQLite, more with PostgreSQL.
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("DJANGO_CONN_MAX_AGE", "300"))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic writes content-hashed copies (and .gz) that config.static_files serves with a cache
# lifetime of years; with DEBUG off, pages need collectstatic to have run (the manifest).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/queues/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = env_flag("DJANGO_SECURE_COOKIES")
SESSION_COOKIE_SECURE = env_flag("DJANGO_SECURE_COOKIES")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# HTTPS. Behind a TLS-terminating proxy set DJANGO_SECURE_PROXY_SSL_HEADER=1 (the proxy must set
# X-Forwarded-Proto and strip it from clients) and DJANGO_BEHIND_PROXY=1 (daphne --proxy-headers).
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_flag("DJANGO_SECURE_HSTS_PRELOAD")
SECURE_SSL_REDIRECT = env_flag("DJANGO_SECURE_SSL_REDIRECT")
if env_flag("DJANGO_SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# config.security_headers sends it on every HTML response; DJANGO_CSP replaces the whole policy.
CONTENT_SECURITY_POLICY = os.environ.get("DJANGO_CSP", "").strip() or DEFAULT_CSP

# Error reports (DEBUG pages, admin mails) show connection URLs with their passwords masked.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.RedactingExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "config.error_reports.RedactingExceptionReporter"

# Websocket fan-out. In-memory is right for one daphne process; with several processes behind a
# balancer set CHANNEL_REDIS_URL (channels-redis). Either way each process runs one events watcher.
if os.environ.get("CHANNEL_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["CHANNEL_REDIS_URL"]], "prefix": "bullmq-dashboard"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

BULLMQ_DASHBOARD = {
    "CONNECTIONS": {"default": {"URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}},
    "READ_ONLY": env_flag("DASHBOARD_READ_ONLY"),
    "READ_ONLY_QUEUES": env_list("DASHBOARD_READ_ONLY_QUEUES"),
    "DISCOVERY_INTERVAL": float(os.environ.get("DASHBOARD_DISCOVERY_INTERVAL", "30")),
    "LIVE": {
        "ENABLED": env_flag("DASHBOARD_LIVE", default=True),
        "REFRESH_INTERVAL": float(os.environ.get("DASHBOARD_LIVE_INTERVAL", "1.0")),
    },
}
if os.environ.get("DASHBOARD_SEARCH_MAX_SCAN"):
    # Jobs one search request reads at most (default 10,000).
    BULLMQ_DASHBOARD["SEARCH"] = {"MAX_SCAN": int(os.environ["DASHBOARD_SEARCH_MAX_SCAN"])}
if os.environ.get("DASHBOARD_METRICS_TOKEN"):
    # Bearer token for /queues/metrics (Prometheus scrapers); unset, only logged-in viewers read it.
    BULLMQ_DASHBOARD["METRICS_TOKEN"] = os.environ["DASHBOARD_METRICS_TOKEN"]
if os.environ.get("DASHBOARD_ALERTS"):
    # The ALERTS dict as JSON, e.g. {"RULES": [{"QUEUES": ["bull:*"], "BACKLOG": 1000}]} (docs/alerts.md);
    # a malformed value is reported by `manage.py check` (E009/E011), not raised here.
    try:
        BULLMQ_DASHBOARD["ALERTS"] = json.loads(os.environ["DASHBOARD_ALERTS"])
    except ValueError:
        BULLMQ_DASHBOARD["ALERTS"] = os.environ["DASHBOARD_ALERTS"]
if os.environ.get("DASHBOARD_ALERT_WEBHOOK_URL"):
    alerts = BULLMQ_DASHBOARD.setdefault("ALERTS", {})
    if isinstance(alerts, dict):
        alerts["WEBHOOK_URL"] = os.environ["DASHBOARD_ALERT_WEBHOOK_URL"]
if env_flag("REDIS_CLUSTER"):
    # REDIS_URL names one node of a Redis Cluster (docs/compatibility.md).
    BULLMQ_DASHBOARD["CONNECTIONS"]["default"]["CLUSTER"] = True  # type: ignore[index]
if os.environ.get("DASHBOARD_PREFIXES"):
    BULLMQ_DASHBOARD["CONNECTIONS"]["default"]["PREFIXES"] = env_list("DASHBOARD_PREFIXES")  # type: ignore[index]
if os.environ.get("DASHBOARD_CONNECTIONS"):
    # Several Redis servers instead of REDIS_URL's, as JSON: {"eu": "redis://eu:6379/0", "us": {"URL":
    # "redis://us:6379/0", "CLUSTER": true}}; a malformed value is reported by `manage.py check` (E001).
    try:
        BULLMQ_DASHBOARD["CONNECTIONS"] = json.loads(os.environ["DASHBOARD_CONNECTIONS"])
    except ValueError:
        BULLMQ_DASHBOARD["CONNECTIONS"] = os.environ["DASHBOARD_CONNECTIONS"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "bullmq_dashboard": {"handlers": ["console"], "level": "INFO"},
        "queues": {"handlers": ["console"], "level": "INFO"},
    },
}
