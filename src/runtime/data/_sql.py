"""SQL of both engines, generated once per dialect from one table description.

Both engines run the same statements: only the placeholder style (``$1`` or
``?1``), the row-lock suffix (``FOR UPDATE`` or nothing: SQLite locks the whole
database with ``BEGIN IMMEDIATE``) and the money encoding (``NUMERIC`` takes a
``Decimal``, SQLite ``TEXT`` takes ``str(decimal)``) differ. Every statement is a
constant string, so asyncpg prepares it once per connection and reuses it.

Versioned writes, one statement each (atomic, no read-modify-write in Python):

- ``upsert``  (expected ``None``): insert at version 1, or update and ``version + 1``;
- ``insert``  (expected ``0``): insert at version 1, nothing if the row exists;
- ``update``  (expected ``n``): update and ``version + 1`` only where ``version = n``.

All three end in ``RETURNING version``; no row back means the check failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from runtime.domain import (
    AccountRisk,
    BookLevel,
    BookSide,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    Price,
    Side,
    StrategyConfig,
)

__all__ = [
    "ACCOUNT_ID",
    "ALL_LEVELS",
    "Dialect",
    "Statements",
    "VersionedTable",
    "WriteSql",
    "decode_book",
    "decode_order",
    "decode_position",
    "decode_price",
    "decode_risk",
    "decode_strategy",
    "encode_parameters",
]

ACCOUNT_ID = 1
"""Key of the single account's risk row."""

ALL_LEVELS = 2**31 - 1
"""Depth used when ``get_book`` is asked for every level."""

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the engines' SQL and parameters."""

    name: str
    placeholder: Callable[[int], str]
    lock_suffix: str
    money: Callable[[Decimal], object]
    flag: Callable[[bool], object]


@dataclass(frozen=True, slots=True)
class VersionedTable:
    """A table whose rows carry a ``version``; builds its versioned statements."""

    name: str
    keys: tuple[str, ...]
    values: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.keys + self.values

    def _where_keys(self, ph: Callable[[int], str]) -> str:
        return " AND ".join(f"{k} = {ph(i + 1)}" for i, k in enumerate(self.keys))

    def select(self, ph: Callable[[int], str], suffix: str = "") -> str:
        cols = ", ".join((*self.columns, "version"))
        return f"SELECT {cols} FROM {self.name} WHERE {self._where_keys(ph)}{suffix}"

    def version(self, ph: Callable[[int], str]) -> str:
        return f"SELECT version FROM {self.name} WHERE {self._where_keys(ph)}"

    def _insert_head(self, ph: Callable[[int], str]) -> str:
        cols = ", ".join((*self.columns, "version"))
        marks = ", ".join(ph(i + 1) for i in range(len(self.columns)))
        return f"INSERT INTO {self.name} ({cols}) VALUES ({marks}, 1)"

    def upsert(self, ph: Callable[[int], str]) -> str:
        sets = ", ".join(f"{c} = excluded.{c}" for c in self.values)
        keys = ", ".join(self.keys)
        return (
            f"{self._insert_head(ph)} ON CONFLICT ({keys}) DO UPDATE SET {sets}, "
            f"version = {self.name}.version + 1 RETURNING version"
        )

    def insert(self, ph: Callable[[int], str]) -> str:
        keys = ", ".join(self.keys)
        return f"{self._insert_head(ph)} ON CONFLICT ({keys}) DO NOTHING RETURNING version"

    def update(self, ph: Callable[[int], str]) -> str:
        n = len(self.keys)
        sets = ", ".join(f"{c} = {ph(n + i + 1)}" for i, c in enumerate(self.values))
        expected = ph(len(self.columns) + 1)
        return (
            f"UPDATE {self.name} SET {sets}, version = version + 1 "
            f"WHERE {self._where_keys(ph)} AND version = {expected} RETURNING version"
        )


