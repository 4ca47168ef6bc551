"""Input checks of the data layer: every value is checked before any SQL runs.

Each ``check_*`` function raises :class:`~runtime.data.errors.ValidationError`
naming the offending field, or returns nothing. Rules:

- identifiers (symbol, order id, strategy id): ``str``, 1..128 characters, no
  control characters (PostgreSQL ``TEXT`` cannot hold NUL). SQL metacharacters
  (quotes, ``;``, ``%``, ``_``, ``\\``) are allowed: every query is parameterized.
- money and quantities: ``decimal.Decimal`` (never ``float`` or ``int``), finite;
  prices, sizes and limits non-negative; position quantity, P&L and equity signed.
- timestamps: ``int`` (not ``bool``) in ``0 <= t < 2**63``.
- enums: a member of the enum or its string value.
- ``expected_version``: ``None`` or an ``int >= 0`` (``0``: the row must not exist).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import TypeVar

from runtime.data.errors import ValidationError
from runtime.domain import (
    AccountRisk,
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
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "check_book",
    "check_depth",
    "check_enum",
    "check_expected_version",
    "check_fill",
    "check_id",
    "check_money",
    "check_order",
    "check_position",
    "check_price",
    "check_risk",
    "check_strategy",
    "check_timestamp",
]

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 1024
_MAX_TIMESTAMP = 2**63
_E = TypeVar("_E", bound=enum.Enum)


def check_id(field: str, value: object, *, max_length: int = MAX_ID_LENGTH) -> None:
    """An identifier: non-empty ``str`` of at most ``max_length`` chars, no control chars."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a str")
    if not value:
        raise ValidationError(field, value, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, value, f"longer than {max_length} characters")
    if not value.isprintable() and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError(field, value, "contains a control character")


def check_money(field: str, value: object, *, signed: bool = False) -> None:
    """A finite ``Decimal``; non-negative unless ``signed``."""
    if not isinstance(value, Decimal):
        raise ValidationError(field, value, "must be a decimal.Decimal")
    if not value.is_finite():
        raise ValidationError(field, value, "must be finite")
    if not signed and value < 0:
        raise ValidationError(field, value, "must not be negative")


def check_timestamp(field: str, value: object) -> None:
    """Integer nanoseconds since the epoch, fitting a signed 64-bit column."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, value, "must be an int (nanoseconds)")
    if not 0 <= value < _MAX_TIMESTAMP:
        raise ValidationError(field, value, "out of range 0 <= t < 2**63")


def check_enum(field: str, value: object, kind: type[_E]) -> _E:
    """A member of ``kind`` (or its value); returns the member."""
    try:
        return kind(value)
    except (ValueError, TypeError):
        allowed = ", ".join(str(m.value) for m in kind)
        raise ValidationError(field, value, f"must be one of: {allowed}") from None


def check_expected_version(value: object) -> None:
    """``None`` (unconditional write) or an ``int >= 0``."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError("expected_version", value, "must be None or an int >= 0")


