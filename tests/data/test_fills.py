"""Pure fill arithmetic: order status, position averaging and realised P&L, risk."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.data.errors import ValidationError
from runtime.data.fills import (
    MARGIN_RATE,
    fill_order,
    fill_position,
    fill_risk,
    signed_quantity,
)
from runtime.domain import OrderSide, OrderStatus, Position
from support import factories as f

D = Decimal


def pos(quantity: str, average: str, realized: str = "0") -> Position:
    return Position("S", D(quantity), D(average), D(realized), 0, version=4)


@pytest.mark.parametrize(
    ("start", "delta", "price", "quantity", "average", "realized"),
    [
        (None, "10", "5", "10", "5", "0"),  # opens a new position
        (("0", "0"), "-10", "5", "-10", "5", "0"),  # opens a short from flat
        (("10", "5"), "10", "7", "20", "6", "0"),  # adding re-averages
        (("-10", "5"), "-30", "9", "-40", "8", "0"),  # adding to a short re-averages
        (("10", "5"), "-4", "8", "6", "5", "12"),  # reducing a long realises (8-5)*4
        (("-10", "5"), "4", "8", "-6", "5", "-12"),  # reducing a short realises (5-8)*4
        (("10", "5"), "-10", "4", "0", "0", "-10"),  # closing goes flat, average 0
        (("10", "5"), "-15", "6", "-5", "6", "10"),  # crossing opens the rest at the fill
        (("-10", "5"), "25", "3", "15", "3", "20"),  # crossing from short
    ],
)
def test_fill_position_follows_the_standard_rules(
    start: tuple[str, str] | None,
    delta: str,
    price: str,
    quantity: str,
    average: str,
    realized: str,
) -> None:
    old = None if start is None else pos(*start)
    new = fill_position(old, "S", D(delta), D(price), 99)
    assert (new.quantity, new.average_price, new.realized_pnl) == (
        D(quantity),
        D(average),
        D(realized),
    )
    assert new.timestamp_ns == 99
    assert new.version == (0 if old is None else 4)


def test_reaveraging_ignores_the_callers_decimal_context() -> None:
    with localcontext() as ctx:
        ctx.prec = 3
        new = fill_position(pos("3", "1"), "S", D("1"), D("2"), 1)
    assert new.average_price == D("1.25")
    third = fill_position(pos("1", "1"), "S", D("2"), D("1.5"), 1)
    assert third.average_price == D("1.333333333333333333333333333")


def test_fill_order_moves_status_and_rejects_overfill_and_closed() -> None:
    order = f.order(quantity="10")
    partial = fill_order(order, D("4"), 7)
    assert (partial.filled_quantity, partial.status, partial.updated_ns) == (
        D("4"),
        OrderStatus.PARTIALLY_FILLED,
        7,
    )
    full = fill_order(partial, D("6"), 8)
    assert full.status is OrderStatus.FILLED
    with pytest.raises(ValidationError) as over:
        fill_order(partial, D("6.000001"), 9)
    assert over.value.field == "quantity"
    for status in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED):
        with pytest.raises(ValidationError) as closed:
            fill_order(replace(order, status=status), D("1"), 9)
        assert closed.value.field == "status"


def test_fill_risk_moves_exposure_by_the_notional_change_and_sets_margin() -> None:
    risk = f.risk("1000")
    new = fill_risk(risk, pos("10", "5"), pos("-5", "6"), 3)
    assert new.exposure == D("1000") - D("50") + D("30")
    assert new.margin_used == new.exposure * MARGIN_RATE
    assert new.timestamp_ns == 3
    assert fill_risk(risk, None, pos("2", "3"), 3).exposure == D("1006")


def test_signed_quantity_buys_add_and_sells_subtract() -> None:
    assert signed_quantity(OrderSide.BUY, D("3")) == D("3")
    assert signed_quantity(OrderSide.SELL, D("3")) == D("-3")


fills = st.lists(
    st.tuples(
        st.integers(-1000, 1000).filter(bool).map(D),
        st.integers(1, 100_000).map(lambda n: D(n).scaleb(-2)),
    ),
    min_size=1,
    max_size=30,
)


@given(fills)
def test_quantity_is_the_sum_of_fills_and_total_pnl_is_conserved(
    trades: list[tuple[Decimal, Decimal]],
) -> None:
    position: Position | None = None
    for delta, price in trades:
        position = fill_position(position, "S", delta, price, 1)
    assert position is not None
    assert position.quantity == sum(d for d, _ in trades)
    assert position.average_price >= 0
    # Marked at any price, realised + unrealised P&L equals the P&L of the trades,
    # up to the rounding of the re-averaging division (28 significant digits).
    mark = D("500")
    total = position.realized_pnl + (mark - position.average_price) * position.quantity
    expected = sum((mark - p) * d for d, p in trades)
    assert abs(total - expected) < D("1e-15")
