"""Cache-aside reads against a real Redis and a real store of each engine (C4-C7)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from runtime.cache import metrics
from runtime.cache.codecs import decode_hash
from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import CacheKeys, Family, KeySchema
from runtime.cache.patterns.aside import CacheAside
from runtime.data import Store
from runtime.domain import Price, Side
from support.factories import book, order, position, price, risk
from support.waiting import wait_until

SYMBOL = "SYM001"


async def cached_price(client: Redis, symbol: str = SYMBOL) -> Price | None:
    key = CacheKeys.price(symbol)
    raw = await client.hgetall(key)
    if not raw:
        return None
    value = decode_hash(key, CacheKeys.parse(key), raw)
    assert isinstance(value, Price)
    return value


async def test_hit_returns_the_cached_value_without_calling_the_loader(
    cache: TradingCache, store: Store
) -> None:
    await cache.put_price(price(SYMBOL, "100.25"))
    calls = 0

    async def loader() -> Price | None:
        nonlocal calls
        calls += 1
        return await store.get_price(SYMBOL)

    value = await cache.aside.get(CacheKeys.price(SYMBOL), loader)
    assert value is not None and value.bid == Decimal("100.25")
    assert calls == 0
    assert cache.statistics().families[Family.PRICE].hits == 1


async def test_concurrent_misses_of_a_cold_key_call_the_loader_once(
    cache: TradingCache, store: Store
) -> None:
    await store.put_price(price(SYMBOL, "42.00"))
    key = CacheKeys.price(SYMBOL)
    calls = 0
    gate = asyncio.Event()

    async def loader() -> Price | None:
        nonlocal calls
        calls += 1
        await gate.wait()
        return await store.get_price(SYMBOL)

    tasks = [asyncio.create_task(cache.aside.get(key, loader)) for _ in range(100)]
    await wait_until(lambda: cache.statistics().families[Family.PRICE].misses == 100)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert {r.bid for r in results if r is not None} == {Decimal("42.00")}
    assert all(r is not None and r.version == 1 for r in results)
    assert (await cached_price(cache.fallback.manager.get_connection())) == results[0]


async def test_a_failing_loader_reaches_every_waiter_and_is_not_cached(
    cache: TradingCache, store: Store
) -> None:
    await store.put_price(price(SYMBOL))
    key = CacheKeys.price(SYMBOL)
    calls = 0
    gate = asyncio.Event()

    class LoaderBroke(RuntimeError):
        pass

    async def failing_loader() -> Price | None:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise LoaderBroke("database said no")

    tasks = [asyncio.create_task(cache.aside.get(key, failing_loader)) for _ in range(100)]
    await wait_until(lambda: cache.statistics().families[Family.PRICE].misses == 100)
    gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(outcome, LoaderBroke) for outcome in outcomes)
    client = cache.fallback.manager.get_connection()
    assert await client.exists(key) == 0

    async def good_loader() -> Price | None:
        nonlocal calls
        calls += 1
        return await store.get_price(SYMBOL)

    assert (await cache.aside.get(key, good_loader)) is not None
    assert calls == 2
    assert cache.breaker.statistics().consecutive_failures == 0  # loader errors are not faults


@pytest.mark.parametrize(
    ("family", "garbage"),
    [
        (Family.PRICE, {"b": "not-a-number", "v": "1"}),
        (Family.PRICE, {"b": b"\xff\xfe", "a": "1", "l": "1", "t": "1", "v": "1"}),
        (Family.PRICE, {"b": "NaN", "a": "1", "l": "1", "t": "1", "v": "1"}),
        (Family.BOOK, None),
    ],
)
async def test_garbage_in_the_cache_is_a_miss_replaced_by_the_stores_value(
    cache: TradingCache, store: Store, family: Family, garbage: dict[str, object] | None
) -> None:
    client = cache.fallback.manager.get_connection()
    before = metrics.CACHE_DECODE_FAILURES.labels(family.value)._value.get()
    if family is Family.PRICE:
        await store.put_price(price(SYMBOL, "7.50"))
        await client.hset(CacheKeys.price(SYMBOL), mapping=garbage)  # type: ignore[arg-type]
        value = await cache.price(SYMBOL)
        assert value is not None and value.bid == Decimal("7.50")
        await wait_until(
            lambda: cache.aside.flights.in_flight(("drop", CacheKeys.price(SYMBOL))) is False
        )
        assert await cache.price(SYMBOL) == value  # replaced: now a clean hit
    else:
        await store.put_book(book(SYMBOL, Side.BID, ("10", "9")))
        await client.zadd(CacheKeys.book(SYMBOL, Side.BID), {"garbage|x": 0, "#1|1": -1})
        value_book = await cache.book(SYMBOL, Side.BID)
        assert value_book is not None
        assert [level.price for level in value_book.levels] == [Decimal("10"), Decimal("9")]
    stats = cache.statistics().families[family]
    assert stats.decode_failures == 1
    assert metrics.CACHE_DECODE_FAILURES.labels(family.value)._value.get() == before + 1


async def test_a_key_of_the_wrong_redis_type_is_a_miss_not_an_error(
    cache: TradingCache, store: Store
) -> None:
    client = cache.fallback.manager.get_connection()
    await store.put_price(price(SYMBOL, "3.25"))
    await client.set(CacheKeys.price(SYMBOL), "a plain string")
    value = await cache.price(SYMBOL)
    assert value is not None and value.bid == Decimal("3.25")
    assert cache.statistics().families[Family.PRICE].decode_failures == 1
    assert await client.type(CacheKeys.price(SYMBOL)) == b"hash"


async def test_refresh_ahead_serves_the_old_value_and_reloads_once_in_the_background(
    fallback: FallbackHandler, store: Store
) -> None:
    aside = CacheAside(fallback, refresh_ahead={"price": 0.5})
    key = CacheKeys.price(SYMBOL)
    await store.put_price(price(SYMBOL, "1.00"))
    loads = 0

    async def loader() -> Price | None:
        nonlocal loads
        loads += 1
        return await store.get_price(SYMBOL)

    first = await aside.get(key, loader)
    assert first is not None and loads == 1
    await store.put_price(price(SYMBOL, "2.00"))  # the store moves on behind the cache
    client = fallback.manager.get_connection()
    ttl_ms = fallback.schema.ttl_ms(Family.PRICE)
    await client.pexpire(key, ttl_ms // 4)  # now in the last half of its TTL
    gate = asyncio.Event()

    async def held_loader() -> Price | None:
        await gate.wait()
        return await loader()

    served = [await aside.get(key, held_loader) for _ in range(5)]
    assert all(value == first for value in served)  # old value, at once
    gate.set()
    await wait_until(lambda: not aside.flights.in_flight(key))
    assert loads == 2  # exactly one background load for the five reads
    refreshed = await aside.get(key, loader)
    assert refreshed is not None and refreshed.bid == Decimal("2.00")
    assert aside.stats.statistics().families[Family.PRICE].refreshes == 1
    await aside.close()


async def test_negative_caching_spares_the_store_for_unknown_rows(
    fallback: FallbackHandler, store: Store
) -> None:
    aside = CacheAside(fallback, negative_ttl=0.5)
    key = CacheKeys.order("unknown-1")
    loads = 0

    async def loader() -> object:
        nonlocal loads
        loads += 1
        return await store.get_order("unknown-1")

    for _ in range(5):
        assert await aside.get(key, loader) is None  # type: ignore[arg-type]
    assert loads == 1
    pttl = await fallback.manager.get_connection().pttl(key)
    assert 0 < pttl <= 500
    assert aside.stats.statistics().families[Family.ORDER].negative_hits == 4


async def test_a_write_replaces_a_negative_entry(fallback: FallbackHandler, store: Store) -> None:
    async with TradingCache(fallback.manager, store, fallback=fallback, negative_ttl=5) as cache:
        assert await cache.order("ord-9") is None
        assert await cache.put_order(order("ord-9"))
        value = await cache.order("ord-9")
        assert value is not None and value.order_id == "ord-9" and value.version == 1


# ---------------------------------------------------------------- no stale set (C7)


class _PausedLoader:
    """A loader that reads the store, then waits until released (a slow load)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.has_read = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> Price | None:
        value = await self.store.get_price(SYMBOL)
        self.has_read.set()
        await self.release.wait()
        return value


