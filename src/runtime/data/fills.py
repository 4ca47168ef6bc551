"""Pure fill arithmetic shared by both engines: no I/O, no clock, deterministic.

A fill of ``quantity`` at ``price`` on an order:

- order: ``filled_quantity += quantity``; status becomes ``partially_filled`` or
  ``filled``. An overfill or a fill of an order that is not open raises
  :class:`~runtime.data.errors.ValidationError`.
- position (signed: a buy adds, a sell subtracts):
  - flat, or adding in the same direction: the average price is re-averaged,
    ``(|q| * avg + |fill| * price) / |q + fill|``;
  - reducing: P&L ``(price - avg) * closed * sign(q)`` is realised on the closed
    quantity and the average price is kept (``0`` once flat);
  - crossing zero: the closed part realises P&L, the remainder opens at ``price``.
- account risk: ``exposure += |new_q * new_avg| - |old_q * old_avg|`` and
  ``margin_used = exposure * MARGIN_RATE``.

Division runs in a fixed decimal context (:data:`FILL_CONTEXT`: 28 significant
digits, half-even), so the result never depends on the caller's context.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Context, Decimal

from runtime.data.errors import ValidationError
from runtime.domain import AccountRisk, Order, OrderSide, OrderStatus, Position

__all__ = [
    "FILL_CONTEXT",
    "MARGIN_RATE",
    "fill_order",
    "fill_position",
    "fill_risk",
    "signed_quantity",
]

MARGIN_RATE = Decimal("0.1")
"""Margin the account posts per unit of exposure (10 %)."""

FILL_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)
"""Decimal context of the re-averaging division."""

_ZERO = Decimal(0)


def signed_quantity(side: OrderSide, quantity: Decimal) -> Decimal:
    """``quantity`` for a buy, ``-quantity`` for a sell."""
    return quantity if OrderSide(side) is OrderSide.BUY else -quantity


def fill_order(order: Order, quantity: Decimal, timestamp_ns: int) -> Order:
    """The order after a fill of ``quantity``; raises ``ValidationError`` if it cannot fill."""
    status = OrderStatus(order.status)
    if not status.is_open:
        raise ValidationError("status", status.value, f"order {order.order_id!r} is not open")
    filled = order.filled_quantity + quantity
    if filled > order.quantity:
        raise ValidationError(
            "quantity",
            quantity,
            f"overfills order {order.order_id!r}: {order.filled_quantity} + {quantity} "
            f"> {order.quantity}",
        )
    new_status = OrderStatus.FILLED if filled == order.quantity else OrderStatus.PARTIALLY_FILLED
    return replace(order, filled_quantity=filled, status=new_status, updated_ns=timestamp_ns)


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def fill_position(
    position: Position | None,
    symbol: str,
    delta: Decimal,
    price: Decimal,
    timestamp_ns: int,
) -> Position:
    """The position after a signed fill of ``delta`` at ``price`` (``None``: flat, new row)."""
    if position is None:
        position = Position(symbol, _ZERO, _ZERO, _ZERO, timestamp_ns)
    if delta == 0:
        return replace(position, timestamp_ns=timestamp_ns)
    old_qty, old_avg = position.quantity, position.average_price
    new_qty = old_qty + delta
    realized = position.realized_pnl
    if old_qty == 0 or _sign(old_qty) == _sign(delta):
        total_cost = abs(old_qty) * old_avg + abs(delta) * price
        new_avg = FILL_CONTEXT.divide(total_cost, abs(new_qty))
    else:
        closed = min(abs(delta), abs(old_qty))
        realized += (price - old_avg) * closed * _sign(old_qty)
        if new_qty == 0:
            new_avg = _ZERO
        elif _sign(new_qty) == _sign(old_qty):
            new_avg = old_avg
        else:
            new_avg = price
    return replace(
        position,
        quantity=new_qty,
        average_price=new_avg,
        realized_pnl=realized,
        timestamp_ns=timestamp_ns,
    )


def fill_risk(
    risk: AccountRisk,
    old: Position | None,
    new: Position,
    timestamp_ns: int,
    *,
    margin_rate: Decimal = MARGIN_RATE,
) -> AccountRisk:
    """The account risk after a position moved from ``old`` to ``new``."""
    old_notional = abs(old.quantity * old.average_price) if old is not None else _ZERO
    exposure = risk.exposure + abs(new.quantity * new.average_price) - old_notional
    return replace(
        risk,
        exposure=exposure,
        margin_used=exposure * margin_rate,
        timestamp_ns=timestamp_ns,
    )