def check_depth(value: object) -> None:
    """``None`` (all levels) or an ``int >= 1``."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError("depth", value, "must be None or an int >= 1")


def _check_type(field: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        raise ValidationError(field, value, f"must be a {kind.__name__}")


def check_price(price: object) -> None:
    """A :class:`Price`: symbol, non-negative bid/ask/last, timestamp."""
    _check_type("price", price, Price)
    assert isinstance(price, Price)
    check_id("symbol", price.symbol)
    check_money("bid", price.bid)
    check_money("ask", price.ask)
    check_money("last", price.last)
    check_timestamp("timestamp_ns", price.timestamp_ns)


def check_book(book: object) -> None:
    """A :class:`BookSide`: levels non-negative and strictly ordered best first."""
    _check_type("book", book, BookSide)
    assert isinstance(book, BookSide)
    check_id("symbol", book.symbol)
    side = check_enum("side", book.side, Side)
    check_timestamp("timestamp_ns", book.timestamp_ns)
    if not isinstance(book.levels, tuple | list):
        raise ValidationError("levels", book.levels, "must be a tuple of BookLevel")
    previous: Decimal | None = None
    for index, level in enumerate(book.levels):
        check_money(f"levels[{index}].price", getattr(level, "price", None))
        check_money(f"levels[{index}].size", getattr(level, "size", None))
        if previous is not None:
            ordered = level.price < previous if side is Side.BID else level.price > previous
            if not ordered:
                order = "descending" if side is Side.BID else "ascending"
                raise ValidationError(
                    f"levels[{index}].price", level.price, f"{side} prices must be strictly {order}"
                )
        previous = level.price


def check_position(position: object) -> None:
    """A :class:`Position`: signed quantity and P&L, non-negative average price."""
    _check_type("position", position, Position)
    assert isinstance(position, Position)
    check_id("symbol", position.symbol)
    check_money("quantity", position.quantity, signed=True)
    check_money("average_price", position.average_price)
    check_money("realized_pnl", position.realized_pnl, signed=True)
    check_timestamp("timestamp_ns", position.timestamp_ns)


def check_risk(risk: object) -> None:
    """An :class:`AccountRisk`: signed equity, every other figure non-negative."""
    _check_type("risk", risk, AccountRisk)
    assert isinstance(risk, AccountRisk)
    check_money("equity", risk.equity, signed=True)
    check_money("margin_used", risk.margin_used)
    check_money("exposure", risk.exposure)
    check_money("max_exposure", risk.max_exposure)
    check_money("max_order_notional", risk.max_order_notional)
    check_money("daily_loss_limit", risk.daily_loss_limit)
    check_timestamp("timestamp_ns", risk.timestamp_ns)


def check_order(order: object) -> None:
    """An :class:`Order`: ids, enums, ``0 <= filled <= quantity``, limit orders priced."""
    _check_type("order", order, Order)
    assert isinstance(order, Order)
    check_id("order_id", order.order_id)
    check_id("strategy_id", order.strategy_id)
    check_id("symbol", order.symbol)
    check_enum("side", order.side, OrderSide)
    kind = check_enum("type", order.type, OrderType)
    check_enum("status", order.status, OrderStatus)
    check_money("quantity", order.quantity)
    if order.quantity == 0:
        raise ValidationError("quantity", order.quantity, "must be positive")
    if order.price is None:
        if kind is OrderType.LIMIT:
            raise ValidationError("price", None, "a limit order needs a price")
    else:
        check_money("price", order.price)
    check_money("filled_quantity", order.filled_quantity)
    if order.filled_quantity > order.quantity:
        raise ValidationError("filled_quantity", order.filled_quantity, "exceeds quantity")
    check_timestamp("created_ns", order.created_ns)
    check_timestamp("updated_ns", order.updated_ns)


def check_strategy(config: object) -> None:
    """A :class:`StrategyConfig`: id, name, bool flag, ``str -> str`` parameters."""
    _check_type("config", config, StrategyConfig)
    assert isinstance(config, StrategyConfig)
    check_id("strategy_id", config.strategy_id)
    check_id("name", config.name, max_length=MAX_TEXT_LENGTH)
    if not isinstance(config.enabled, bool):
        raise ValidationError("enabled", config.enabled, "must be a bool")
    if not isinstance(config.parameters, Mapping):
        raise ValidationError("parameters", config.parameters, "must be a mapping")
    for key, value in config.parameters.items():
        check_id("parameters key", key, max_length=MAX_TEXT_LENGTH)
        if not isinstance(value, str) or "\x00" in value:
            raise ValidationError(f"parameters[{key!r}]", value, "must be a str without NUL")


def check_fill(order_id: object, quantity: object, price: object, timestamp_ns: object) -> None:
    """Arguments of ``apply_fill``: order id, positive quantity, non-negative price."""
    check_id("order_id", order_id)
    check_money("quantity", quantity)
    if quantity == 0:
        raise ValidationError("quantity", quantity, "must be positive")
    check_money("price", price)
    check_timestamp("timestamp_ns", timestamp_ns)