@pytest.mark.parametrize("expire_first", [False, True], ids=["entry-live", "entry-expired"])
async def test_a_load_older_than_a_write_through_never_overwrites_it(
    cache: TradingCache, store: Store, expire_first: bool
) -> None:
    await store.put_price(price(SYMBOL, "1.00"))
    loader = _PausedLoader(store)
    reader = asyncio.create_task(cache.aside.get(CacheKeys.price(SYMBOL), loader))
    await loader.has_read.wait()  # it holds version 1
    assert await cache.put_price(price(SYMBOL, "2.00"))  # version 2 committed and cached
    client = cache.fallback.manager.get_connection()
    if expire_first:
        await client.delete(CacheKeys.price(SYMBOL))  # as if version 2's entry had expired
    loader.release.set()
    stale = await reader
    assert stale is not None and stale.version == 1  # the reader gets what it loaded...
    cached = await cached_price(client)
    assert cached is None or cached.version == 2  # ...but never puts it back
    assert cache.statistics().families[Family.PRICE].stale_sets_rejected == 1
    latest = await cache.price(SYMBOL)
    assert latest is not None and latest.version == 2


async def test_a_reader_after_a_write_never_joins_a_load_from_before_it(
    cache: TradingCache, store: Store
) -> None:
    key = CacheKeys.price(SYMBOL)
    await store.put_price(price(SYMBOL, "1.00"))
    early = _PausedLoader(store)
    first = asyncio.create_task(cache.aside.get(key, early))
    await early.has_read.wait()  # a load of version 1 is in flight
    assert await cache.put_price(price(SYMBOL, "2.00"))  # version 2 has returned
    await cache.fallback.manager.get_connection().delete(key)  # as if its entry expired

    async def loader() -> Price | None:
        return await store.get_price(SYMBOL)

    second = asyncio.create_task(cache.aside.get(key, loader))  # starts after the write
    await wait_until(lambda: cache.statistics().families[Family.PRICE].misses == 2)
    early.release.set()
    early_value, late_value = await asyncio.gather(first, second)
    assert early_value is not None
    assert early_value.version == 1  # began before the write: may be older
    assert late_value is not None
    assert late_value.version == 2  # began after it: never older


