"""What the workload's actors call: the cache, the store alone, or raw redis-py.

- :class:`Backend` is the protocol of the calls the actors make; ``TradingCache``
  satisfies it, :class:`StoreBackend` serves everything from the store (the
  "no cache" side), :class:`RawSnapshotBackend` issues the snapshot as raw
  redis-py commands (the same five keys, one pipeline) and the rest through the cache.
- :class:`RecordingSource` wraps the store and tells :class:`VersionTracker` the
  version of every write the caller saw return, so each read can be checked for
  staleness: a read must never return a version older than that of the last
  write to the same key which had returned before the read started.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from runtime.cache.facade import Snapshot, TradingCache
from runtime.cache.models import CacheKeys
from runtime.data import Store, StoreTransaction
from runtime.domain import (
    AccountRisk,
    BookSide,
    FillResult,
    Order,
    Position,
    Price,
    Side,
    StrategyConfig,
)

__all__ = [
    "Backend",
    "RawSnapshotBackend",
    "RecordingSource",
    "StoreBackend",
    "VersionTracker",
    "capture_versions",
    "snapshot_keys",
]

_CAPTURED: contextvars.ContextVar[list[tuple[str, int]] | None] = contextvars.ContextVar(
    "runtime_cache_bench_captured", default=None
)


def snapshot_keys(symbol: str) -> tuple[str, str, str, str, str]:
    return (
        CacheKeys.price(symbol),
        CacheKeys.book(symbol, Side.BID),
        CacheKeys.book(symbol, Side.ASK),
        CacheKeys.position(symbol),
        CacheKeys.risk(),
    )


class Backend(Protocol):
    """The calls the workload's actors make."""

    async def snapshot(self, symbol: str, depth: int = 10) -> Any: ...
    async def update_market(self, price: Price, bids: BookSide, asks: BookSide) -> None: ...
    async def put_order(self, order: Order) -> bool: ...
    async def fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult: ...
    async def order(self, order_id: str) -> Order | None: ...
    async def strategy(self, strategy_id: str) -> StrategyConfig | None: ...


class VersionTracker:
    """The newest version per key among writes that have returned to their caller."""

    __slots__ = ("_returned", "stale_examples", "stale_reads")

    def __init__(self) -> None:
        self._returned: dict[str, int] = {}
        self.stale_reads = 0
        self.stale_examples: list[str] = []

    def returned(self, versions: Iterable[tuple[str, int]]) -> None:
        returned = self._returned
        for key, version in versions:
            if version > returned.get(key, 0):
                returned[key] = version

    def floors(self, keys: Iterable[str]) -> list[int]:
        """Call before a read starts: the versions the read must not go below."""
        returned = self._returned
        return [returned.get(key, 0) for key in keys]

    def check(self, keys: Iterable[str], floors: list[int], versions: Iterable[int | None]) -> None:
        """Count a stale read if any returned version is below its floor."""
        for key, floor, version in zip(keys, floors, versions, strict=True):
            if version is not None and version < floor:
                self.stale_reads += 1
                if len(self.stale_examples) < 5:
                    self.stale_examples.append(f"{key}: read v{version} after v{floor} returned")
                return

    def check_snapshot(self, keys: tuple[str, ...], floors: list[int], snap: Snapshot) -> None:
        parts = (snap.price, snap.bids, snap.asks, snap.position, snap.risk)
        self.check(keys, floors, [None if p is None else p.version for p in parts])


@asynccontextmanager
async def capture_versions() -> AsyncIterator[list[tuple[str, int]]]:
    """Collect the (key, version) of every store write made inside the block."""
    captured: list[tuple[str, int]] = []
    token = _CAPTURED.set(captured)
    try:
        yield captured
    finally:
        _CAPTURED.reset(token)


def _record(key: str, version: int) -> int:
    captured = _CAPTURED.get()
    if captured is not None:
        captured.append((key, version))
    return version


class _RecordingTransaction:
    __slots__ = ("_tx",)

    def __init__(self, tx: StoreTransaction) -> None:
        self._tx = tx

    async def put_price(self, price: Price, *, expected_version: int | None = None) -> int:
        version = await self._tx.put_price(price, expected_version=expected_version)
        return _record(CacheKeys.price(price.symbol), version)

    async def put_book(self, book: BookSide, *, expected_version: int | None = None) -> int:
        version = await self._tx.put_book(book, expected_version=expected_version)
        return _record(CacheKeys.book(book.symbol, book.side), version)


