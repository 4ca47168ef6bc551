"""The typed facade: snapshot in one round trip, fills atomic, reads never stale."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import CacheKeys, Family
from runtime.data import Store
from runtime.domain import OrderSide, Side
from support.factories import book, order, position, price, risk
from support.redis_server import RedisServer
from support.waiting import wait_until

SYMBOL = "SYM001"


async def seed_symbol(store: Store, symbol: str = SYMBOL) -> None:
    await store.put_price(price(symbol, "100.00"))
    await store.put_book(book(symbol, Side.BID, tuple(str(100 - i) for i in range(20))))
    await store.put_book(book(symbol, Side.ASK, tuple(str(101 + i) for i in range(20))))
    await store.put_position(position(symbol, "5", "99.5"))
    await store.put_risk(risk("497.5"))


async def commands_served(client: Redis) -> tuple[int, int]:
    """(EVALSHA calls, all commands) the server has run, Lua's inner calls included."""
    stats = await client.info("commandstats")
    total = sum(int(entry["calls"]) for entry in stats.values())
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)), total


async def test_snapshot_hit_is_one_round_trip(redis_server: RedisServer, store: Store) -> None:
    # A Redis of our own: its command counter counts nobody else's commands.
    async with (
        CacheManager(redis_server.url, socket_timeout=1.0) as manager,
        TradingCache(manager, store, operation_timeout=3.0) as cache,
    ):
        await _snapshot_hit_is_one_round_trip(cache, store)


async def _snapshot_hit_is_one_round_trip(cache: TradingCache, store: Store) -> None:
    await seed_symbol(store)
    first = await cache.snapshot(SYMBOL, depth=5)
    assert first.price is not None and first.bids is not None and first.asks is not None
    assert [level.price for level in first.bids.levels] == [
        Decimal(p) for p in ["100", "99", "98", "97", "96"]
    ]
    assert [level.price for level in first.asks.levels] == [
        Decimal(p) for p in ["101", "102", "103", "104", "105"]
    ]
    assert first.position is not None and first.position.quantity == Decimal("5")
    assert first.risk is not None and first.risk.exposure == Decimal("497.5")
    client = cache.fallback.manager.get_connection()
    before = await commands_served(client)
    second = await cache.snapshot(SYMBOL, depth=5)
    after = await commands_served(client)
    # one EVALSHA (running five reads and three PTTLs inside Redis) + this INFO:
    # one round trip
    assert (after[0] - before[0], after[1] - before[1]) == (1, 10)
    assert second == first
    # the cached book side holds all 20 levels: a deeper read is a hit too
    deeper = await cache.book(SYMBOL, Side.BID, depth=20)
    assert deeper is not None and len(deeper.levels) == 20


async def test_snapshot_loads_only_the_missing_parts(cache: TradingCache, store: Store) -> None:
    await seed_symbol(store)
    await cache.snapshot(SYMBOL)
    client = cache.fallback.manager.get_connection()
    await client.delete(CacheKeys.price(SYMBOL))
    cache.reset_statistics()
    snapshot = await cache.snapshot(SYMBOL)
    stats = cache.statistics().families
    assert snapshot.price is not None
    assert stats[Family.PRICE].misses == 1 and stats[Family.PRICE].loads == 1
    assert stats[Family.BOOK].hits == 2 and stats[Family.BOOK].loads == 0
    assert stats[Family.POSITION].loads == 0 and stats[Family.RISK].loads == 0


async def test_snapshot_of_an_unknown_symbol_has_empty_parts(
    cache: TradingCache, store: Store
) -> None:
    await store.put_risk(risk())
    snapshot = await cache.snapshot("NOPE")
    assert (snapshot.price, snapshot.bids, snapshot.asks, snapshot.position) == (None,) * 4
    assert snapshot.risk is not None


async def test_concurrent_fills_never_show_a_position_and_risk_from_different_fills(
    cache: TradingCache, store: Store
) -> None:
    await seed_symbol(store)
    await store.put_position(position(SYMBOL, "0", "0"))
    await store.put_risk(risk("0"))
    for n in range(4):
        assert await cache.put_order(order(f"ord-{n}", SYMBOL, OrderSide.BUY, quantity="100"))
    torn: list[tuple[object, object]] = []
    snapshots = 0
    done = False

    async def reader() -> None:
        nonlocal snapshots
        while not done:
            snapshot = await cache.snapshot(SYMBOL)
            snapshots += 1
            pos, rsk = snapshot.position, snapshot.risk
            assert pos is not None and rsk is not None
            # one symbol, exposure starts at 0: after any fill it is |qty * avg|
            if rsk.exposure != abs(pos.quantity * pos.average_price):
                torn.append((pos, rsk))
            await asyncio.sleep(0)

    async def filler(n: int) -> None:
        for i in range(10):
            fill_price = Decimal("100")  # keeps the average exact: exposure = qty * 100
            await cache.fill(f"ord-{n}", Decimal("1.5"), fill_price, i + 1)

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    await asyncio.gather(*(filler(n) for n in range(4)))
    done = True
    await asyncio.gather(*readers)
    assert torn == []
    assert snapshots > 0
    final = await cache.snapshot(SYMBOL)
    assert final.position is not None and final.position.quantity == Decimal("60")


