"""Hypothesis strategies for every entity of ``runtime.domain``, for any test to reuse.

Every strategy draws values the cache must be able to store and give back
exactly: identifiers that pass the key schema (C2), finite ``Decimal`` values
with extreme exponents and long coefficients (C4), text without lone surrogates
(redis-py sends text as UTF-8), and books whose levels are strictly best-first.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from runtime.cache.models import MAX_IDENTIFIER_LENGTH
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
    "EXTREME_DECIMALS",
    "book_sides",
    "decimals",
    "identifiers",
    "orders",
    "positions",
    "prices",
    "risks",
    "strategy_configs",
    "texts",
    "timestamps",
    "versions",
]

EXTREME_DECIMALS: tuple[Decimal, ...] = (
    Decimal("0"),
    Decimal("-0"),
    Decimal("0E-18"),
    Decimal("1E-18"),
    Decimal("-1E-18"),
    Decimal("1E+12"),
    Decimal("-1E+12"),
    Decimal("1.10"),
    Decimal("1.23E+5"),
    Decimal("-4.5E-7"),
    Decimal("1000000000000"),
    Decimal("0.000000000000000001"),
    Decimal("1234567890123456789012345678.9012345"),
    Decimal("-99999999999999999999999999999999.99999999"),
    Decimal("9.999999999999999999999999999999E+40"),
)
"""Hand-picked values every codec test should meet: tiny, huge, signed zero,
trailing zeros, scientific forms and more than 28 significant digits."""

_ID_FORBIDDEN = "*?[]\\{}:"


def _is_identifier(text: str) -> bool:
    return not any(char.isspace() for char in text)


def identifiers(*, max_size: int = MAX_IDENTIFIER_LENGTH) -> st.SearchStrategy[str]:
    """Identifiers the key schema accepts (symbols, order and strategy ids)."""
    alphabet = st.characters(
        exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"], exclude_characters=_ID_FORBIDDEN
    )
    return st.text(alphabet, min_size=1, max_size=max_size).filter(_is_identifier)


def texts(*, max_size: int = 40) -> st.SearchStrategy[str]:
    """Free text (names, parameters) that redis-py can send: any code point but surrogates."""
    return st.text(st.characters(exclude_categories=["Cs"]), max_size=max_size)


def decimals(*, max_digits: int = 40) -> st.SearchStrategy[Decimal]:
    """Finite ``Decimal`` values in every written form, including the extreme ones.

    Built from (sign, digits, exponent) so that trailing zeros, exponents from
    1E-30 to 1E+30 and coefficients longer than the default 28-digit context
    all appear; :data:`EXTREME_DECIMALS` are drawn often.
    """
    built = st.builds(
        lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=max_digits),
        st.integers(-30, 30),
    )
    return st.one_of(st.sampled_from(EXTREME_DECIMALS), built)


def timestamps() -> st.SearchStrategy[int]:
    """Nanoseconds since the epoch, up to the end of int64."""
    return st.integers(min_value=0, max_value=2**63 - 1)


def versions() -> st.SearchStrategy[int]:
    """Source-of-truth versions (0 = never stored)."""
    return st.integers(min_value=0, max_value=2**63 - 1)


def prices(*, symbol: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Price]:
    return st.builds(
        Price,
        symbol=symbol or identifiers(),
        bid=decimals(),
        ask=decimals(),
        last=decimals(),
        timestamp_ns=timestamps(),
        version=versions(),
    )


@st.composite
def _levels(draw: st.DrawFn, side: Side, max_levels: int) -> tuple[BookLevel, ...]:
    # unique_by the value: Decimal("1.1") and Decimal("1.10") are the same price.
    level_prices = draw(st.lists(decimals(), max_size=max_levels, unique_by=lambda d: d))
    level_prices.sort(reverse=side is Side.BID)
    sizes = draw(st.lists(decimals(), min_size=len(level_prices), max_size=len(level_prices)))
    return tuple(BookLevel(p, s) for p, s in zip(level_prices, sizes, strict=True))


@st.composite
def book_sides(
    draw: st.DrawFn,
    *,
    symbol: st.SearchStrategy[str] | None = None,
    side: Side | None = None,
    max_levels: int = 20,
) -> BookSide:
    """A book side with strictly best-first, distinct level prices (possibly no levels)."""
    chosen = side if side is not None else draw(st.sampled_from(Side))
    return BookSide(
        symbol=draw(symbol or identifiers()),
        side=chosen,
        levels=draw(_levels(chosen, max_levels)),
        timestamp_ns=draw(timestamps()),
        version=draw(versions()),
    )


def positions(*, symbol: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Position]:
    return st.builds(
        Position,
        symbol=symbol or identifiers(),
        quantity=decimals(),
        average_price=decimals(),
        realized_pnl=decimals(),
        timestamp_ns=timestamps(),
        version=versions(),
    )


def risks() -> st.SearchStrategy[AccountRisk]:
    return st.builds(
        AccountRisk,
        equity=decimals(),
        margin_used=decimals(),
        exposure=decimals(),
        max_exposure=decimals(),
        max_order_notional=decimals(),
        daily_loss_limit=decimals(),
        timestamp_ns=timestamps(),
        version=versions(),
    )


@st.composite
def orders(draw: st.DrawFn, *, order_id: st.SearchStrategy[str] | None = None) -> Order:
    """An order; market orders have no price, limit orders always have one."""
    order_type = draw(st.sampled_from(OrderType))
    return Order(
        order_id=draw(order_id or identifiers()),
        strategy_id=draw(identifiers()),
        symbol=draw(identifiers()),
        side=draw(st.sampled_from(OrderSide)),
        type=order_type,
        quantity=draw(decimals()),
        price=None if order_type is OrderType.MARKET else draw(decimals()),
        filled_quantity=draw(decimals()),
        status=draw(st.sampled_from(OrderStatus)),
        created_ns=draw(timestamps()),
        updated_ns=draw(timestamps()),
        version=draw(versions()),
    )


def strategy_configs(
    *, strategy_id: st.SearchStrategy[str] | None = None
) -> st.SearchStrategy[StrategyConfig]:
    return st.builds(
        StrategyConfig,
        strategy_id=strategy_id or identifiers(),
        name=texts(),
        enabled=st.booleans(),
        parameters=st.dictionaries(texts(max_size=12), texts(), max_size=6),
        version=versions(),
    )
