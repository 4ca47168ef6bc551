"""The fault suite: a real redis-server per test, killed, frozen, filled, demoted (C10-C14).

Every test starts its own redis-server (``redis_server_factory``), sometimes
behind a ``FaultProxy``, and drives the whole layer (``TradingCache`` over a
``FallbackHandler`` and a real store). Readers run concurrently; the tests wait
for conditions (``wait_until``) and assert no wall-clock figure, only a
generous hang guard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as redis_async
from redis import exceptions as redis_exc
from redis.asyncio import Redis

from runtime.cache.circuit_breaker import BreakerState, CircuitBreaker, is_cache_fault
from runtime.cache.exceptions import CacheTimeoutError, InvalidKeyError
from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import CacheKeys, Family
from runtime.data import Store, seed_workload
from runtime.domain import Order, Position, Price
from support.factories import order, price
from support.fault_proxy import FaultProxy
from support.redis_server import RedisServer, RedisServerFactory, free_port
from support.waiting import wait_until

pytestmark = pytest.mark.fault

HANG_GUARD = 5.0  # no read may take this long: a hang, not a latency figure
READERS = 16


@dataclass
class Layer:
    manager: CacheManager
    handler: FallbackHandler
    cache: TradingCache

    @property
    def breaker(self) -> CircuitBreaker:
        return self.handler.breaker

    def fallbacks(self, reason: str) -> int:
        return self.handler.statistics().fallbacks_by_reason.get(reason, 0)

    def hits(self, family: Family) -> int:
        return self.cache.statistics().families[family].hits


@asynccontextmanager
async def layer(
    url: str,
    store: Any,
    *,
    operation_timeout: float = 0.1,
    recovery_timeout: float = 0.2,
    pool_size: int = 10,
    pool_timeout: float = 0.1,
    retries: int = 1,
    max_concurrent_loads: int = 32,
    max_pending: int = 10_000,
) -> AsyncIterator[Layer]:
    """The whole layer on ``url`` with short deadlines and a short breaker wait."""
    async with CacheManager(
        url,
        pool_size=pool_size,
        socket_timeout=0.2,
        connect_timeout=0.2,
        pool_timeout=pool_timeout,
        retries=retries,
    ) as manager:
        handler = FallbackHandler(
            manager,
            breaker=CircuitBreaker(recovery_timeout=recovery_timeout),
            operation_timeout=operation_timeout,
            recovery_interval=0.02,
            max_concurrent_loads=max_concurrent_loads,
            max_pending=max_pending,
        )
        async with handler, TradingCache(manager, store, fallback=handler) as cache:
            yield Layer(manager, handler, cache)


@asynccontextmanager
async def direct(url: str) -> AsyncIterator[Redis]:
    """A plain client to look at the server behind the layer's back.

    Its socket timeout is generous (a ``DEBUG RELOAD`` on a loaded machine takes
    seconds); the tests' own ``asyncio.timeout`` hang guards bound it.
    """
    client = redis_async.Redis.from_url(url, socket_timeout=30.0)
    try:
        yield client
    finally:
        await client.aclose()


class Readers:
    """``count`` tasks calling ``read`` in a loop; errors and latencies are collected."""

    def __init__(self, count: int, read: Callable[[int], Awaitable[None]]) -> None:
        self.errors: list[BaseException] = []
        self.latencies: list[float] = []
        self.reads = 0
        self._stop = False
        self._read = read
        self._tasks = [asyncio.create_task(self._run(i)) for i in range(count)]

    async def _run(self, index: int) -> None:
        while not self._stop:
            started = time.perf_counter()
            try:
                await self._read(index)
            except Exception as exc:  # collected and asserted empty by the test
                self.errors.append(exc)
            self.latencies.append(time.perf_counter() - started)
            self.reads += 1
            await asyncio.sleep(0)

    async def stop(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks)

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[int(len(ordered) * 0.99) - 1] if ordered else 0.0


async def seeded(store: Store) -> tuple[dict[str, Price], dict[str, Position]]:
    universe = await seed_workload(store, symbols=4, levels=5, strategies=1)
    prices = {s: p for s in universe.symbols if (p := await store.get_price(s)) is not None}
    positions = {s: q for s in universe.symbols if (q := await store.get_position(s)) is not None}
    assert len(prices) == len(positions) == 4
    return prices, positions


def reader_of(
    cache: TradingCache, prices: dict[str, Price], positions: dict[str, Position]
) -> Callable[[int], Awaitable[None]]:
    symbols = sorted(prices)

    async def read(index: int) -> None:
        symbol = symbols[index % len(symbols)]
        assert await cache.price(symbol) == prices[symbol]
        assert await cache.position(symbol) == positions[symbol]
        snapshot = await cache.snapshot(symbol, depth=3)
        assert snapshot.price == prices[symbol]
        assert snapshot.position == positions[symbol]

    return read


async def seed_orders(store: Any, count: int) -> list[Order]:
    orders = []
    for i in range(count):
        await store.put_order(order(f"ord-{i}", "SYM001"))
        stored = await store.get_order(f"ord-{i}")
        assert stored is not None
        orders.append(stored)
    return orders


# --------------------------------------------------------------------------- kill -9, SIGSTOP


async def test_kill_under_load_no_reader_error_and_recovery_without_traffic(
    redis_server: RedisServer, store: Store
) -> None:
    prices, positions = await seeded(store)
    async with layer(redis_server.url, store) as lay:
        readers = Readers(READERS, reader_of(lay.cache, prices, positions))
        await wait_until(lambda: lay.hits(Family.PRICE) + lay.hits(Family.POSITION) > 50)
        await redis_server.kill()
        await wait_until(lambda: lay.breaker.state is not BreakerState.CLOSED)
        served = readers.reads
        await wait_until(lambda: readers.reads > served + 200 and lay.fallbacks("open") > 50)
        await readers.stop()
        assert readers.errors == []
        assert lay.breaker.state is not BreakerState.CLOSED
        await redis_server.restart()
        await wait_until(lambda: lay.breaker.state is BreakerState.CLOSED)  # no traffic
        assert lay.handler.statistics().recoveries == 1
        hits = lay.hits(Family.PRICE)
        symbol = sorted(prices)[0]
        for _ in range(3):
            assert await lay.cache.price(symbol) == prices[symbol]
        assert lay.hits(Family.PRICE) > hits
        assert max(readers.latencies) < HANG_GUARD


async def test_sigstop_longer_than_the_wait_keeps_reads_within_the_deadline(
    redis_server: RedisServer, sqlite_store: Store
) -> None:
    prices, positions = await seeded(sqlite_store)
    async with layer(redis_server.url, sqlite_store, operation_timeout=0.05) as lay:
        transitions: list[BreakerState] = []
        lay.breaker.add_listener(lambda t: transitions.append(t.to_state))
        readers = Readers(READERS, reader_of(lay.cache, prices, positions))
        await wait_until(lambda: lay.hits(Family.PRICE) > 20)
        redis_server.stop()
        # Frozen through at least two whole waits: two probes failed.
        await wait_until(lambda: transitions.count(BreakerState.OPEN) >= 3)
        frozen_reads = readers.reads
        redis_server.cont()
        await wait_until(lambda: lay.breaker.state is BreakerState.CLOSED)
        await wait_until(lambda: readers.reads > frozen_reads + 100)
        await readers.stop()
        assert readers.errors == []
        assert lay.fallbacks("timeout") >= 5
        assert max(readers.latencies) < HANG_GUARD
        logging.getLogger(__name__).warning(
            "SIGSTOP: %d reads, p99 %.1f ms, max %.1f ms",
            len(readers.latencies),
            readers.p99() * 1000,
            max(readers.latencies) * 1000,
        )


async def test_writes_during_a_partition_are_served_fresh_after_it(
    redis_server: RedisServer, store: Store
) -> None:
    first = await seed_orders(store, 5)
    async with layer(redis_server.url, store) as lay:
        for o in first:
            assert await lay.cache.order(o.order_id) == o
            assert await lay.cache.order(o.order_id) == o  # cached for 60 s
        assert lay.hits(Family.ORDER) == 5
        redis_server.stop()
        newer = [replace(o, quantity=Decimal("250")) for o in first]
        for o in newer:
            assert await lay.cache.put_order(o) is True  # the store committed
        committed = [await store.get_order(o.order_id) for o in first]
        assert all(c is not None and c.version == 2 for c in committed)
        for c in committed:
            assert c is not None and await lay.cache.order(c.order_id) == c
        redis_server.cont()
        await wait_until(
            lambda: lay.breaker.state is BreakerState.CLOSED and not lay.handler.has_pending()
        )
        hits = lay.hits(Family.ORDER)
        for _ in range(3):
            for c in committed:
                assert c is not None and await lay.cache.order(c.order_id) == c
        assert lay.hits(Family.ORDER) > hits  # from the cache again, and fresh (C10)


# --------------------------------------------------------------------------- which errors count


@dataclass
class Case:
    """One error, made real on a private server; ``act`` runs one call that meets it."""

    url: str
    act: Callable[[TradingCache], Awaitable[None]]


async def _replica(factory: RedisServerFactory, *extra: str) -> RedisServer:
    master = await factory()
    replica = await factory(extra_args=["--replicaof", "127.0.0.1", str(master.port), *extra])
    async with direct(replica.url) as client:

        async def linked() -> bool:
            info = await client.info("replication")
            return info.get("master_link_status") == "up"

        async with asyncio.timeout(10):
            while not await linked():  # noqa: ASYNC110 - polling the server
                await asyncio.sleep(0.01)
    return replica


def _reads(expected: Order) -> Callable[[TradingCache], Awaitable[None]]:
    async def act(cache: TradingCache) -> None:
        assert await cache.order(expected.order_id) == expected

    return act


async def _case(name: str, factory: RedisServerFactory, store: Store, stored: Order) -> Case:
    reads = _reads(stored)
    match name:
        case "refused":
            server = await factory()
            await server.kill()
            return Case(server.url, reads)
        case "timeout":
            server = await factory()
            server.stop()
            return Case(server.url, reads)
        case "readonly":
            replica = await _replica(factory)
            versions = iter(range(100, 200))

            async def write(cache: TradingCache) -> None:
                changed = replace(stored, quantity=Decimal(next(versions)))
                assert await cache.put_order(changed) is True

            return Case(replica.url, write)
        case "masterdown":
            # Configured after start: such a replica answers PING with MASTERDOWN.
            server = await factory()
            async with direct(server.url) as client:
                await client.config_set("replica-serve-stale-data", "no")
                await client.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
            return Case(server.url, reads)
        case "clusterdown":
            server = await factory(
                extra_args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            )
            return Case(server.url, reads)
        case "loader_raises":
            server = await factory()

            async def failing_load(cache: TradingCache) -> None:
                async def boom() -> Order | None:
                    raise RuntimeError("store bug")

                with pytest.raises(RuntimeError, match="store bug"):
                    await cache.aside.get(CacheKeys.order("ord-missing"), boom)

            return Case(server.url, failing_load)
        case "invalid_key":
            server = await factory()

            async def bad_input(cache: TradingCache) -> None:
                with pytest.raises(InvalidKeyError):
                    await cache.order("bad id")
                with pytest.raises(InvalidKeyError):
                    await cache.price("{x}")

            return Case(server.url, bad_input)
        case "decode_failure":
            server = await factory()
            key = CacheKeys.order(stored.order_id)

            async def garbage(cache: TradingCache) -> None:
                async with direct(server.url) as client:
                    await client.hset(key, mapping={"v": "not a version", "junk": "\xff"})
                await reads(cache)

            return Case(server.url, garbage)
    raise AssertionError(name)


COUNTED = ["refused", "timeout", "readonly", "masterdown", "clusterdown"]
NOT_COUNTED = ["loader_raises", "invalid_key", "decode_failure"]


@pytest.mark.parametrize("name", COUNTED + NOT_COUNTED)
async def test_which_errors_count_as_cache_faults(
    name: str, redis_server_factory: RedisServerFactory, sqlite_store: Store
) -> None:
    (stored,) = await seed_orders(sqlite_store, 1)
    case = await _case(name, redis_server_factory, sqlite_store, stored)
    async with layer(case.url, sqlite_store, recovery_timeout=60.0) as lay:
        for _ in range(lay.breaker.failure_threshold):
            async with asyncio.timeout(HANG_GUARD):
                await case.act(lay.cache)
        if name in COUNTED:
            # A deadline counts once the health check confirms it: wait for that.
            await wait_until(lambda: lay.breaker.state is BreakerState.OPEN)
        stats = lay.breaker.statistics()
        if name in COUNTED:
            assert stats.state is BreakerState.OPEN, stats
            current = await sqlite_store.get_order(stored.order_id)
            assert await lay.cache.order(stored.order_id) == current  # served by the store
            assert lay.handler.statistics().fallbacks >= 1
        else:
            assert stats.state is BreakerState.CLOSED, stats
            assert stats.total_failures == 0
            assert stats.consecutive_failures == 0


async def test_loading_falls_back_then_recovers(
    redis_server_factory: RedisServerFactory, sqlite_store: Store
) -> None:
    (stored,) = await seed_orders(sqlite_store, 1)
    server = await redis_server_factory(
        extra_args=[
            "--enable-debug-command",
            "yes",
            "--loading-process-events-interval-bytes",
            "1024",
        ]
    )
    async with direct(server.url) as admin:
        await admin.execute_command("DEBUG", "POPULATE", "8000")
        await admin.config_set("key-load-delay", 300)  # microseconds per key: ~2 s loading
        reload = asyncio.create_task(admin.execute_command("DEBUG", "RELOAD"))

        replies: list[redis_exc.BusyLoadingError] = []

        async def loading() -> bool:
            # Redis 7.0 answers LOADING to connections made during the load
            # (connections made before it just wait), so probe with new ones.
            async with direct(server.url) as probe:
                try:
                    await probe.ping()
                except redis_exc.BusyLoadingError as exc:
                    replies.append(exc)
                    return True
            return False

        async with asyncio.timeout(10):
            while not await loading():  # noqa: ASYNC110 - polling the server
                await asyncio.sleep(0.01)
        assert is_cache_fault(replies[0])  # the real LOADING reply counts for the breaker
        async with layer(server.url, sqlite_store) as lay:
            readers = Readers(4, lambda _: _reads(stored)(lay.cache))
            # A connection opened during the load gets LOADING; one opened just
            # before it waits (Redis 7.0): either way a fault, then the fallback.
            await wait_until(lambda: lay.fallbacks("loading") + lay.fallbacks("timeout") >= 1)
            await wait_until(lambda: lay.breaker.state is not BreakerState.CLOSED)
            async with asyncio.timeout(30):  # hang guard
                await reload
            await wait_until(lambda: lay.breaker.state is BreakerState.CLOSED)
            hits = lay.hits(Family.ORDER)
            await wait_until(lambda: lay.hits(Family.ORDER) > hits)
            await readers.stop()
            assert readers.errors == []
            assert max(readers.latencies) < HANG_GUARD


async def test_readonly_replica_writes_never_error_and_recovery_after_promotion(
    redis_server_factory: RedisServerFactory, sqlite_store: Store
) -> None:
    (stored,) = await seed_orders(sqlite_store, 1)
    replica = await _replica(redis_server_factory)
    async with layer(replica.url, sqlite_store) as lay, direct(replica.url) as admin:
        assert await lay.cache.order(stored.order_id) == stored  # read ok, store READONLY
        latest = stored
        for quantity in range(300, 306):
            assert await lay.cache.put_order(replace(stored, quantity=Decimal(quantity)))
            found = await sqlite_store.get_order(stored.order_id)
            assert found is not None
            latest = found
            assert await lay.cache.order(stored.order_id) == latest
        assert lay.breaker.statistics().total_failures >= 5
        await admin.execute_command("REPLICAOF", "NO", "ONE")
        await wait_until(
            lambda: lay.breaker.state is BreakerState.CLOSED and not lay.handler.has_pending()
        )
        hits = lay.hits(Family.ORDER)
        for _ in range(3):
            assert await lay.cache.order(stored.order_id) == latest
        assert lay.hits(Family.ORDER) > hits


async def test_out_of_memory_writes_leave_no_stale_value_and_reads_work(
    redis_server_factory: RedisServerFactory, sqlite_store: Store
) -> None:
    orders = await seed_orders(sqlite_store, 3)
    server = await redis_server_factory(extra_args=["--maxmemory-policy", "noeviction"])
    async with layer(server.url, sqlite_store) as lay, direct(server.url) as admin:
        for o in orders:
            assert await lay.cache.order(o.order_id) == o
            assert await lay.cache.order(o.order_id) == o
        assert lay.hits(Family.ORDER) == 3
        # An empty 7.0 server already uses about 1 MB: the limit goes just above it.
        used = int((await admin.info("memory"))["used_memory"])
        await admin.config_set("maxmemory", max(used + 256 * 1024, 1024 * 1024))

        async def fill() -> None:
            for i in range(10_000):
                await admin.set(f"junk:{i}", b"x" * 4096)

        with pytest.raises(redis_exc.OutOfMemoryError):
            await fill()
        for o in orders:
            newer = replace(o, quantity=Decimal("777"))
            assert await lay.cache.put_order(newer) is True
            committed = await sqlite_store.get_order(o.order_id)
            assert committed is not None and committed.version == 2
            for _ in range(3):
                assert await lay.cache.order(o.order_id) == committed
            assert await admin.hget(CacheKeys.order(o.order_id), "quantity") != b"100"
        await sqlite_store.put_order(order("ord-new", "SYM001"))
        fresh = await sqlite_store.get_order("ord-new")
        assert await lay.cache.order("ord-new") == fresh  # a miss whose store hits OOM
        stats = lay.breaker.statistics()
        assert stats.state is BreakerState.CLOSED and stats.total_failures == 0


# --------------------------------------------------------------------------- the proxy


async def test_reset_mid_reply_returns_no_corrupt_value_and_the_next_call_succeeds(
    redis_server: RedisServer, sqlite_store: Store
) -> None:
    (stored,) = await seed_orders(sqlite_store, 1)
    async with (
        FaultProxy("127.0.0.1", redis_server.port) as proxy,
        layer(proxy.url(), sqlite_store, retries=0) as lay,
    ):
        assert await lay.cache.order(stored.order_id) == stored
        assert await lay.cache.order(stored.order_id) == stored
        proxy.reset_mid_reply(7)
        assert await lay.cache.order(stored.order_id) == stored
        assert lay.fallbacks("connection") == 1
        hits = lay.hits(Family.ORDER)
        assert await lay.cache.order(stored.order_id) == stored
        assert lay.hits(Family.ORDER) == hits + 1
        assert lay.breaker.state is BreakerState.CLOSED


async def test_latency_beyond_the_deadline_falls_back_within_the_budget(
    redis_server: RedisServer, sqlite_store: Store
) -> None:
    (stored,) = await seed_orders(sqlite_store, 1)
    async with (
        FaultProxy("127.0.0.1", redis_server.port) as proxy,
        layer(proxy.url(), sqlite_store, operation_timeout=0.05) as lay,
    ):
        assert await lay.cache.order(stored.order_id) == stored
        proxy.set_latency(1.0)
        for _ in range(3):
            async with asyncio.timeout(HANG_GUARD):
                assert await lay.cache.order(stored.order_id) == stored
        assert lay.fallbacks("timeout") == 3
        proxy.heal()


async def test_pool_exhaustion_is_served_by_the_store_and_keeps_the_breaker_closed(
    redis_server: RedisServer, sqlite_store: Store
) -> None:
    orders = await seed_orders(sqlite_store, 5)
    async with (
        FaultProxy("127.0.0.1", redis_server.port) as proxy,
        layer(
            proxy.url(), sqlite_store, pool_size=2, pool_timeout=0.01, operation_timeout=0.5
        ) as lay,
    ):
        proxy.set_latency(0.05)
        results = await asyncio.gather(
            *(lay.cache.order(orders[i % 5].order_id) for i in range(50))
        )
        assert results == [orders[i % 5] for i in range(50)]
        assert lay.fallbacks("pool_exhausted") > 0
        stats = lay.breaker.statistics()
        assert stats.state is BreakerState.CLOSED and stats.total_failures == 0
        assert lay.manager.status().connections_in_use <= 2


class CountingStore:
    """Wraps a store; tracks concurrent ``get_*`` calls per key and overall."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.now = 0
        self.peak = 0
        self.per_key: Counter[tuple[str, tuple[Any, ...]]] = Counter()
        self.peak_per_key = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not name.startswith("get_"):
            return target

        async def counted(*args: Any, **kwargs: Any) -> Any:
            key = (name, args)
            self.calls += 1
            self.now += 1
            self.per_key[key] += 1
            self.peak = max(self.peak, self.now)
            self.peak_per_key = max(self.peak_per_key, self.per_key[key])
            try:
                await asyncio.sleep(0.002)  # a slower database widens the overlap
                return await target(*args, **kwargs)
            finally:
                self.now -= 1
                self.per_key[key] -= 1

        return counted