@pytest.mark.parametrize("known_version", [True, False])
async def test_a_load_older_than_an_invalidation_never_overwrites_it(
    cache: TradingCache, store: Store, known_version: bool
) -> None:
    await store.put_price(price(SYMBOL, "1.00"))
    loader = _PausedLoader(store)
    reader = asyncio.create_task(cache.aside.get(CacheKeys.price(SYMBOL), loader))
    await loader.has_read.wait()
    version = await store.put_price(price(SYMBOL, "2.00"))
    assert await cache.invalidate(CacheKeys.price(SYMBOL), version if known_version else None)
    loader.release.set()
    await reader
    client = cache.fallback.manager.get_connection()
    cached = await cached_price(client)
    assert cached is None or cached.version == 2
    if known_version:
        latest = await cache.price(SYMBOL)
        assert latest is not None and latest.version == 2
        assert (await cached_price(client)) == latest


async def test_every_key_written_on_every_path_has_a_ttl_within_its_family(
    cache: TradingCache, store: Store
) -> None:
    client = cache.fallback.manager.get_connection()
    schema = cache.fallback.schema
    await store.put_price(price("SYM002"))
    await store.put_position(position("SYM002", "1", "10"))
    await store.put_book(book("SYM002", Side.BID, ("10", "9")))
    await store.put_book(book("SYM002", Side.ASK, ("11", "12")))
    checks: list[tuple[str, Family]] = []

    async def check() -> None:
        for key, family in checks:
            pttl = await client.pttl(key)
            assert 0 < pttl <= schema.ttl_ms(family) or pttl == -2, (key, pttl)
            fence = await client.pttl("~v:" + key if "{" in key else "~v:{" + key + "}")
            assert 0 < fence <= schema.fence_ttl_ms(family), (key, fence)
        async for key in client.scan_iter():
            assert await client.pttl(key) != -1, key  # nothing without a TTL (C1)

    # read path (miss -> load -> store), write-through, multi-key writes, snapshot loads
    await cache.price("SYM002")
    checks.append((CacheKeys.price("SYM002"), Family.PRICE))
    await cache.put_order(order("ord-ttl"))
    checks.append((CacheKeys.order("ord-ttl"), Family.ORDER))
    await cache.snapshot("SYM002")
    checks += [
        (CacheKeys.book("SYM002", Side.BID), Family.BOOK),
        (CacheKeys.position("SYM002"), Family.POSITION),
    ]
    await cache.update_market(
        price("SYM003"), book("SYM003", Side.BID), book("SYM003", Side.ASK, ("11", "12"))
    )
    checks.append((CacheKeys.price("SYM003"), Family.PRICE))
    await store.put_risk(risk())
    await cache.fill("ord-ttl", Decimal("1"), Decimal("10.00"), 5)
    checks += [(CacheKeys.risk(), Family.RISK), (CacheKeys.position("SYM000"), Family.POSITION)]
    await check()


