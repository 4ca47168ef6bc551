"""Write-through against a real Redis and a real store of each engine (C8-C10)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest

from runtime.cache.circuit_breaker import CircuitBreaker
from runtime.cache.exceptions import InvalidKeyError, InvalidValueError
from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import CacheKeys, Family
from runtime.data import Store
from runtime.domain import Price, Side
from support.factories import book, order, price
from support.redis_server import RedisServer
from support.waiting import wait_until

SYMBOL = "SYM001"


async def test_write_commits_first_then_caches_the_committed_version(
    cache: TradingCache, store: Store
) -> None:
    assert await cache.put_price(price(SYMBOL, "10.00"))
    assert await cache.put_price(price(SYMBOL, "11.00"))
    stored = await store.get_price(SYMBOL)
    cached = await cache.price(SYMBOL)
    assert stored is not None and stored.version == 2
    assert cached == stored
    assert cache.statistics().families[Family.PRICE].hits == 1


async def test_write_rejects_a_value_that_does_not_belong_under_the_key(
    cache: TradingCache, store: Store
) -> None:
    async def writer(value: Price) -> int:
        raise AssertionError("must not be called")

    with pytest.raises(InvalidValueError, match="does not belong"):
        await cache.writes.write(CacheKeys.price("OTHER"), price(SYMBOL), writer)
    with pytest.raises(InvalidKeyError) as caught:
        await cache.writes.write("price:{bad symbol}", price(SYMBOL), writer)
    assert caught.value.field == "key"


async def test_a_failed_commit_returns_false_and_no_reader_ever_sees_the_value(
    cache: TradingCache, store: Store
) -> None:
    await cache.put_price(price(SYMBOL, "10.00"))
    assert await cache.price(SYMBOL) is not None
    inside = asyncio.Event()
    seen: set[Decimal] = set()
    stop = False

    async def reader() -> None:
        while not stop:
            value = await cache.price(SYMBOL)
            assert value is not None
            seen.add(value.bid)
            await asyncio.sleep(0)

    async def failing_writer(value: Price) -> int:
        async with store.transaction() as tx:
            await tx.put_price(value)  # written inside the transaction...
            inside.set()
            for _ in range(20):  # ...while the readers keep reading
                await asyncio.sleep(0.001)
            raise ConnectionResetError("commit lost")  # ...then the commit fails

    readers = [asyncio.create_task(reader()) for _ in range(8)]
    ok = await cache.writes.write(CacheKeys.price(SYMBOL), price(SYMBOL, "99.00"), failing_writer)
    assert inside.is_set()
    stop = True
    await asyncio.gather(*readers)
    assert ok is False
    assert seen == {Decimal("10.00")}
    stored = await store.get_price(SYMBOL)
    assert stored is not None and stored.bid == Decimal("10.00") and stored.version == 1
    cached = await cache.price(SYMBOL)
    assert cached == stored
    assert cache.statistics().families[Family.PRICE].write_failures == 1


async def test_bad_input_from_the_writer_is_raised_not_hidden(
    cache: TradingCache, store: Store
) -> None:
    bad = price(SYMBOL, "-5.00")
    with pytest.raises(ValueError, match="bid"):
        await cache.put_price(bad)
    assert await store.get_price(SYMBOL) is None


async def test_a_fill_writes_order_position_and_risk_in_one_step(
    cache: TradingCache, store: Store
) -> None:
    from support.factories import risk

    await store.put_risk(risk())
    assert await cache.put_order(order("ord-1", SYMBOL, quantity="10"))
    result = await cache.fill("ord-1", Decimal("4"), Decimal("10.00"), 7)
    assert result.order.filled_quantity == Decimal("4")
    assert result.position.quantity == Decimal("4")
    snapshot = await cache.snapshot(SYMBOL)
    assert snapshot.position == result.position
    assert snapshot.risk == result.risk
    assert await cache.order("ord-1") == result.order
    stats = cache.statistics().families
    assert stats[Family.POSITION].hits == 1 and stats[Family.RISK].hits == 1


# ------------------------------------------------------------- the cache fails after the commit


@pytest.fixture
async def fragile(redis_server: RedisServer, store: Store) -> AsyncIterator[TradingCache]:
    """A cache on a Redis of its own (the test pauses or kills it), short deadlines."""
    async with CacheManager(redis_server.url, socket_timeout=0.2, connect_timeout=0.2) as manager:
        fallback = FallbackHandler(
            manager,
            breaker=CircuitBreaker(recovery_timeout=0.2),
            operation_timeout=0.2,
            recovery_interval=0.02,
        )
        async with fallback, TradingCache(manager, store, fallback=fallback) as cache:
            yield cache


@pytest.mark.fault
@pytest.mark.parametrize("failure", ["pause", "kill"])
async def test_commit_succeeds_cache_fails_and_the_old_value_is_never_served_again(
    fragile: TradingCache, store: Store, redis_server: RedisServer, failure: str
) -> None:
    # Orders live 60 s in the cache: a paused Redis still holds version 1 after SIGCONT.
    cache = fragile
    first = order("ord-1", SYMBOL, quantity="10")
    assert await cache.put_order(first)
    assert (await cache.order("ord-1")) is not None
    if failure == "pause":
        redis_server.stop()
    else:
        await redis_server.kill()
    changed = replace(first, quantity=Decimal("12"))
    assert await cache.put_order(changed)  # committed: True although the cache failed
    stored = await store.get_order("ord-1")
    assert stored is not None and stored.quantity == Decimal("12") and stored.version == 2
    during = await cache.order("ord-1")  # served by the store meanwhile
    assert during == stored
    if failure == "pause":
        redis_server.cont()
    else:
        await redis_server.restart()
    await wait_until(lambda: not cache.fallback.has_pending())
    for _ in range(20):
        assert await cache.order("ord-1") == stored
    assert cache.statistics().families[Family.ORDER].hits > 0  # serving from cache again


async def test_a_write_cancelled_after_its_commit_never_leaves_the_old_value_served(
    cache: TradingCache, store: Store
) -> None:
    assert await cache.put_price(price(SYMBOL, "1.00"))
    assert (await cache.price(SYMBOL)) is not None  # version 1 cached
    committed = asyncio.Event()

    async def writer_cancelled_after_commit(value: Price) -> int:
        await store.put_price(value)  # the store commits version 2...
        committed.set()
        await asyncio.Event().wait()  # ...and the caller is cancelled before we return
        raise AssertionError("unreachable")

    task = asyncio.create_task(
        cache.writes.write(
            CacheKeys.price(SYMBOL), price(SYMBOL, "9.00"), writer_cancelled_after_commit
        )
    )
    await committed.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    value = await cache.price(SYMBOL)
    assert value is not None
    assert value.bid == Decimal("9.00")  # never the old 1.00 (C10)


async def test_a_book_deeper_than_luas_unpack_limit_is_cached_whole(
    cache: TradingCache, store: Store
) -> None:
    deep = book(SYMBOL, Side.BID, tuple(str(10_000 - i) for i in range(5_000)))
    assert await cache.put_book(deep)
    cached = await cache.fallback.execute(
        lambda client: client.zcard(CacheKeys.book(SYMBOL, Side.BID))
    )
    assert cached == 5_001  # 5,000 levels and the metadata member