class RecordingSource:
    """A store that records the versions of the writes made through it (see module doc)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get_price(self, symbol: str) -> Price | None:
        return await self.store.get_price(symbol)

    async def get_book(self, symbol: str, side: Side, depth: int | None = None) -> BookSide | None:
        return await self.store.get_book(symbol, side, depth)

    async def get_position(self, symbol: str) -> Position | None:
        return await self.store.get_position(symbol)

    async def get_risk(self) -> AccountRisk | None:
        return await self.store.get_risk()

    async def get_order(self, order_id: str) -> Order | None:
        return await self.store.get_order(order_id)

    async def get_strategy(self, strategy_id: str) -> StrategyConfig | None:
        return await self.store.get_strategy(strategy_id)

    async def get_position_and_risk(
        self, symbol: str
    ) -> tuple[Position | None, AccountRisk | None]:
        return await self.store.get_position_and_risk(symbol)

    async def put_price(self, price: Price, *, expected_version: int | None = None) -> int:
        version = await self.store.put_price(price, expected_version=expected_version)
        return _record(CacheKeys.price(price.symbol), version)

    async def put_book(self, book: BookSide, *, expected_version: int | None = None) -> int:
        version = await self.store.put_book(book, expected_version=expected_version)
        return _record(CacheKeys.book(book.symbol, book.side), version)

    async def put_position(self, position: Position, *, expected_version: int | None = None) -> int:
        version = await self.store.put_position(position, expected_version=expected_version)
        return _record(CacheKeys.position(position.symbol), version)

    async def put_risk(self, risk: AccountRisk, *, expected_version: int | None = None) -> int:
        version = await self.store.put_risk(risk, expected_version=expected_version)
        return _record(CacheKeys.risk(), version)

    async def put_order(self, order: Order, *, expected_version: int | None = None) -> int:
        version = await self.store.put_order(order, expected_version=expected_version)
        return _record(CacheKeys.order(order.order_id), version)

    async def put_strategy(
        self, config: StrategyConfig, *, expected_version: int | None = None
    ) -> int:
        version = await self.store.put_strategy(config, expected_version=expected_version)
        return _record(CacheKeys.strategy(config.strategy_id), version)

    async def apply_fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult:
        result = await self.store.apply_fill(order_id, quantity, price, timestamp_ns)
        _record(CacheKeys.order(order_id), result.order.version)
        _record(CacheKeys.position(result.position.symbol), result.position.version)
        _record(CacheKeys.risk(), result.risk.version)
        return result

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_RecordingTransaction]:
        async with self.store.transaction() as tx:
            yield _RecordingTransaction(tx)


class StoreBackend:
    """The workload with no cache: every read and write goes to the store."""

    def __init__(self, source: RecordingSource) -> None:
        self._source = source

    async def snapshot(self, symbol: str, depth: int = 10) -> Snapshot:
        source = self._source
        price, bids, asks, (position, risk) = await asyncio.gather(
            source.get_price(symbol),
            source.get_book(symbol, Side.BID, depth),
            source.get_book(symbol, Side.ASK, depth),
            source.get_position_and_risk(symbol),
        )
        return Snapshot(symbol, price, bids, asks, position, risk)

    async def update_market(self, price: Price, bids: BookSide, asks: BookSide) -> None:
        async with self._source.transaction() as tx:
            await tx.put_price(price)
            await tx.put_book(bids)
            await tx.put_book(asks)

    async def put_order(self, order: Order) -> bool:
        await self._source.put_order(order)
        return True

    async def fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult:
        return await self._source.apply_fill(order_id, quantity, price, timestamp_ns)

    async def order(self, order_id: str) -> Order | None:
        return await self._source.get_order(order_id)

    async def strategy(self, strategy_id: str) -> StrategyConfig | None:
        return await self._source.get_strategy(strategy_id)


class RawSnapshotBackend:
    """The snapshot as raw redis-py (HGETALL, 2 x ZRANGE, 2 x HGETALL in one pipeline,
    undecoded); everything else through the cache. Returns the raw replies."""

    def __init__(self, cache: TradingCache, client: Redis | RedisCluster) -> None:
        self._cache = cache
        self._client = client

    async def snapshot(self, symbol: str, depth: int = 10) -> list[Any]:
        keys = snapshot_keys(symbol)
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(keys[0])
        pipe.zrange(keys[1], 0, depth)  # as the facade's script: index 0 holds the version
        pipe.zrange(keys[2], 0, depth)
        pipe.hgetall(keys[3])
        pipe.hgetall(keys[4])
        replies: list[Any] = await pipe.execute()
        return replies

    async def update_market(self, price: Price, bids: BookSide, asks: BookSide) -> None:
        await self._cache.update_market(price, bids, asks)

    async def put_order(self, order: Order) -> bool:
        return await self._cache.put_order(order)

    async def fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult:
        return await self._cache.fill(order_id, quantity, price, timestamp_ns)

    async def order(self, order_id: str) -> Order | None:
        return await self._cache.order(order_id)

    async def strategy(self, strategy_id: str) -> StrategyConfig | None:
        return await self._cache.strategy(strategy_id)
