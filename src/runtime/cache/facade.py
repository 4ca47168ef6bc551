"""``TradingCache``: the typed facade strategies and execution call.

Reads and writes for the six families over cache-aside and write-through, and
:meth:`TradingCache.snapshot`, the scalp read: price, both book sides to a
depth, the position and the account risk in ONE Redis round trip (a
read script, atomic, so it never mixes the before and after states of one
multi-key write), loading only the missing parts on a miss. On Cluster the
account risk lives in its own slot: the snapshot is then two round trips in
parallel (the script over the symbol's four keys, which share the ``{SYM}``
slot, and ``HGETALL`` of the risk); the symbol's parts stay one atomic read,
the risk is read beside them.

The facade talks to the source of truth through :class:`SourceOfTruth`, a
structural protocol that ``runtime.data.Store`` satisfies; the cache never
imports the data layer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol, cast

from runtime.cache.circuit_breaker import CircuitBreaker
from runtime.cache.codecs import ABSENT, Entity
from runtime.cache.entries import PAIR_LOAD, Entry
from runtime.cache.exceptions import CacheError, InvalidValueError
from runtime.cache.fallback import FallbackHandler, fallback_reason
from runtime.cache.manager import CacheManager, RedisClient
from runtime.cache.models import CacheKeys, Family, KeySchema, ParsedKey
from runtime.cache.patterns.aside import CacheAside
from runtime.cache.patterns.write import WriteThrough
from runtime.cache.scripts import READ_SNAPSHOT
from runtime.cache.stats import CacheStatistics, StatsRecorder
from runtime.cache.topology import gather_all, is_cluster
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

__all__ = ["Snapshot", "SourceOfTruth", "SourceTransaction", "TradingCache"]


class SourceTransaction(Protocol):
    """The writes the facade needs inside one source-of-truth transaction."""

    async def put_price(self, price: Price, *, expected_version: int | None = None) -> int: ...
    async def put_book(self, book: BookSide, *, expected_version: int | None = None) -> int: ...


class SourceOfTruth(Protocol):
    """What the facade needs from the source of truth (``runtime.data.Store`` has it)."""

    async def get_price(self, symbol: str) -> Price | None: ...
    async def get_book(
        self, symbol: str, side: Side, depth: int | None = None
    ) -> BookSide | None: ...
    async def get_position(self, symbol: str) -> Position | None: ...
    async def get_risk(self) -> AccountRisk | None: ...
    async def get_order(self, order_id: str) -> Order | None: ...
    async def get_strategy(self, strategy_id: str) -> StrategyConfig | None: ...
    async def get_position_and_risk(
        self, symbol: str
    ) -> tuple[Position | None, AccountRisk | None]: ...
    async def put_price(self, price: Price, *, expected_version: int | None = None) -> int: ...
    async def put_book(self, book: BookSide, *, expected_version: int | None = None) -> int: ...
    async def put_position(
        self, position: Position, *, expected_version: int | None = None
    ) -> int: ...
    async def put_risk(self, risk: AccountRisk, *, expected_version: int | None = None) -> int: ...
    async def put_order(self, order: Order, *, expected_version: int | None = None) -> int: ...
    async def put_strategy(
        self, config: StrategyConfig, *, expected_version: int | None = None
    ) -> int: ...
    async def apply_fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult: ...
    def transaction(self) -> AbstractAsyncContextManager[Any]: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A scalp read of one symbol: each part ``None`` if the source has no such row."""

    symbol: str
    price: Price | None
    bids: BookSide | None
    asks: BookSide | None
    position: Position | None
    risk: AccountRisk | None


