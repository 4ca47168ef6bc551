"""Fixtures of the cache tests: a manager on the shared Redis (db 15) and caches over
a real store of each engine (``store`` comes from ``support.stores``).

Operation deadlines here are generous (2 s): these tests prove behaviour, and a
loaded 2-core machine must not turn a slow hit into a fallback. The fault tests
set their own, short deadlines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runtime.cache.circuit_breaker import CircuitBreaker
from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import KeySchema
from runtime.data import Store

GENEROUS = 1.0


@pytest.fixture
async def manager(redis_url: str) -> AsyncIterator[CacheManager]:
    async with CacheManager(
        redis_url, socket_timeout=GENEROUS, connect_timeout=GENEROUS, pool_timeout=GENEROUS
    ) as manager:
        yield manager


@pytest.fixture
def schema() -> KeySchema:
    return KeySchema()


@pytest.fixture
async def fallback(manager: CacheManager, schema: KeySchema) -> AsyncIterator[FallbackHandler]:
    handler = FallbackHandler(
        manager,
        breaker=CircuitBreaker(),
        schema=schema,
        operation_timeout=GENEROUS * 3,
        recovery_interval=0.02,
    )
    async with handler:
        yield handler


@pytest.fixture
async def cache(fallback: FallbackHandler, store: Store) -> AsyncIterator[TradingCache]:
    async with TradingCache(fallback.manager, store, fallback=fallback) as cache:
        yield cache