@dataclass(frozen=True)
class _Event:
    seq: int
    key: str
    version: int


async def test_randomized_reads_never_return_a_version_older_than_a_completed_write(
    cache: TradingCache, store: Store
) -> None:
    """20 tasks, 5,000 mixed reads and writes over a handful of keys.

    Each read must return a version at least that of the last write to its key
    which had returned before the read began (sequence numbers give the order;
    asyncio runs one step at a time, so they are exact).
    """
    symbols = [f"SYM{n:03d}" for n in range(4)]
    for symbol in symbols:
        await store.put_price(price(symbol, "10.00"))
        await store.put_position(position(symbol, "1", "10"))
    seq = itertools.count()
    completed_writes: list[_Event] = []
    reads: list[tuple[int, _Event]] = []  # (seq at start, event at return)
    rng = random.Random(20261129)
    operations = 5_000
    per_task = operations // 20

    async def write(key: str, value: Any, put: Callable[[Any], Awaitable[int]]) -> int:
        committed = 0

        async def writer(value: Any) -> int:
            nonlocal committed
            committed = await put(value)
            return committed

        assert await cache.writes.write(key, value, writer)
        return committed

    async def worker(task_id: int) -> None:
        local = random.Random(rng.random())
        for i in range(per_task):
            symbol = local.choice(symbols)
            roll = local.random()
            if roll < 0.3:
                bid = Decimal(10) + Decimal(local.randrange(10_000)) / 100
                key = CacheKeys.price(symbol)
                version = await write(key, price(symbol, str(bid)), store.put_price)
                completed_writes.append(_Event(next(seq), key, version))
            elif roll < 0.4:
                qty = str(local.randrange(-50, 50))
                key = CacheKeys.position(symbol)
                version = await write(key, position(symbol, qty, "10"), store.put_position)
                completed_writes.append(_Event(next(seq), key, version))
            elif roll < 0.8:
                started = next(seq)
                got = await cache.price(symbol)
                assert got is not None
                reads.append((started, _Event(next(seq), CacheKeys.price(symbol), got.version)))
            else:
                started = next(seq)
                snapshot = await cache.snapshot(symbol)
                assert snapshot.price is not None and snapshot.position is not None
                done = next(seq)
                reads.append(
                    (started, _Event(done, CacheKeys.price(symbol), snapshot.price.version))
                )
                reads.append(
                    (started, _Event(done, CacheKeys.position(symbol), snapshot.position.version))
                )
            if i % 7 == task_id % 7:
                await asyncio.sleep(0)

    await asyncio.gather(*(worker(t) for t in range(20)))
    # A write's recorded seq is taken after it returned, so "returned before the
    # read began" is: write.seq < read start.
    violations = []
    for started, event in reads:
        floor = max(
            (w.version for w in completed_writes if w.key == event.key and w.seq < started),
            default=0,
        )
        if event.version < floor:
            violations.append((event, floor))
    assert violations == []
    assert len(reads) > 2_000
    total = cache.statistics().total
    assert total.hits > 0 and total.stale_sets_rejected >= 0


async def test_snapshot_refreshes_price_and_book_ahead_of_expiry(
    fallback: FallbackHandler, store: Store
) -> None:
    await seed_symbol(store)
    async with TradingCache(
        fallback.manager, store, fallback=fallback, refresh_ahead={"price": 0.5, "book": 0.5}
    ) as cache:
        first = await cache.snapshot(SYMBOL)
        assert first.price is not None
        await store.put_price(price(SYMBOL, "250.00"))  # the store moves on behind the cache
        client = fallback.manager.get_connection()
        await client.pexpire(CacheKeys.price(SYMBOL), 20)  # in the last half of its 100 ms
        await client.pexpire(CacheKeys.book(SYMBOL, Side.BID), 60_000)  # far from expiry
        cache.reset_statistics()
        served = await cache.snapshot(SYMBOL)
        assert served.price == first.price  # the cached value, at once
        await wait_until(lambda: cache.statistics().families[Family.PRICE].loads == 1)
        stats = cache.statistics().families
        assert stats[Family.PRICE].refreshes == 1
        assert stats[Family.BOOK].refreshes == 0  # only what was near expiry
        refreshed = await cache.price(SYMBOL)
        assert refreshed is not None
        assert refreshed.bid == Decimal("250.00")
