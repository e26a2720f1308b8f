"""Test settings: the standalone site's, with a throwaway SQLite DB and fast password hashing."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key")

from config.settings import *  # noqa: F403

DEBUG = False
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Each test points the dashboard at its own throwaway Redis (see tests/conftest.py).
BULLMQ_DASHBOARD = {"CONNECTIONS": {"default": {"URL": "redis://127.0.0.1:1/0"}}}
LOGGING = {"version": 1, "disable_existing_loggers": False}
