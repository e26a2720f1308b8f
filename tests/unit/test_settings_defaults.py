"""Defaults written once (the library's, taken by the settings) and settings modules free of cycles."""

from __future__ import annotations

import ast
from pathlib import Path

from django.test import override_settings

from dashboard import conf, registry
from dashboard.conf import DEFAULTS, get_config
from queues.connections import ConnectionSettings
from queues.events import WatcherOptions
from queues.jobs import ReadLimits


def test_unset_settings_take_the_library_defaults() -> None:
    with override_settings(BULLMQ_DASHBOARD={"CONNECTIONS": {"default": "redis://h:1/0"}}):
        config = get_config()
    watcher = WatcherOptions()
    assert config.limits == ReadLimits() == watcher.limits
    assert config.live.refresh_interval == watcher.interval
    assert config.live.resync_interval == watcher.resync_interval
    assert config.live.max_queues == watcher.max_queues
    connection = config.connections["default"]
    library = ConnectionSettings("default", "redis://h:1/0")
    assert (connection.socket_timeout, connection.connect_timeout, connection.max_connections) == (
        library.socket_timeout,
        library.connect_timeout,
        library.max_connections,
    )


def test_a_partial_live_setting_keeps_the_other_defaults() -> None:
    with override_settings(BULLMQ_DASHBOARD={"LIVE": {"REFRESH_INTERVAL": 0.5}}):
        live = get_config().live
    assert live.refresh_interval == 0.5
    assert live.resync_interval == DEFAULTS["LIVE"]["RESYNC_INTERVAL"]
    assert live.poll_interval == DEFAULTS["LIVE"]["POLL_INTERVAL"]


def test_changed_settings_forget_the_queue_directories() -> None:
    with override_settings(BULLMQ_DASHBOARD={"CONNECTIONS": {"a": "redis://h:1/0"}}):
        found = registry.directory("a")
        assert registry.directory("a") is found
        with override_settings(BULLMQ_DASHBOARD={"CONNECTIONS": {"a": "redis://h:2/0"}}):
            assert registry.directory("a") is not found
            assert registry.directory("a").settings.url == "redis://h:2/0"


def test_conf_imports_nothing_of_the_dashboard() -> None:
    """The settings module is imported by the rest of the app, never the reverse (no import cycle)."""
    tree = ast.parse(Path(conf.__file__).read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not [name for name in imported if name.split(".")[0] == "dashboard"]