PRICES = VersionedTable("prices", ("symbol",), ("bid", "ask", "last_price", "timestamp_ns"))
BOOK_SIDES = VersionedTable("book_sides", ("symbol", "side"), ("timestamp_ns",))
POSITIONS = VersionedTable(
    "positions",
    ("symbol",),
    ("quantity", "average_price", "realized_pnl", "timestamp_ns"),
)
RISK = VersionedTable(
    "account_risk",
    ("account_id",),
    (
        "equity",
        "margin_used",
        "exposure",
        "max_exposure",
        "max_order_notional",
        "daily_loss_limit",
        "timestamp_ns",
    ),
)
ORDERS = VersionedTable(
    "orders",
    ("order_id",),
    (
        "strategy_id",
        "symbol",
        "side",
        "order_type",
        "quantity",
        "price",
        "filled_quantity",
        "status",
        "created_ns",
        "updated_ns",
    ),
)
STRATEGIES = VersionedTable("strategies", ("strategy_id",), ("name", "enabled", "parameters"))


@dataclass(frozen=True, slots=True)
class WriteSql:
    """The four statements of one versioned table."""

    table: str
    upsert: str
    insert: str
    update: str
    version: str


def _writes(table: VersionedTable, ph: Callable[[int], str]) -> WriteSql:
    return WriteSql(
        table.name, table.upsert(ph), table.insert(ph), table.update(ph), table.version(ph)
    )


class Statements:
    """Every statement of one dialect, built once."""

    def __init__(self, dialect: Dialect) -> None:
        ph, lock = dialect.placeholder, dialect.lock_suffix
        self.dialect = dialect
        self.prices = _writes(PRICES, ph)
        self.book_sides = _writes(BOOK_SIDES, ph)
        self.positions = _writes(POSITIONS, ph)
        self.risk = _writes(RISK, ph)
        self.orders = _writes(ORDERS, ph)
        self.strategies = _writes(STRATEGIES, ph)
        self.select_price = PRICES.select(ph)
        self.select_position = POSITIONS.select(ph)
        self.select_position_locked = POSITIONS.select(ph, lock)
        self.select_risk = RISK.select(ph)
        self.select_risk_locked = RISK.select(ph, lock)
        self.select_order = ORDERS.select(ph)
        self.select_order_locked = ORDERS.select(ph, lock)
        self.select_strategy = STRATEGIES.select(ph)
        # One statement, one snapshot: the side row and its best levels together.
        self.select_book = (
            "SELECT s.timestamp_ns, s.version, l.price, l.size FROM book_sides s "
            "LEFT JOIN book_levels l ON l.symbol = s.symbol AND l.side = s.side "
            f"AND l.rank < {ph(3)} WHERE s.symbol = {ph(1)} AND s.side = {ph(2)} ORDER BY l.rank"
        )
        self.delete_levels = f"DELETE FROM book_levels WHERE symbol = {ph(1)} AND side = {ph(2)}"
        self.insert_level = (
            "INSERT INTO book_levels (symbol, side, rank, price, size) "
            f"VALUES ({ph(1)}, {ph(2)}, {ph(3)}, {ph(4)}, {ph(5)})"
        )
        # One statement, one snapshot: position and account risk read together.
        pos_cols = ", ".join(f"p.{c}" for c in (*POSITIONS.columns, "version"))
        risk_cols = ", ".join(f"r.{c}" for c in (*RISK.columns, "version"))
        self.select_position_and_risk = (
            f"SELECT {pos_cols}, {risk_cols} FROM (SELECT 1 AS anchor) AS a "
            f"LEFT JOIN positions p ON p.symbol = {ph(1)} "
            f"LEFT JOIN account_risk r ON r.account_id = {ACCOUNT_ID}"
        )
        self.position_width = len(POSITIONS.columns) + 1

    # Parameters, in the column order of the tables above.

    def price_params(self, p: Price) -> tuple[object, ...]:
        m = self.dialect.money
        return (p.symbol, m(p.bid), m(p.ask), m(p.last), p.timestamp_ns)

    def book_side_params(self, b: BookSide) -> tuple[object, ...]:
        return (b.symbol, Side(b.side).value, b.timestamp_ns)

    def level_rows(self, b: BookSide) -> list[tuple[object, ...]]:
        m, side = self.dialect.money, Side(b.side).value
        return [(b.symbol, side, i, m(lv.price), m(lv.size)) for i, lv in enumerate(b.levels)]

    def position_params(self, p: Position) -> tuple[object, ...]:
        m = self.dialect.money
        return (p.symbol, m(p.quantity), m(p.average_price), m(p.realized_pnl), p.timestamp_ns)

    def risk_params(self, r: AccountRisk) -> tuple[object, ...]:
        m = self.dialect.money
        return (
            ACCOUNT_ID,
            m(r.equity),
            m(r.margin_used),
            m(r.exposure),
            m(r.max_exposure),
            m(r.max_order_notional),
            m(r.daily_loss_limit),
            r.timestamp_ns,
        )

    def order_params(self, o: Order) -> tuple[object, ...]:
        m = self.dialect.money
        return (
            o.order_id,
            o.strategy_id,
            o.symbol,
            OrderSide(o.side).value,
            OrderType(o.type).value,
            m(o.quantity),
            None if o.price is None else m(o.price),
            m(o.filled_quantity),
            OrderStatus(o.status).value,
            o.created_ns,
            o.updated_ns,
        )

    def strategy_params(self, s: StrategyConfig) -> tuple[object, ...]:
        return (
            s.strategy_id,
            s.name,
            self.dialect.flag(s.enabled),
            encode_parameters(s.parameters),
        )


