"""Fixtures: a throwaway redis-server per session, the dashboard pointed at it, logged-in clients."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from django.test import AsyncClient, override_settings
from redis.asyncio import Redis

from dashboard.registry import reset_directories
from queues.throwaway_redis import ThrowawayRedis
from tests.support.dashboard import close_dashboard, dashboard_settings


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
async def admin_client(redis_url: str, superuser: Any) -> AsyncIterator[AsyncClient]:
    """A logged-in superuser AsyncClient; waits for background operations before closing clients."""
    from dashboard.operations import wait_all

    async_client = AsyncClient()
    await async_client.aforce_login(superuser)
    yield async_client
    await wait_all()
    await close_dashboard()