class TradingCache:
    """Typed reads and writes of the trading state, cached in Redis.

    Build it from a :class:`CacheManager` and a source of truth; the breaker,
    fallback and patterns are created with defaults unless given. ``async with``
    starts the background recovery task and closes everything it created (C15);
    the manager and the store stay the caller's.
    """

    def __init__(
        self,
        manager: CacheManager,
        source: SourceOfTruth,
        *,
        schema: KeySchema | None = None,
        breaker: CircuitBreaker | None = None,
        fallback: FallbackHandler | None = None,
        operation_timeout: float | timedelta = 0.05,
        refresh_ahead: dict[Family | str, float] | None = None,
        negative_ttl: float | timedelta | None = None,
    ) -> None:
        self._manager = manager
        self._source = source
        self._fallback = fallback or FallbackHandler(
            manager, breaker=breaker, schema=schema, operation_timeout=operation_timeout
        )
        self._stats = StatsRecorder()
        self.aside = CacheAside(
            self._fallback,
            refresh_ahead=refresh_ahead,
            negative_ttl=negative_ttl,
            stats=self._stats,
        )
        self.writes = WriteThrough(self._fallback, stats=self._stats, entries=self.aside.entries)
        self._read_snapshot: Any = None

    @property
    def fallback(self) -> FallbackHandler:
        return self._fallback

    @property
    def breaker(self) -> CircuitBreaker:
        return self._fallback.breaker

    def statistics(self) -> CacheStatistics:
        """Per-family hit, miss, load, fallback and write counts of this cache."""
        return self._stats.statistics()

    def reset_statistics(self) -> None:
        self._stats.reset()

    async def __aenter__(self) -> TradingCache:
        self._fallback.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop background refreshes, loads and the recovery task; idempotent."""
        await self.aside.close()
        await self._fallback.close()

    # ------------------------------------------------------------------ reads

    async def price(self, symbol: str) -> Price | None:
        key = CacheKeys.price(symbol)
        result: Price | None = await self.aside.read(
            key, CacheKeys.parse(key), lambda: self._source.get_price(symbol)
        )
        return result

    async def book(
        self, symbol: str, side: Side | str, depth: int | None = None
    ) -> BookSide | None:
        """One side of the book, best first, to ``depth`` levels (all if None)."""
        key = CacheKeys.book(symbol, side)
        parsed = CacheKeys.parse(key)
        checked_side = parsed.side or Side.BID
        result: BookSide | None = await self.aside.read(
            key,
            parsed,
            lambda: self._source.get_book(symbol, checked_side),
            depth=-1 if depth is None else _check_depth(depth),
        )
        return result

    async def position(self, symbol: str) -> Position | None:
        key = CacheKeys.position(symbol)
        result: Position | None = await self.aside.read(
            key, CacheKeys.parse(key), lambda: self._source.get_position(symbol)
        )
        return result

    async def risk(self) -> AccountRisk | None:
        key = CacheKeys.risk()
        result: AccountRisk | None = await self.aside.read(
            key, CacheKeys.parse(key), self._source.get_risk
        )
        return result

    async def order(self, order_id: str) -> Order | None:
        key = CacheKeys.order(order_id)
        result: Order | None = await self.aside.read(
            key, CacheKeys.parse(key), lambda: self._source.get_order(order_id)
        )
        return result

    async def strategy(self, strategy_id: str) -> StrategyConfig | None:
        key = CacheKeys.strategy(strategy_id)
        result: StrategyConfig | None = await self.aside.read(
            key, CacheKeys.parse(key), lambda: self._source.get_strategy(strategy_id)
        )
        return result

    # ------------------------------------------------------------------ snapshot

    async def snapshot(self, symbol: str, depth: int = 10) -> Snapshot:
        """Price, both book sides to ``depth``, position and risk of ``symbol``.

        One Redis round trip on a hit; on a miss only the missing parts are
        loaded (position and risk together, in one consistent store read).
        Never raises a cache-side fault: the store serves the read instead.
        """
        _check_depth(depth)
        keys = _snapshot_keys(symbol)
        parsed = [CacheKeys.parse(key) for key in keys]
        fallback = self._fallback
        if fallback.has_pending() and any(
            fallback.must_bypass(key, p.family) for key, p in zip(keys, parsed, strict=True)
        ):
            reason = fallback.bypass_reason()
            return await self._snapshot_from_source(symbol, depth, keys, reason)

        read_script = self._read_snapshot

        async def operation(client: RedisClient) -> list[Any]:
            script = read_script
            if script is None:
                script = self._read_snapshot = client.register_script(READ_SNAPSHOT)
            if is_cluster(client):
                parts, risk = await gather_all(
                    script(keys=keys[:4], args=(depth,), client=client), client.hgetall(keys[4])
                )
                return [*parts[:4], risk, parts[5]]
            return await script(keys=keys, args=(depth,), client=client)  # type: ignore[no-any-return]

        try:
            raw = await fallback.execute(operation)
        except CacheError as exc:
            return await self._snapshot_from_source(symbol, depth, keys, fallback_reason(exc))
        aside = self.aside
        stats = self._stats
        values: list[Any] = []
        missing: list[int] = []
        for index, (key, p, part) in enumerate(zip(keys, parsed, raw[:5], strict=True)):
            if p.family is not Family.BOOK and not isinstance(part, dict):
                part = dict(zip(part[::2], part[1::2], strict=True))
            value = aside.decode_or_drop(key, p, part)
            if value is None:
                stats.add(p.family, "misses")
                missing.append(index)
            elif value is ABSENT:
                stats.add(p.family, "negative_hits")
            else:
                stats.add(p.family, "hits")
            values.append(None if value is ABSENT else value)
        if aside.refreshes_ahead:
            self._refresh_parts(symbol, keys, parsed, values, raw[5])
        if missing:
            await self._load_parts(symbol, depth, keys, parsed, values, missing)
        return Snapshot(symbol, values[0], values[1], values[2], values[3], values[4])

    def _refresh_parts(
        self,
        symbol: str,
        keys: Sequence[str],
        parsed: Sequence[ParsedKey],
        values: Sequence[Any],
        pttls: Sequence[int],
    ) -> None:
        """Reload price and book sides read in the last fraction of their TTL (C6)."""
        loaders = self._part_loaders(symbol)
        for index in range(3):
            window = self.aside.refresh_window_ms(parsed[index].family)
            if window is not None and values[index] is not None and 0 <= pttls[index] <= window:
                self.aside.refresh(keys[index], parsed[index], loaders[index])

    async def _load_parts(
        self,
        symbol: str,
        depth: int,
        keys: Sequence[str],
        parsed: Sequence[ParsedKey],
        values: list[Any],
        missing: list[int],
    ) -> None:
        loaders = self._part_loaders(symbol)
        jobs = []
        for index in missing:
            if index < 3:
                jobs.append(
                    self.aside.load(keys[index], parsed[index], loaders[index], depth=depth)
                )
        pair_missing = 3 in missing or 4 in missing
        if pair_missing:
            jobs.append(self._load_position_and_risk(symbol, keys))
        results = await asyncio.gather(*jobs)
        for index, value in zip([i for i in missing if i < 3], results, strict=False):
            values[index] = value
        if pair_missing:
            values[3], values[4] = results[-1]

    async def _load_position_and_risk(
        self, symbol: str, keys: Sequence[str]
    ) -> tuple[Position | None, AccountRisk | None]:
        """Position and risk from one consistent store read, cached together."""
        flight_key = (PAIR_LOAD, symbol)

        async def work() -> tuple[Position | None, AccountRisk | None]:
            started = time.monotonic()
            position, risk = await self._fallback.load(
                lambda: self._source.get_position_and_risk(symbol)
            )
            self._stats.add(Family.POSITION, "loads")
            self._stats.add(Family.RISK, "loads")
            if (time.monotonic() - started) * 1000 >= self._fallback.schema.fence_margin_ms:
                return position, risk  # too slow to trust against expired fences (C7)
            batch = [
                Entry(keys[3], Family.POSITION, position if position is not None else ABSENT),
                Entry(keys[4], Family.RISK, risk if risk is not None else ABSENT),
            ]
            await self.aside.store(
                [e for e in batch if e.value is not ABSENT or self.aside.negative_caching]
            )
            return position, risk

        result: tuple[Position | None, AccountRisk | None] = await self.aside.flights.run(
            flight_key, work
        )
        return result

    def _part_loaders(self, symbol: str) -> list[Callable[[], Any]]:
        source = self._source
        return [
            lambda: source.get_price(symbol),
            lambda: source.get_book(symbol, Side.BID),
            lambda: source.get_book(symbol, Side.ASK),
        ]

    async def _snapshot_from_source(
        self, symbol: str, depth: int, keys: Sequence[str], reason: str
    ) -> Snapshot:
        started = time.perf_counter()
        source = self._source
        fallback = self._fallback
        price, bids, asks, (position, risk) = await asyncio.gather(
            fallback.load(lambda: source.get_price(symbol)),
            fallback.load(lambda: source.get_book(symbol, Side.BID, depth)),
            fallback.load(lambda: source.get_book(symbol, Side.ASK, depth)),
            fallback.load(lambda: source.get_position_and_risk(symbol)),
        )
        seconds = time.perf_counter() - started
        for family in (Family.PRICE, Family.BOOK, Family.BOOK, Family.POSITION, Family.RISK):
            self._stats.add(family, "fallbacks")
            fallback.record_fallback(family, reason, seconds)
        return Snapshot(symbol, price, bids, asks, position, risk)

    # ------------------------------------------------------------------ writes

    async def put_price(self, price: Price) -> bool:
        return await self.writes.write(CacheKeys.price(price.symbol), price, self._source.put_price)

    async def put_book(self, book: BookSide) -> bool:
        key = CacheKeys.book(book.symbol, book.side)
        return await self.writes.write(key, book, self._source.put_book)

    async def put_position(self, position: Position) -> bool:
        key = CacheKeys.position(position.symbol)
        return await self.writes.write(key, position, self._source.put_position)

    async def put_risk(self, risk: AccountRisk) -> bool:
        return await self.writes.write(CacheKeys.risk(), risk, self._source.put_risk)

    async def put_order(self, order: Order) -> bool:
        key = CacheKeys.order(order.order_id)
        return await self.writes.write(key, order, self._source.put_order)

    async def put_strategy(self, config: StrategyConfig) -> bool:
        key = CacheKeys.strategy(config.strategy_id)
        return await self.writes.write(key, config, self._source.put_strategy)

    async def update_market(self, price: Price, bids: BookSide, asks: BookSide) -> None:
        """A market-data update: price and both book sides in one store transaction,
        then one atomic cache step. The store's errors propagate."""
        # Validate the identifiers (C2) before anything is committed.
        CacheKeys.price(price.symbol)
        CacheKeys.book(bids.symbol, bids.side)
        CacheKeys.book(asks.symbol, asks.side)

        async def writer() -> Sequence[Entity]:
            async with self._source.transaction() as tx:
                price_version = await tx.put_price(price)
                bid_version = await tx.put_book(bids)
                ask_version = await tx.put_book(asks)
            return (
                dataclasses.replace(price, version=price_version),
                dataclasses.replace(bids, version=bid_version),
                dataclasses.replace(asks, version=ask_version),
            )

        await self.writes.write_all(writer)

    async def fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult:
        """Apply a fill: order, position and risk in one store transaction and one
        atomic cache step (C9). The store's errors propagate."""
        CacheKeys.order(order_id)

        async def writer() -> Sequence[Entity]:
            result = await self._source.apply_fill(order_id, quantity, price, timestamp_ns)
            return (result.order, result.position, result.risk)

        committed = await self.writes.write_all(writer)
        order, position, risk = committed
        return FillResult(cast(Order, order), cast(Position, position), cast(AccountRisk, risk))

    async def invalidate(self, key: str, version: int | None = None) -> bool:
        """Drop ``key`` from the cache (see :meth:`WriteThrough.invalidate`)."""
        return await self.writes.invalidate(key, version)

    def __repr__(self) -> str:
        total = self._stats.statistics().total
        return (
            f"<TradingCache hits={total.hits} misses={total.misses} "
            f"fallbacks={total.fallbacks} {self._fallback!r}>"
        )


def _check_depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InvalidValueError("depth", depth, "must be a positive int")
    return depth


def _snapshot_keys(symbol: str) -> tuple[str, str, str, str, str]:
    return (
        CacheKeys.price(symbol),
        CacheKeys.book(symbol, Side.BID),
        CacheKeys.book(symbol, Side.ASK),
        CacheKeys.position(symbol),
        CacheKeys.risk(),
    )
