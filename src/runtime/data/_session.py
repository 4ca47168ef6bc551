"""The engine-neutral half of a store: versioned SQL over an executor, validation,
the fill transaction, and the :class:`Store` methods built on top.

An engine supplies an :class:`Executor` (four primitive calls on one connection)
and three ways of getting one (:meth:`BaseStore._reading`, :meth:`BaseStore._writing`,
:meth:`BaseStore._transaction`); everything else is shared, so the two engines
cannot drift apart.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from runtime.data import validation as v
from runtime.data._sql import (
    ALL_LEVELS,
    Statements,
    WriteSql,
    decode_book,
    decode_order,
    decode_position,
    decode_price,
    decode_risk,
    decode_strategy,
)
from runtime.data.errors import ConflictError, NotFoundError, translate_driver_errors
from runtime.data.fills import fill_order, fill_position, fill_risk, signed_quantity
from runtime.data.store import StoreTransaction
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

__all__ = ["BaseStore", "Executor", "Ops", "Session"]

Row = Sequence[Any]


class Executor(Protocol):
    """Primitive calls on one engine connection. Errors are raw driver errors."""

    async def fetchrow(self, sql: str, args: Sequence[object]) -> Row | None: ...

    async def fetch(self, sql: str, args: Sequence[object]) -> Sequence[Row]: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...

    async def execute(self, sql: str, args: Sequence[object]) -> None: ...


class Ops:
    """Unvalidated reads and versioned writes over one executor.

    ``put_book`` runs several statements: callers run it inside a transaction.
    Row locks (``lock=True``) only matter inside a transaction.
    """

    __slots__ = ("_db", "_sql")

    def __init__(self, db: Executor, sql: Statements) -> None:
        self._db = db
        self._sql = sql

    async def _write(
        self,
        spec: WriteSql,
        params: tuple[object, ...],
        expected: int | None,
        entity: str,
        key: object,
    ) -> int:
        if expected is None:
            row = await self._db.fetchrow(spec.upsert, params)
        elif expected == 0:
            row = await self._db.fetchrow(spec.insert, params)
        else:
            row = await self._db.fetchrow(spec.update, (*params, expected))
        if row is not None:
            return int(row[0])
        n_keys = len(key) if isinstance(key, tuple) else 1
        current = await self._db.fetchrow(spec.version, params[:n_keys])
        raise ConflictError(entity, key, expected, None if current is None else int(current[0]))

    async def get_price(self, symbol: str) -> Price | None:
        row = await self._db.fetchrow(self._sql.select_price, (symbol,))
        return None if row is None else decode_price(row)

    async def put_price(self, price: Price, expected: int | None) -> int:
        params = self._sql.price_params(price)
        return await self._write(self._sql.prices, params, expected, "price", price.symbol)

    async def get_book(self, symbol: str, side: Side, depth: int | None) -> BookSide | None:
        limit = ALL_LEVELS if depth is None else depth
        rows = await self._db.fetch(self._sql.select_book, (symbol, side.value, limit))
        return decode_book(symbol, side, rows)

    async def put_book(self, book: BookSide, expected: int | None) -> int:
        side = Side(book.side)
        params = self._sql.book_side_params(book)
        version = await self._write(
            self._sql.book_sides, params, expected, "book", (book.symbol, side.value)
        )
        await self._db.execute(self._sql.delete_levels, (book.symbol, side.value))
        if book.levels:
            await self._db.executemany(self._sql.insert_level, self._sql.level_rows(book))
        return version

    async def get_position(self, symbol: str, *, lock: bool = False) -> Position | None:
        sql = self._sql.select_position_locked if lock else self._sql.select_position
        row = await self._db.fetchrow(sql, (symbol,))
        return None if row is None else decode_position(row)

    async def put_position(self, position: Position, expected: int | None) -> int:
        params = self._sql.position_params(position)
        return await self._write(self._sql.positions, params, expected, "position", position.symbol)

    async def get_risk(self, *, lock: bool = False) -> AccountRisk | None:
        sql = self._sql.select_risk_locked if lock else self._sql.select_risk
        row = await self._db.fetchrow(sql, (1,))
        return None if row is None else decode_risk(row)

    async def put_risk(self, risk: AccountRisk, expected: int | None) -> int:
        params = self._sql.risk_params(risk)
        return await self._write(self._sql.risk, params, expected, "account risk", "account")

    async def get_order(self, order_id: str, *, lock: bool = False) -> Order | None:
        sql = self._sql.select_order_locked if lock else self._sql.select_order
        row = await self._db.fetchrow(sql, (order_id,))
        return None if row is None else decode_order(row)

    async def put_order(self, order: Order, expected: int | None) -> int:
        params = self._sql.order_params(order)
        return await self._write(self._sql.orders, params, expected, "order", order.order_id)

    async def get_strategy(self, strategy_id: str) -> StrategyConfig | None:
        row = await self._db.fetchrow(self._sql.select_strategy, (strategy_id,))
        return None if row is None else decode_strategy(row)

    async def put_strategy(self, config: StrategyConfig, expected: int | None) -> int:
        params = self._sql.strategy_params(config)
        return await self._write(
            self._sql.strategies, params, expected, "strategy", config.strategy_id
        )

    async def get_position_and_risk(
        self, symbol: str
    ) -> tuple[Position | None, AccountRisk | None]:
        row = await self._db.fetchrow(self._sql.select_position_and_risk, (symbol,))
        if row is None:  # pragma: no cover - the anchor row always exists
            return None, None
        width = self._sql.position_width
        position = None if row[0] is None else decode_position(row[:width])
        risk = None if row[width] is None else decode_risk(row[width:])
        return position, risk

    async def apply_fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult:
        """The fill; the caller holds a transaction. Locks order, then risk, then position.

        The risk row is locked before the position so concurrent fills serialize on
        it before they look at (or create) the position row.
        """
        order = await self.get_order(order_id, lock=True)
        if order is None:
            raise NotFoundError("order", order_id)
        new_order = fill_order(order, quantity, timestamp_ns)
        risk = await self.get_risk(lock=True)
        if risk is None:
            raise NotFoundError("account risk", "account")
        position = await self.get_position(order.symbol, lock=True)
        delta = signed_quantity(order.side, quantity)
        new_position = fill_position(position, order.symbol, delta, price, timestamp_ns)
        new_risk = fill_risk(risk, position, new_position, timestamp_ns)
        order_version = await self.put_order(new_order, order.version)
        position_version = await self.put_position(
            new_position, 0 if position is None else position.version
        )
        risk_version = await self.put_risk(new_risk, risk.version)
        return FillResult(
            replace(new_order, version=order_version),
            replace(new_position, version=position_version),
            replace(new_risk, version=risk_version),
        )


class Session(StoreTransaction):
    """A :class:`StoreTransaction`: validates every input, then runs :class:`Ops`."""

    __slots__ = ("_ops",)

    def __init__(self, ops: Ops) -> None:
        self._ops = ops

    async def get_price(self, symbol: str) -> Price | None:
        v.check_id("symbol", symbol)
        with translate_driver_errors("get_price"):
            return await self._ops.get_price(symbol)

    async def get_book(self, symbol: str, side: Side, depth: int | None = None) -> BookSide | None:
        v.check_id("symbol", symbol)
        checked = v.check_enum("side", side, Side)
        v.check_depth(depth)
        with translate_driver_errors("get_book"):
            return await self._ops.get_book(symbol, checked, depth)

    async def get_position(self, symbol: str) -> Position | None:
        v.check_id("symbol", symbol)
        with translate_driver_errors("get_position"):
            return await self._ops.get_position(symbol)

    async def get_risk(self) -> AccountRisk | None:
        with translate_driver_errors("get_risk"):
            return await self._ops.get_risk()

    async def get_order(self, order_id: str) -> Order | None:
        v.check_id("order_id", order_id)
        with translate_driver_errors("get_order"):
            return await self._ops.get_order(order_id)

    async def get_strategy(self, strategy_id: str) -> StrategyConfig | None:
        v.check_id("strategy_id", strategy_id)
        with translate_driver_errors("get_strategy"):
            return await self._ops.get_strategy(strategy_id)

    async def get_position_and_risk(
        self, symbol: str
    ) -> tuple[Position | None, AccountRisk | None]:
        v.check_id("symbol", symbol)
        with translate_driver_errors("get_position_and_risk"):
            return await self._ops.get_position_and_risk(symbol)

    async def put_price(self, price: Price, *, expected_version: int | None = None) -> int:
        v.check_price(price)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_price"):
            return await self._ops.put_price(price, expected_version)

    async def put_book(self, book: BookSide, *, expected_version: int | None = None) -> int:
        v.check_book(book)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_book"):
            return await self._ops.put_book(book, expected_version)

    async def put_position(self, position: Position, *, expected_version: int | None = None) -> int:
        v.check_position(position)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_position"):
            return await self._ops.put_position(position, expected_version)

    async def put_risk(self, risk: AccountRisk, *, expected_version: int | None = None) -> int:
        v.check_risk(risk)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_risk"):
            return await self._ops.put_risk(risk, expected_version)

    async def put_order(self, order: Order, *, expected_version: int | None = None) -> int:
        v.check_order(order)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_order"):
            return await self._ops.put_order(order, expected_version)

    async def put_strategy(
        self, config: StrategyConfig, *, expected_version: int | None = None
    ) -> int:
        v.check_strategy(config)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_strategy"):
            return await self._ops.put_strategy(config, expected_version)

    async def apply_fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult:
        v.check_fill(order_id, quantity, price, timestamp_ns)
        with translate_driver_errors("apply_fill"):
            return await self._ops.apply_fill(order_id, quantity, price, timestamp_ns)


class BaseStore(abc.ABC):
    """The :class:`~runtime.data.store.Store` methods, over three engine hooks.

    - ``_reading()``: committed reads, no explicit transaction (one statement each);
    - ``_writing()``: one atomic single-statement write;
    - ``_transaction()``: a transaction that commits on exit, rolls back on error.

    Inputs are validated before a connection is even taken.
    """

    @abc.abstractmethod
    def _reading(self) -> AbstractAsyncContextManager[Ops]: ...

    @abc.abstractmethod
    def _writing(self) -> AbstractAsyncContextManager[Ops]: ...

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Ops]: ...

    @abc.abstractmethod
    async def migrate(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> BaseStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        """A unit of work: all writes commit together, or none does (the error propagates)."""
        async with self._transaction() as ops:
            yield Session(ops)

    async def get_price(self, symbol: str) -> Price | None:
        v.check_id("symbol", symbol)
        with translate_driver_errors("get_price"):
            async with self._reading() as ops:
                return await ops.get_price(symbol)

    async def get_book(self, symbol: str, side: Side, depth: int | None = None) -> BookSide | None:
        v.check_id("symbol", symbol)
        checked = v.check_enum("side", side, Side)
        v.check_depth(depth)
        with translate_driver_errors("get_book"):
            async with self._reading() as ops:
                return await ops.get_book(symbol, checked, depth)

    async def get_position(self, symbol: str) -> Position | None:
        v.check_id("symbol", symbol)
        with translate_driver_errors("get_position"):
            async with self._reading() as ops:
                return await ops.get_position(symbol)

    async def get_risk(self) -> AccountRisk | None:
        with translate_driver_errors("get_risk"):
            async with self._reading() as ops:
                return await ops.get_risk()

    async def get_order(self, order_id: str) -> Order | None:
        v.check_id("order_id", order_id)
        with translate_driver_errors("get_order"):
            async with self._reading() as ops:
                return await ops.get_order(order_id)

    async def get_strategy(self, strategy_id: str) -> StrategyConfig | None:
        v.check_id("strategy_id", strategy_id)
        with translate_driver_errors("get_strategy"):
            async with self._reading() as ops:
                return await ops.get_strategy(strategy_id)

    async def get_position_and_risk(
        self, symbol: str
    ) -> tuple[Position | None, AccountRisk | None]:
        v.check_id("symbol", symbol)
        with translate_driver_errors("get_position_and_risk"):
            async with self._reading() as ops:
                return await ops.get_position_and_risk(symbol)

    async def put_price(self, price: Price, *, expected_version: int | None = None) -> int:
        v.check_price(price)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_price"):
            async with self._writing() as ops:
                return await ops.put_price(price, expected_version)

    async def put_book(self, book: BookSide, *, expected_version: int | None = None) -> int:
        v.check_book(book)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_book"):
            async with self._transaction() as ops:
                return await ops.put_book(book, expected_version)

    async def put_position(self, position: Position, *, expected_version: int | None = None) -> int:
        v.check_position(position)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_position"):
            async with self._writing() as ops:
                return await ops.put_position(position, expected_version)

    async def put_risk(self, risk: AccountRisk, *, expected_version: int | None = None) -> int:
        v.check_risk(risk)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_risk"):
            async with self._writing() as ops:
                return await ops.put_risk(risk, expected_version)

    async def put_order(self, order: Order, *, expected_version: int | None = None) -> int:
        v.check_order(order)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_order"):
            async with self._writing() as ops:
                return await ops.put_order(order, expected_version)

    async def put_strategy(
        self, config: StrategyConfig, *, expected_version: int | None = None
    ) -> int:
        v.check_strategy(config)
        v.check_expected_version(expected_version)
        with translate_driver_errors("put_strategy"):
            async with self._writing() as ops:
                return await ops.put_strategy(config, expected_version)

    async def apply_fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult:
        v.check_fill(order_id, quantity, price, timestamp_ns)
        with translate_driver_errors("apply_fill"):
            async with self._transaction() as ops:
                return await ops.apply_fill(order_id, quantity, price, timestamp_ns)