async def test_a_loader_returning_another_familys_value_is_a_typed_error(
    cache: TradingCache, store: Store
) -> None:
    async def wrong() -> object:
        return order("x")

    with pytest.raises(ValueError, match="loader result"):
        await cache.aside.get(CacheKeys.price(SYMBOL), wrong)  # type: ignore[arg-type]


async def test_replace_keeps_decimal_exact_through_the_cache(
    cache: TradingCache, store: Store
) -> None:
    value = replace(price(SYMBOL), bid=Decimal("0.000000000000000001"), ask=Decimal("1E+12"))
    assert await cache.put_price(value)
    cached = await cache.price(SYMBOL)
    assert cached is not None
    assert str(cached.bid) == "1E-18" and str(cached.ask) == "1E+12"


async def test_a_caller_arriving_as_the_last_waiter_cancels_gets_a_value_not_a_cancellation(
    cache: TradingCache, store: Store
) -> None:
    await store.put_price(price(SYMBOL, "5.00"))
    key = CacheKeys.price(SYMBOL)
    started = asyncio.Event()
    unwound = asyncio.Event()

    async def slow_loader() -> Price | None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await unwound.wait()  # the cancelled load takes a while to unwind
        return None

    first = asyncio.create_task(cache.aside.get(key, slow_loader))
    await started.wait()
    first.cancel()  # the only waiter leaves: its load is cancelled

    async def loader() -> Price | None:
        return await store.get_price(SYMBOL)

    second = asyncio.create_task(cache.aside.get(key, loader))  # arrives meanwhile
    await wait_until(lambda: cache.statistics().families[Family.PRICE].misses == 2)
    unwound.set()
    value = await second
    assert value is not None
    assert value.bid == Decimal("5.00")
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_load_slower_than_the_fence_margin_is_returned_but_not_cached(
    manager: CacheManager, store: Store
) -> None:
    schema = KeySchema(fence_margin=0.05)
    async with FallbackHandler(manager, schema=schema, operation_timeout=3.0) as handler:
        aside = CacheAside(handler)
        await store.put_price(price(SYMBOL, "4.00"))

        async def slow_loader() -> Price | None:
            await asyncio.sleep(0.1)  # longer than the 50 ms fence margin
            return await store.get_price(SYMBOL)

        value = await aside.get(CacheKeys.price(SYMBOL), slow_loader)
        assert value is not None
        assert value.bid == Decimal("4.00")
        assert await manager.get_connection().exists(CacheKeys.price(SYMBOL)) == 0
        await aside.close()
