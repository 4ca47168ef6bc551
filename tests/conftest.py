"""Fixtures for the shared services of the machine.

The shared Redis (127.0.0.1:6379) is used only through database 15, flushed
before and after each test that asks for it. Tests that break a Redis start
their own (``support.redis_server``). A missing service fails the test loudly:
nothing is skipped.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_async

from support.redis_server import (  # noqa: F401 - fixtures for every test module
    redis_server_factory_fixture,
    redis_server_fixture,
)
from support.stores import (  # noqa: F401 - fixtures for every test module
    engine_fixture,
    pg_schema_fixture,
    pg_store_fixture,
    sqlite_store_fixture,
    store_fixture,
)

SHARED_REDIS_URL = os.environ.get("RUNTIME_CACHE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_DSN = os.environ.get(
    "RUNTIME_CACHE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """URL of the shared Redis, database 15, empty before and after the test."""
    client = redis_async.Redis.from_url(SHARED_REDIS_URL)
    try:
        try:
            await client.flushdb()
        except Exception as exc:
            pytest.fail(f"the shared Redis at {SHARED_REDIS_URL} does not answer: {exc}")
        yield SHARED_REDIS_URL
        await client.flushdb()
    finally:
        await client.aclose()


@pytest.fixture
def postgres_dsn() -> str:
    """DSN of the shared PostgreSQL database ``test``."""
    return POSTGRES_DSN
