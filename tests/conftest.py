"""Fixtures: a throwaway redis-server per session, the dashboard pointed at it, logged-in clients.

Two runs (`make test` does both): `pytest` runs every test against the standalone site (tests.settings,
config/); `pytest --ds=tests.host_project.settings` runs the tests marked `host_compatible` (whole
modules: pages, API, actions, security, live sockets) and `host_only` against the host project
(tests/host_project/: stock middleware, Django's ASGI handler, its own login and base template, the app
at /ops/queues/), leaving out those also marked `standalone_only`. The standalone run leaves out
`host_only` tests. Tests take URLs from tests.support.urls and the ASGI application from
settings.ASGI_APPLICATION, so the same test runs against either project.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard.registry import reset_directories
from queues.throwaway_redis import ThrowawayRedis
from tests.support.dashboard import close_dashboard, dashboard_settings

HOST_PROJECT_SETTINGS = "tests.host_project.settings"


def host_run() -> bool:
    """This run tests the host project (tests/host_project/) rather than the standalone site."""
    return str(settings.SETTINGS_MODULE) == HOST_PROJECT_SETTINGS


def runs_here(item: pytest.Item, host: bool) -> bool:
    """Whether a test belongs to this run (see the module docstring)."""
    if not host:
        return item.get_closest_marker("host_only") is None
    marked = item.get_closest_marker("host_compatible") or item.get_closest_marker("host_only")
    return marked is not None and item.get_closest_marker("standalone_only") is None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests of the other run."""
    host = host_run()
    deselected = [item for item in items if not runs_here(item, host)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if runs_here(item, host)]


def ensure_empty(url: str) -> None:
    """Refuse to run against a Redis DB holding keys this test session did not create."""
    client = redis.Redis.from_url(url)
    try:
        size = client.dbsize()
    finally:
        client.close()
    if size:
        pytest.exit(f"refusing to use {url}: it holds {size} keys the tests did not create", returncode=3)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of an empty Redis that belongs to the tests: $TEST_REDIS_URL or a throwaway server."""
    explicit = os.environ.get("TEST_REDIS_URL")
    if explicit:
        ensure_empty(explicit)
        yield explicit
        return
    with ThrowawayRedis() as server:
        yield server.url


@pytest.fixture(autouse=True)
def fresh_audit_rate_limits() -> None:
    """Each test starts with no refusals counted (the rate limit keys users by primary key)."""
    from dashboard.audit import reset_rate_limits

    reset_rate_limits()


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The test Redis, emptied after each test; the dashboard points at it and forgets old queues."""
    with override_settings(BULLMQ_DASHBOARD=dashboard_settings(redis_server)):
        reset_directories()
        yield redis_server
    client = redis.Redis.from_url(redis_server)
    try:
        client.flushdb()
    finally:
        client.close()
    reset_directories()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """A raw async client for assertions and malformed-data fixtures."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def staff_user(transactional_db: None, django_user_model: Any) -> Any:
    """A staff user, who may view the dashboard."""
    return django_user_model.objects.create_user("operator", password="pw", is_staff=True)


@pytest.fixture
async def client(redis_url: str, staff_user: Any) -> AsyncIterator[AsyncClient]:
    """A logged-in staff AsyncClient; the dashboard's Redis clients are closed after the test."""
    async_client = AsyncClient()
    await async_client.aforce_login(staff_user)
    yield async_client
    await close_dashboard()


@pytest.fixture
async def anonymous_client(redis_url: str, transactional_db: None) -> AsyncIterator[AsyncClient]:
    """An AsyncClient with nobody logged in."""
    yield AsyncClient()
    await close_dashboard()


@pytest.fixture
def superuser(transactional_db: None, django_user_model: Any) -> Any:
    """A superuser, who may take every action."""
    return django_user_model.objects.create_superuser("root", password="pw")


@pytest.fixture
async def superuser_client(superuser: Any) -> AsyncIterator[AsyncClient]:
    """A logged-in superuser AsyncClient, for tests that point the dashboard at a Redis of their own;
    waits for background operations before closing the dashboard's clients."""
    from dashboard.operations import wait_all

    async_client = AsyncClient()
    await async_client.aforce_login(superuser)
    yield async_client
    await wait_all()
    await close_dashboard()


@pytest.fixture
def admin_client(redis_url: str, superuser_client: AsyncClient) -> AsyncClient:
    """A logged-in superuser AsyncClient with the dashboard on the test Redis (set up first, so that its
    clients are closed before the Redis is emptied)."""
    return superuser_client