def encode_parameters(parameters: Mapping[str, str]) -> str:
    """Strategy parameters as canonical JSON text (sorted keys)."""
    return json.dumps(dict(parameters), sort_keys=True, separators=(",", ":"))


# Decoders: rows come back in the column order of the table plus ``version``.
# ``Decimal(x)`` accepts both a NUMERIC ``Decimal`` and SQLite's ``TEXT``.


def decode_price(r: Row) -> Price:
    return Price(r[0], Decimal(r[1]), Decimal(r[2]), Decimal(r[3]), int(r[4]), int(r[5]))


def decode_position(r: Row) -> Position:
    return Position(r[0], Decimal(r[1]), Decimal(r[2]), Decimal(r[3]), int(r[4]), int(r[5]))


def decode_risk(r: Row) -> AccountRisk:
    # r[0] is account_id.
    return AccountRisk(
        Decimal(r[1]),
        Decimal(r[2]),
        Decimal(r[3]),
        Decimal(r[4]),
        Decimal(r[5]),
        Decimal(r[6]),
        int(r[7]),
        int(r[8]),
    )


def decode_order(r: Row) -> Order:
    return Order(
        order_id=r[0],
        strategy_id=r[1],
        symbol=r[2],
        side=OrderSide(r[3]),
        type=OrderType(r[4]),
        quantity=Decimal(r[5]),
        price=None if r[6] is None else Decimal(r[6]),
        filled_quantity=Decimal(r[7]),
        status=OrderStatus(r[8]),
        created_ns=int(r[9]),
        updated_ns=int(r[10]),
        version=int(r[11]),
    )


def decode_strategy(r: Row) -> StrategyConfig:
    parameters = json.loads(r[3])
    return StrategyConfig(r[0], r[1], bool(r[2]), parameters, int(r[4]))


def decode_book(symbol: str, side: Side, rows: Sequence[Row]) -> BookSide | None:
    if not rows:
        return None
    levels = tuple(BookLevel(Decimal(r[2]), Decimal(r[3])) for r in rows if r[2] is not None)
    return BookSide(symbol, side, levels, int(rows[0][0]), int(rows[0][1]))
