"""Typed entities of the trading runtime, shared by the cache and the data layer.

Neither layer owns these types: ``runtime.data`` stores them, ``runtime.cache``
keeps short-lived copies of them. Money and quantities are ``Decimal`` and stay
exact end to end; timestamps are integer nanoseconds since the Unix epoch.

Every entity carries the ``version`` its source of truth gave it when it was
committed (``0`` for a value that was never stored). The cache compares versions
to refuse stale sets (contract C7), so the store must increase a row's version on
every write of that row.

The constructors do not validate (they sit on the hot decode path); the data
layer validates before SQL and the cache validates identifiers before keys.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "AccountRisk",
    "BookLevel",
    "BookSide",
    "FillResult",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "Price",
    "Side",
    "StrategyConfig",
]


class Side(enum.StrEnum):
    """A side of an order book."""

    BID = "bid"
    ASK = "ask"


class OrderSide(enum.StrEnum):
    """The direction of an order."""

    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    """How an order is priced."""

    LIMIT = "limit"
    MARKET = "market"


class OrderStatus(enum.StrEnum):
    """Life cycle of an order; ``is_open`` tells whether it can still fill."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class Price:
    """Top of book and last trade of one symbol."""

    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    timestamp_ns: int
    version: int = 0


class BookLevel(NamedTuple):
    """One price level of a book side.

    A named tuple rather than a frozen dataclass: a snapshot builds twenty of
    them per read, and a tuple is built in a third of the time.
    """

    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class BookSide:
    """One side of a symbol's order book, best level first.

    Bids are ordered by descending price, asks by ascending price. Prices within
    one side are distinct.
    """

    symbol: str
    side: Side
    levels: tuple[BookLevel, ...]
    timestamp_ns: int
    version: int = 0


@dataclass(frozen=True, slots=True)
class Position:
    """Net position of the account in one symbol (negative quantity: short)."""

    symbol: str
    quantity: Decimal
    average_price: Decimal
    realized_pnl: Decimal
    timestamp_ns: int
    version: int = 0


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """Account-wide risk figures and the limits they are checked against."""

    equity: Decimal
    margin_used: Decimal
    exposure: Decimal
    max_exposure: Decimal
    max_order_notional: Decimal
    daily_loss_limit: Decimal
    timestamp_ns: int
    version: int = 0


@dataclass(frozen=True, slots=True)
class Order:
    """An order placed by a strategy; ``price`` is ``None`` for market orders."""

    order_id: str
    strategy_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    filled_quantity: Decimal
    status: OrderStatus
    created_ns: int
    updated_ns: int
    version: int = 0


def _frozen_parameters(parameters: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(parameters))


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """Configuration of one strategy; parameters are text, parsed by the strategy."""

    strategy_id: str
    name: str
    enabled: bool
    parameters: Mapping[str, str] = field(default_factory=dict)
    version: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.parameters, MappingProxyType):
            object.__setattr__(self, "parameters", _frozen_parameters(self.parameters))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StrategyConfig):
            return NotImplemented
        return (
            self.strategy_id == other.strategy_id
            and self.name == other.name
            and self.enabled == other.enabled
            and dict(self.parameters) == dict(other.parameters)
            and self.version == other.version
        )

    def __hash__(self) -> int:
        return hash((self.strategy_id, self.version))


@dataclass(frozen=True, slots=True)
class FillResult:
    """The committed state after one fill: order, position and risk, each versioned."""

    order: Order
    position: Position
    risk: AccountRisk