async def test_an_outage_never_stampedes_the_store(
    redis_server: RedisServer, sqlite_store: Store
) -> None:
    orders = await seed_orders(sqlite_store, 10)
    counting = CountingStore(sqlite_store)
    bound = 4
    async with layer(redis_server.url, counting, max_concurrent_loads=bound) as lay:
        await redis_server.kill()

        async def reader(i: int) -> None:
            for round_ in range(3):
                o = orders[(i + round_) % 10]
                assert await lay.cache.order(o.order_id) == o

        results = await asyncio.gather(*(reader(i) for i in range(200)), return_exceptions=True)
        assert [r for r in results if r is not None] == []
        assert counting.calls >= 10
        assert counting.peak <= bound
        assert counting.peak_per_key == 1
        assert lay.handler.statistics().loads_in_flight == 0


async def test_a_deadline_mid_reply_never_hands_a_reply_to_the_wrong_command(
    redis_server: RedisServer, sqlite_store: Store
) -> None:
    async with direct(redis_server.url) as admin:
        await admin.mset({f"k{i}": f"v{i}" for i in range(300)})
    async with (
        FaultProxy("127.0.0.1", redis_server.port) as proxy,
        layer(proxy.url(), sqlite_store, pool_size=4, operation_timeout=0.1) as lay,
    ):
        handler = lay.handler

        def get(i: int) -> Callable[[Redis], Awaitable[Any]]:
            return lambda client: client.get(f"k{i}")

        assert await asyncio.gather(*(handler.execute(get(i)) for i in range(8)))
        proxy.stall_reply()
        stalled = await asyncio.gather(
            *(handler.execute(get(i)) for i in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, CacheTimeoutError) for r in stalled), stalled
        proxy.resume()  # the late replies arrive on connections the layer dropped
        for round_ in range(3):
            keys = range(round_ * 100, round_ * 100 + 100)
            values = await asyncio.gather(*(handler.execute(get(i)) for i in keys))
            assert values == [f"v{i}".encode() for i in keys]


