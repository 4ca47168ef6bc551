"""The pattern contracts on standalone, Sentinel and Cluster, and failovers under load.

The contract tests take ``topology_url``: standalone is the shared Redis (db 15,
the existing fixture); Sentinel and Cluster are private deployments started per
test (``support.sentinel``, ``support.cluster``) and always torn down. The
store is SQLite here: the engines' parity is proven by the pattern suites.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest

from runtime.cache.circuit_breaker import CircuitBreaker
from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import CacheKeys, Family, fence_key
from runtime.cache.topology import slot_of
from runtime.data import SqliteStore
from runtime.domain import Price, Side
from support.cluster import (  # noqa: F401 - fixture
    ClusterDeployment,
    cluster_deployment_fixture,
)
from support.factories import book, order, position, price, risk
from support.sentinel import (  # noqa: F401 - fixture
    SentinelDeployment,
    sentinel_deployment_fixture,
    wait_for,
)
from support.waiting import wait_until

SYMBOL = "SYM001"
GENEROUS = 1.0
TOPOLOGIES = ["standalone", "sentinel", "cluster"]


@pytest.fixture(params=TOPOLOGIES)
def topology_url(request: pytest.FixtureRequest) -> str:
    """A manager URL of each topology (standalone: the shared Redis, db 15)."""
    if request.param == "standalone":
        return str(request.getfixturevalue("redis_url"))
    deployment = request.getfixturevalue(f"{request.param}_deployment")
    return str(deployment.url)


@dataclass
class Rig:
    manager: CacheManager
    cache: TradingCache
    store: SqliteStore


@asynccontextmanager
async def _rig(
    url: str, store: SqliteStore, *, budget: float, breaker: CircuitBreaker | None = None
) -> AsyncIterator[Rig]:
    async with CacheManager(
        url,
        pool_size=32,
        socket_timeout=budget,
        connect_timeout=budget,
        pool_timeout=budget,
        health_check_timeout=max(budget, 0.5),
    ) as manager:
        handler = FallbackHandler(
            manager,
            breaker=breaker or CircuitBreaker(),
            operation_timeout=budget * 3,
            recovery_interval=0.02,
        )
        async with handler, TradingCache(manager, store, fallback=handler) as cache:
            yield Rig(manager, cache, store)


@pytest.fixture
async def rig(topology_url: str, sqlite_store: SqliteStore) -> AsyncIterator[Rig]:
    async with _rig(topology_url, sqlite_store, budget=GENEROUS) as value:
        # Let the client learn the topology (cluster slots, sentinel primary) before
        # the test's concurrent calls: the contract tests are not about discovery.
        await value.manager.get_connection().ping()
        await value.cache.price("WARMUP")
        value.cache.reset_statistics()
        yield value


async def test_cache_aside_hit_miss_and_single_flight_on_every_topology(rig: Rig) -> None:
    await rig.store.put_price(price(SYMBOL, "42.00"))
    key = CacheKeys.price(SYMBOL)
    calls = 0
    gate = asyncio.Event()

    async def loader() -> Price | None:
        nonlocal calls
        calls += 1
        await gate.wait()
        return await rig.store.get_price(SYMBOL)

    tasks = [asyncio.create_task(rig.cache.aside.get(key, loader)) for _ in range(50)]
    await wait_until(lambda: rig.cache.statistics().families[Family.PRICE].misses == 50)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    # More callers than pool_size (32; per node on Cluster): they wait for a
    # connection (pool_timeout) instead of falling back to the store.
    assert rig.cache.statistics().families[Family.PRICE].fallbacks == 0
    assert {r.bid for r in results if r is not None} == {Decimal("42.00")}
    again = await rig.cache.aside.get(key, loader)
    assert again == results[0]
    assert calls == 1
    assert rig.cache.statistics().families[Family.PRICE].hits == 1


async def test_write_through_caches_the_committed_version_on_every_topology(rig: Rig) -> None:
    assert await rig.cache.put_price(price(SYMBOL, "100.00"))
    assert await rig.cache.put_price(price(SYMBOL, "101.00"))
    client = rig.manager.get_connection()
    raw = await client.hgetall(CacheKeys.price(SYMBOL))
    assert raw[b"v"] == b"2"
    assert await client.pttl(CacheKeys.price(SYMBOL)) > 0
    cached = await rig.cache.price(SYMBOL)
    assert cached is not None and cached.bid == Decimal("101.00") and cached.version == 2
    assert rig.cache.statistics().families[Family.PRICE].hits == 1


async def test_snapshot_and_fill_on_every_topology(rig: Rig) -> None:
    store = rig.store
    await store.put_price(price(SYMBOL, "10.00"))
    await store.put_book(book(SYMBOL, Side.BID, ("10", "9")))
    await store.put_book(book(SYMBOL, Side.ASK, ("11", "12")))
    await store.put_position(position(SYMBOL, "0"))
    await store.put_risk(risk("0"))
    await store.put_order(order("ord-1", SYMBOL))
    first = await rig.cache.snapshot(SYMBOL, depth=1)
    assert first.price is not None and first.bids is not None and len(first.bids.levels) == 1
    rig.cache.reset_statistics()
    second = await rig.cache.snapshot(SYMBOL, depth=1)
    assert second == first
    total = rig.cache.statistics().total
    assert (total.hits, total.misses, total.fallbacks) == (5, 0, 0)

    # A fill touches ord:{id}, pos:{SYM} and risk:account (three slots on Cluster).
    result = await rig.cache.fill("ord-1", Decimal("10"), Decimal("10.50"), 2)
    rig.cache.reset_statistics()
    after = await rig.cache.snapshot(SYMBOL, depth=1)
    assert after.position == result.position and after.risk == result.risk
    assert rig.cache.statistics().total.hits == 5
    cached_order = await rig.cache.order("ord-1")
    assert cached_order == result.order


async def test_a_paused_loader_cannot_overwrite_a_newer_write_on_every_topology(
    rig: Rig,
) -> None:
    await rig.store.put_price(price(SYMBOL, "1.00"))
    key = CacheKeys.price(SYMBOL)
    loaded = asyncio.Event()
    resume = asyncio.Event()

    async def slow_loader() -> Price | None:
        value = await rig.store.get_price(SYMBOL)  # reads version 1
        loaded.set()
        await resume.wait()
        return value

    reader = asyncio.create_task(rig.cache.aside.get(key, slow_loader))
    await loaded.wait()
    assert await rig.cache.put_price(price(SYMBOL, "2.00"))  # version 2, cached
    resume.set()
    stale = await reader
    assert stale is not None and stale.version == 1
    cached = await rig.cache.price(SYMBOL)
    assert cached is not None and cached.version == 2
    assert rig.cache.statistics().families[Family.PRICE].stale_sets_rejected == 1


async def test_every_key_of_one_symbol_reports_the_same_cluster_keyslot(
    cluster_deployment: ClusterDeployment,
) -> None:
    keys = [
        CacheKeys.price(SYMBOL),
        CacheKeys.book(SYMBOL, Side.BID),
        CacheKeys.book(SYMBOL, Side.ASK),
        CacheKeys.position(SYMBOL),
    ]
    keys += [fence_key(key) for key in keys]
    async with CacheManager(cluster_deployment.url, socket_timeout=GENEROUS) as manager:
        client = manager.get_connection()
        slots = {await client.cluster_keyslot(key) for key in keys}
        assert len(slots) == 1
        assert slots == {slot_of(keys[0])}
        assert await client.cluster_keyslot(CacheKeys.risk()) != slots.pop()
        assert manager.status().topology == "cluster"
        assert len(manager.status().primaries) == 0 or len(manager.status().primaries) == 3


# --------------------------------------------------------------------- failover


@dataclass
class Load:
    """16 readers and one writer; the readers check versions against completed writes."""

    rig: Rig
    errors: list[BaseException]
    stale: list[tuple[int, int]]
    last_written: int = 0
    reads: int = 0
    running: bool = True

    async def reader(self) -> None:
        while self.running:
            floor = self.last_written
            try:
                value = await self.rig.cache.price(SYMBOL)
            except Exception as exc:
                self.errors.append(exc)
                continue
            self.reads += 1
            if value is None or value.version < floor:
                self.stale.append((floor, -1 if value is None else value.version))
            await asyncio.sleep(0)

    async def writer(self) -> None:
        bid = Decimal("100.00")
        while self.running:
            bid += Decimal("0.01")
            try:
                committed = await self.rig.cache.put_price(price(SYMBOL, str(bid)))
            except Exception as exc:
                self.errors.append(exc)
                continue
            assert committed
            current = await self.rig.store.get_price(SYMBOL)
            assert current is not None
            self.last_written = current.version
            await asyncio.sleep(0.002)


async def _run_failover(rig: Rig, kill: object, new_primary: object) -> dict[str, float]:
    load = Load(rig, [], [])
    await rig.cache.put_price(price(SYMBOL, "100.00"))
    tasks = [asyncio.create_task(load.reader()) for _ in range(16)]
    tasks.append(asyncio.create_task(load.writer()))
    try:
        await wait_until(lambda: load.reads > 200)
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        assert callable(kill) and callable(new_primary)
        await kill()
        await wait_until(lambda: rig.cache.statistics().total.fallbacks > 0, deadline=30)
        await new_primary()
        # Serving from cache again: a hit after the breaker closed and recovery ran.
        rig.cache.reset_statistics()
        await wait_until(
            lambda: (
                rig.cache.statistics().families[Family.PRICE].hits > 100
                and not rig.cache.fallback.has_pending()
            ),
            deadline=30,
        )
        serving_after = loop.time() - killed_at
        reads_after = load.reads
        await wait_until(lambda: load.reads > reads_after + 200)
    finally:
        load.running = False
        await asyncio.gather(*tasks)
    assert load.errors == []
    assert load.stale == []
    return {"serving_after_s": serving_after}


@pytest.mark.fault
async def test_sentinel_failover_under_load_reaches_no_caller(
    sentinel_deployment: SentinelDeployment, sqlite_store: SqliteStore
) -> None:
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=0.2)
    async with _rig(sentinel_deployment.url, sqlite_store, budget=0.05, breaker=breaker) as rig:
        old = sentinel_deployment.primary.port
        assert rig.manager.status().topology == "sentinel"

        async def kill() -> None:
            await sentinel_deployment.primary.kill()

        async def promoted() -> None:
            async def moved() -> bool:
                return await sentinel_deployment.master_port() != old

            await wait_for(moved, "sentinels promote the replica")

        result = await _run_failover(rig, kill, promoted)
        assert rig.cache.fallback.statistics().fallbacks > 0
        await rig.manager.health_check()
        replica = sentinel_deployment.replica
        assert replica is not None
        assert rig.manager.status().primaries == (f"127.0.0.1:{replica.port}",)
        print(f"sentinel: serving from cache {result['serving_after_s']:.2f}s after the kill")


@pytest.mark.fault
async def test_cluster_primary_failover_under_load_reaches_no_caller(
    cluster_deployment: ClusterDeployment, sqlite_store: SqliteStore
) -> None:
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=0.2)
    async with _rig(cluster_deployment.url, sqlite_store, budget=0.05, breaker=breaker) as rig:
        victim = await cluster_deployment.primary_of(CacheKeys.price(SYMBOL))

        async def kill() -> None:
            await victim.kill()

        async def promoted() -> None:
            await cluster_deployment.wait_ok(deadline=30)

        result = await _run_failover(rig, kill, promoted)
        await wait_until(lambda: True)
        assert await rig.manager.health_check()
        assert f"127.0.0.1:{victim.port}" not in rig.manager.status().primaries
        print(f"cluster: serving from cache {result['serving_after_s']:.2f}s after the kill")


@pytest.mark.fault
async def test_reads_follow_a_slot_migrated_between_primaries(
    cluster_deployment: ClusterDeployment, sqlite_store: SqliteStore
) -> None:
    async with _rig(cluster_deployment.url, sqlite_store, budget=GENEROUS) as rig:
        key = CacheKeys.price(SYMBOL)
        assert await rig.cache.put_price(price(SYMBOL, "5.00"))
        slot = slot_of(key)
        source = await cluster_deployment.primary_of(key)
        primaries = {await cluster_deployment.primary_of(k) for k in ("a", "b", "c", "d", "e")}
        target = next(node for node in primaries if node is not source)
        src, dst = source.port, target.port
        src_id = await cluster_deployment.node_id(source)
        dst_id = await cluster_deployment.node_id(target)
        client = rig.manager.get_connection()
        errors: list[BaseException] = []
        seen: list[int] = []
        running = True

        async def reader() -> None:
            while running:
                try:
                    value = await rig.cache.price(SYMBOL)
                except Exception as exc:
                    errors.append(exc)
                    continue
                assert value is not None
                seen.append(value.version)
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(reader()) for _ in range(4)]
        try:
            await wait_until(lambda: len(seen) > 50)
            await _cli(dst, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", src_id)
            await _cli(src, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", dst_id)
            await wait_until(lambda: len(seen) > 100)
            # Move the fence first: the entry then sits on the source, its fence on
            # the target, and a write to the slot gets ASK / TRYAGAIN for a moment.
            await _cli(
                src, "MIGRATE", "127.0.0.1", str(dst), "", "0", "5000", "KEYS", fence_key(key)
            )
            await wait_until(lambda: len(seen) > 150)
            await _cli(src, "MIGRATE", "127.0.0.1", str(dst), "", "0", "5000", "KEYS", key)
            await wait_until(lambda: len(seen) > 200)
            for port in (dst, src):  # the others learn it by gossip
                await _cli(port, "CLUSTER", "SETSLOT", str(slot), "NODE", dst_id)
            await cluster_deployment.wait_ok()
            reads_before = len(seen)
            await wait_until(lambda: len(seen) > reads_before + 100)
            assert await rig.cache.put_price(price(SYMBOL, "6.00"))
            await wait_until(lambda: seen[-1] == 2)
        finally:
            running = False
            await asyncio.gather(*tasks)
        assert errors == []
        assert await client.cluster_keyslot(key) == slot
        node = rig.manager.get_connection()
        assert not isinstance(node, type(None))
        assert (await cluster_deployment.primary_of(key)).port == dst


async def _cli(port: int, *args: str) -> None:
    import redis.asyncio as redis_async

    client = redis_async.Redis(host="127.0.0.1", port=port, socket_timeout=5.0)
    try:
        await client.execute_command(*args)
    finally:
        await client.aclose()


_ = replace
