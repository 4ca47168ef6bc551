"""FallbackHandler and its breaker on a private Redis, time driven by a ManualClock (C11-C13).

Each test starts its own redis-server (it kills and restarts it to make real
connection faults) and never starts the handler's background recovery task,
so only the test's own calls move the breaker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as redis_async
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from runtime.cache.circuit_breaker import BreakerState, BreakerTransition, CircuitBreaker
from runtime.cache.clock import ManualClock
from runtime.cache.exceptions import (
    CacheClientError,
    CacheConnectionError,
    CacheTimeoutError,
    CircuitOpenError,
)
from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import Family
from runtime.data import SqliteStore
from runtime.domain import Order
from support.factories import order
from support.fault_proxy import FaultProxy
from support.redis_server import RedisServer
from support.waiting import wait_until

pytestmark = pytest.mark.fault

WAIT = 30.0
SYMBOL = "SYM001"


@dataclass
class Rig:
    server: RedisServer
    clock: ManualClock
    breaker: CircuitBreaker
    handler: FallbackHandler
    cache: TradingCache
    events: list[BreakerTransition]
    stored: Order


async def commands(server: RedisServer, name: str) -> int:
    """How many times the server ran ``name`` (INFO commandstats), on a connection of its own."""
    client = redis_async.Redis.from_url(server.url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    entry = stats.get(f"cmdstat_{name}")
    return int(entry["calls"]) if entry else 0


async def fallbacks_in_prometheus(family: Family, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "runtime_cache_fallback_total", {"family": family.value, "reason": reason}
    )
    return value or 0.0


def rig_for(url: str, server: RedisServer, store: SqliteStore, stored: Order) -> Rig:
    clock = ManualClock()
    events: list[BreakerTransition] = []
    breaker = CircuitBreaker(clock=clock, listeners=[events.append])
    manager = CacheManager(url, socket_timeout=1.0, connect_timeout=1.0, pool_timeout=1.0)
    handler = FallbackHandler(manager, breaker=breaker, operation_timeout=3.0)
    cache = TradingCache(manager, store, fallback=handler)
    return Rig(server, clock, breaker, handler, cache, events, stored)


@pytest.fixture
async def rig(redis_server: RedisServer, sqlite_store: SqliteStore) -> AsyncIterator[Rig]:
    version = await sqlite_store.put_order(order("ord-1", SYMBOL))
    stored = await sqlite_store.get_order("ord-1")
    assert stored is not None and stored.version == version
    built = rig_for(redis_server.url, redis_server, sqlite_store, stored)
    try:
        yield built
    finally:
        await built.cache.close()
        await built.handler.manager.close()


async def fault(rig: Rig, times: int) -> None:
    """``times`` reads that each hit a real connection fault (the server is killed)."""
    for _ in range(times):
        assert await rig.cache.order("ord-1") == rig.stored


async def ping(client: Redis) -> bool:
    return bool(await client.ping())


async def test_four_faults_a_success_and_four_faults_leave_it_closed_the_fifth_opens(
    rig: Rig,
) -> None:
    await rig.server.kill()
    await fault(rig, 4)
    await rig.server.restart()
    assert await rig.handler.execute(ping)
    await rig.server.kill()
    await fault(rig, 4)
    stats = rig.breaker.statistics()
    assert stats.state is BreakerState.CLOSED and stats.consecutive_failures == 4
    assert stats.total_failures == 8
    await fault(rig, 1)
    assert rig.breaker.state is BreakerState.OPEN
    assert [(e.from_state, e.to_state) for e in rig.events] == [
        (BreakerState.CLOSED, BreakerState.OPEN)
    ]


async def test_open_sends_no_command_to_redis_and_serves_the_store(rig: Rig) -> None:
    await rig.server.kill()
    await fault(rig, 5)
    assert rig.breaker.state is BreakerState.OPEN
    await rig.server.restart()  # Redis is back, but the breaker has not probed yet
    before = {name: await commands(rig.server, name) for name in ("hgetall", "evalsha", "eval")}
    prometheus_before = await fallbacks_in_prometheus(Family.ORDER, "open")
    fallbacks_before = rig.cache.statistics().families[Family.ORDER].fallbacks
    for _ in range(20):
        assert await rig.cache.order("ord-1") == rig.stored
    rig.clock.advance(WAIT - 0.001)
    assert await rig.cache.order("ord-1") == rig.stored
    after = {name: await commands(rig.server, name) for name in before}
    assert after == before
    assert rig.cache.statistics().families[Family.ORDER].fallbacks == fallbacks_before + 21
    assert rig.handler.statistics().fallbacks_by_reason["open"] == 21
    assert await fallbacks_in_prometheus(Family.ORDER, "open") == prometheus_before + 21
    assert rig.breaker.state is BreakerState.OPEN


async def test_at_the_wait_exactly_one_of_a_hundred_calls_reaches_redis(
    redis_server: RedisServer, sqlite_store: SqliteStore
) -> None:
    await sqlite_store.put_order(order("ord-1", SYMBOL))
    stored = await sqlite_store.get_order("ord-1")
    assert stored is not None
    async with FaultProxy("127.0.0.1", redis_server.port) as proxy:
        rig = rig_for(proxy.url(), redis_server, sqlite_store, stored)
        try:
            await redis_server.kill()
            await fault(rig, 5)
            await redis_server.restart()
            rig.clock.advance(WAIT - 0.001)
            with pytest.raises(CircuitOpenError) as early:
                await rig.handler.execute(ping)
            assert early.value.retry_after == pytest.approx(0.001)
            rig.clock.advance(0.001)
            # One warm pooled connection, opened around the breaker: with the
            # reply stalled, the probe's command (not its handshake) is held.
            assert await rig.handler.manager.get_connection().ping()
            proxy.stall_reply()
            before = await commands(redis_server, "hgetall")
            readers = [asyncio.create_task(rig.cache.order("ord-1")) for _ in range(100)]
            # 99 are served by the store while the probe's reply is held.
            await wait_until(lambda: sum(t.done() for t in readers) == 99)
            await wait_until(lambda: proxy.bytes_held > 0)
            assert rig.breaker.state is BreakerState.HALF_OPEN
            assert await commands(redis_server, "hgetall") == before + 1
            assert rig.handler.statistics().fallbacks_by_reason["open"] == 99
            proxy.resume()
            results = await asyncio.gather(*readers)
            assert results == [stored] * 100
            assert rig.breaker.state is BreakerState.CLOSED
            assert await commands(redis_server, "hgetall") == before + 1
        finally:
            await rig.cache.close()
            await rig.handler.manager.close()


async def test_probe_failure_reopens_for_a_new_wait_and_success_closes(rig: Rig) -> None:
    await rig.server.kill()
    await fault(rig, 5)
    rig.clock.advance(WAIT)
    with pytest.raises(CacheConnectionError):
        await rig.handler.execute(ping)  # the probe; Redis is still down
    stats = rig.breaker.statistics()
    assert stats.state is BreakerState.OPEN and stats.retry_after == pytest.approx(WAIT)
    rig.clock.advance(WAIT - 0.001)
    with pytest.raises(CircuitOpenError):
        await rig.handler.execute(ping)
    await rig.server.restart()
    rig.clock.advance(0.002)  # past the new wait (0.001 could round to just short of it)
    assert await rig.handler.execute(ping)
    assert rig.breaker.state is BreakerState.CLOSED
    assert [(e.from_state, e.to_state) for e in rig.events] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    assert rig.handler.statistics().recoveries == 1


async def test_a_cancelled_probe_frees_its_permit(rig: Rig) -> None:
    await rig.server.kill()
    await fault(rig, 5)
    await rig.server.restart()
    rig.clock.advance(WAIT)
    entered = asyncio.Event()

    async def held(client: Redis) -> None:
        entered.set()
        await asyncio.Event().wait()

    probe = asyncio.create_task(rig.handler.execute(held))
    await entered.wait()
    with pytest.raises(CircuitOpenError) as busy:
        await rig.handler.execute(ping)
    assert busy.value.retry_after == 0.0  # a probe is in flight
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert rig.breaker.state is BreakerState.HALF_OPEN
    assert await rig.handler.execute(ping)  # admitted at once as the new probe
    assert rig.breaker.state is BreakerState.CLOSED


async def test_application_errors_release_the_probe_without_deciding(rig: Rig) -> None:
    await rig.server.kill()
    await fault(rig, 5)
    await rig.server.restart()
    rig.clock.advance(WAIT)

    async def broken(client: Redis) -> None:
        raise ValueError("a bug in the operation, not a cache fault")

    with pytest.raises(CacheClientError, match="a bug"):  # wrapped, logged, not counted
        await rig.handler.execute(broken)
    assert rig.breaker.state is BreakerState.HALF_OPEN
    assert rig.breaker.statistics().total_failures == 5
    assert await rig.handler.execute(ping)
    assert rig.breaker.state is BreakerState.CLOSED


async def test_load_bound_makes_a_caller_wait_then_gives_load_busy(
    rig: Rig,
) -> None:
    from runtime.cache.exceptions import LoadBusyError

    handler = FallbackHandler(rig.handler.manager, max_concurrent_loads=1, load_wait=0.05)
    release = asyncio.Event()

    async def slow() -> int:
        await release.wait()
        return 1

    first = asyncio.create_task(handler.load(slow))
    await wait_until(lambda: handler.statistics().loads_in_flight == 1)
    with pytest.raises(LoadBusyError):
        await handler.load(slow)
    release.set()
    assert await first == 1
    assert handler.statistics().loads_in_flight == 0
    assert await handler.load(slow) == 1


async def test_deadlines_passed_while_redis_is_healthy_do_not_open_the_breaker(
    redis_server: RedisServer,
) -> None:
    """Local saturation (here: an operation that outlives its deadline on our side)
    is not Redis failing: the health check answers, so no fault is counted."""
    async with CacheManager(redis_server.url) as manager:
        handler = FallbackHandler(manager, operation_timeout=0.02)
        async with handler:

            async def slow_on_our_side(client: Redis) -> None:
                await asyncio.Event().wait()  # never answers: we are the slow ones

            for _ in range(10):
                with pytest.raises(CacheTimeoutError):
                    await handler.execute(slow_on_our_side)
            await wait_until(lambda: handler.statistics().local_timeouts == 10)
            assert handler.breaker.state is BreakerState.CLOSED
            assert handler.breaker.statistics().total_failures == 0


async def test_deadlines_passed_while_redis_is_frozen_open_the_breaker(
    redis_server: RedisServer,
) -> None:
    async with CacheManager(redis_server.url, health_check_timeout=0.05) as manager:
        handler = FallbackHandler(manager, operation_timeout=0.05)
        async with handler:
            await handler.execute(lambda client: client.ping())
            redis_server.stop()
            for _ in range(5):
                with pytest.raises(CacheTimeoutError):
                    await handler.execute(lambda client: client.ping())
            await wait_until(lambda: handler.breaker.state is BreakerState.OPEN)
            assert handler.statistics().local_timeouts == 0
            redis_server.cont()


async def test_an_unexpected_client_error_becomes_a_cache_error_not_a_crash(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with CacheManager(redis_server.url) as manager:
        handler = FallbackHandler(manager)

        async def broken_client(client: Redis) -> None:
            raise AttributeError("'NoneType' object has no attribute 'writelines'")

        with pytest.raises(CacheClientError, match="writelines"):
            await handler.execute(broken_client)
        assert handler.breaker.statistics().total_failures == 0
        assert "unexpected error from the Redis client" in caplog.text
