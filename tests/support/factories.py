"""Small builders of valid entities for the data-layer tests."""

from __future__ import annotations

from decimal import Decimal

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

__all__ = ["book", "order", "position", "price", "risk", "strategy"]

D = Decimal


def price(symbol: str = "SYM000", bid: str = "100.01", ts: int = 1) -> Price:
    return Price(symbol, D(bid), D(bid) + D("0.02"), D(bid) + D("0.01"), ts)


def book(
    symbol: str = "SYM000", side: Side = Side.BID, prices: tuple[str, ...] = ("10", "9", "8")
) -> BookSide:
    levels = tuple(BookLevel(D(p), D("100")) for p in prices)
    return BookSide(symbol, side, levels, 1)


def position(symbol: str = "SYM000", quantity: str = "0", average: str = "0") -> Position:
    return Position(symbol, D(quantity), D(average), D("0"), 1)


def risk(exposure: str = "0") -> AccountRisk:
    return AccountRisk(
        equity=D("1000000"),
        margin_used=D(exposure) * D("0.1"),
        exposure=D(exposure),
        max_exposure=D("5000000"),
        max_order_notional=D("100000"),
        daily_loss_limit=D("25000"),
        timestamp_ns=1,
    )


def order(
    order_id: str = "ord-1",
    symbol: str = "SYM000",
    side: OrderSide = OrderSide.BUY,
    quantity: str = "100",
    limit: str | None = "10.00",
) -> Order:
    return Order(
        order_id=order_id,
        strategy_id="strat-0",
        symbol=symbol,
        side=side,
        type=OrderType.LIMIT if limit is not None else OrderType.MARKET,
        quantity=D(quantity),
        price=None if limit is None else D(limit),
        filled_quantity=D(0),
        status=OrderStatus.NEW,
        created_ns=1,
        updated_ns=1,
    )


def strategy(strategy_id: str = "strat-0", **parameters: str) -> StrategyConfig:
    return StrategyConfig(strategy_id, f"name of {strategy_id}", True, parameters)