async def test_recovery_clears_a_whole_family_past_the_pending_bound(
    redis_server: RedisServer, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    orders = await seed_orders(sqlite_store, 11)
    await sqlite_store.put_price(price("SYM001"))
    async with (
        layer(redis_server.url, sqlite_store, max_pending=3) as lay,
        direct(redis_server.url) as admin,
    ):
        for o in orders:
            assert await lay.cache.order(o.order_id) == o
        assert await lay.cache.strategy("strat-unknown") is None
        untouched = CacheKeys.order(orders[10].order_id)
        assert await admin.exists(untouched) == 1
        redis_server.stop()
        for o in orders[:10]:
            assert await lay.cache.put_order(replace(o, quantity=Decimal("9")))
        assert lay.handler.statistics().dirty_families == ("ord",)
        assert lay.handler.statistics().pending_invalidations == 3
        redis_server.cont()
        with caplog.at_level(logging.WARNING, logger="runtime.cache.fallback"):
            await wait_until(
                lambda: lay.breaker.state is BreakerState.CLOSED and not lay.handler.has_pending()
            )
        assert "recovery cleared family ord" in caplog.text
        assert await admin.exists(untouched) == 0  # cleared with the family
        for o in orders[:10]:
            committed = await sqlite_store.get_order(o.order_id)
            assert committed is not None and committed.quantity == Decimal("9")
            assert await lay.cache.order(o.order_id) == committed
