# This file feeds deliberately mistyped values to the store.
# mypy: disable-error-code="arg-type"
"""Bad inputs are rejected with a ValidationError naming the field, before any SQL,
identically on both engines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from runtime.data import Store, StoreError, ValidationError
from runtime.domain import BookLevel, BookSide, Side
from support import factories as f

D = Decimal
Call = Callable[[Store], Awaitable[Any]]

CASES: list[tuple[str, Call, str]] = [
    ("negative price", lambda s: s.put_price(replace(f.price(), bid=D("-0.01"))), "bid"),
    ("NaN price", lambda s: s.put_price(replace(f.price(), ask=D("NaN"))), "ask"),
    ("infinite price", lambda s: s.put_price(replace(f.price(), last=D("Infinity"))), "last"),
    ("float money", lambda s: s.put_price(replace(f.price(), bid=1.5)), "bid"),
    ("int money", lambda s: s.put_position(replace(f.position(), quantity=3)), "quantity"),
    ("empty symbol", lambda s: s.get_price(""), "symbol"),
    ("too long symbol", lambda s: s.get_position("S" * 129), "symbol"),
    ("non-str symbol", lambda s: s.get_price(42), "symbol"),
    ("NUL in order id", lambda s: s.get_order("a\x00b"), "order_id"),
    ("empty order id", lambda s: s.put_order(f.order("")), "order_id"),
    ("empty strategy id", lambda s: s.get_strategy(""), "strategy_id"),
    ("unknown side", lambda s: s.get_book("SYM000", "middle"), "side"),
    ("zero depth", lambda s: s.get_book("SYM000", Side.BID, 0), "depth"),
    (
        "negative size",
        lambda s: s.put_book(BookSide("X", Side.ASK, (BookLevel(D("1"), D("-1")),), 1)),
        "levels[0].size",
    ),
    ("bids not descending", lambda s: s.put_book(f.book(prices=("1", "2"))), "levels[1].price"),
    (
        "asks not ascending",
        lambda s: s.put_book(f.book(side=Side.ASK, prices=("2", "2"))),
        "levels[1].price",
    ),
    ("bad order side", lambda s: s.put_order(replace(f.order(), side="hold")), "side"),
    ("bad order status", lambda s: s.put_order(replace(f.order(), status="open")), "status"),
    ("bad order type", lambda s: s.put_order(replace(f.order(), type="stop")), "type"),
    ("zero quantity", lambda s: s.put_order(f.order(quantity="0")), "quantity"),
    (
        "overfilled order",
        lambda s: s.put_order(replace(f.order(quantity="1"), filled_quantity=D("2"))),
        "filled_quantity",
    ),
    ("unpriced limit order", lambda s: s.put_order(replace(f.order(), price=None)), "price"),
    (
        "negative timestamp",
        lambda s: s.put_price(replace(f.price(), timestamp_ns=-1)),
        "timestamp_ns",
    ),
    (
        "bool timestamp",
        lambda s: s.put_position(replace(f.position(), timestamp_ns=True)),
        "timestamp_ns",
    ),
    ("negative exposure", lambda s: s.put_risk(replace(f.risk(), exposure=D("-1"))), "exposure"),
    (
        "bool expected version",
        lambda s: s.put_price(f.price(), expected_version=True),
        "expected_version",
    ),
    (
        "negative expected version",
        lambda s: s.put_risk(f.risk(), expected_version=-1),
        "expected_version",
    ),
    ("non-str parameter", lambda s: s.put_strategy(f.strategy(x=1)), "parameters['x']"),
    ("wrong entity type", lambda s: s.put_price(f.position()), "price"),
    ("fill of zero", lambda s: s.apply_fill("o", D("0"), D("1"), 1), "quantity"),
    ("fill of float", lambda s: s.apply_fill("o", 1.0, D("1"), 1), "quantity"),
    ("fill at negative price", lambda s: s.apply_fill("o", D("1"), D("-1"), 1), "price"),
]


@pytest.mark.parametrize(("call", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_input_is_rejected_naming_the_field(store: Store, call: Call, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        await call(store)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StoreError)
    assert field in str(info.value)


async def test_bad_input_inside_a_transaction_rolls_it_back(store: Store) -> None:
    async def write_then_bad_write() -> None:
        async with store.transaction() as tx:
            await tx.put_price(f.price())
            await tx.put_price(replace(f.price(), bid=D("-1")))

    with pytest.raises(ValidationError):
        await write_then_bad_write()
    assert await store.get_price("SYM000") is None
