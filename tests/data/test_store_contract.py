"""The Store contract, run on both engines (``store`` is parametrized): round trips,
versions, optimistic conflicts, transactions, fills and concurrency."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest

from runtime.data import ConflictError, NotFoundError, Store, ValidationError
from runtime.domain import (
    BookLevel,
    BookSide,
    OrderSide,
    OrderStatus,
    Position,
    Price,
    Side,
    StrategyConfig,
)
from support import factories as f

D = Decimal
TINY = D("1e-18")
HUGE = D("1e12")
LONG = D("12345.678901234567890123")


async def test_absent_rows_read_as_none(store: Store) -> None:
    assert await store.get_price("SYM000") is None
    assert await store.get_book("SYM000", Side.BID) is None
    assert await store.get_position("SYM000") is None
    assert await store.get_risk() is None
    assert await store.get_order("nope") is None
    assert await store.get_strategy("nope") is None
    assert await store.get_position_and_risk("SYM000") == (None, None)


async def test_price_round_trips_extreme_decimals(store: Store) -> None:
    value = Price("SYM000", TINY, HUGE, LONG, 2**62, version=99)
    version = await store.put_price(value)
    assert version == 1
    got = await store.get_price("SYM000")
    assert got == replace(value, version=1)
    assert got is not None
    assert (got.bid, got.ask, got.last) == (TINY, HUGE, LONG)
    assert str(got.last) == "12345.678901234567890123"


async def test_position_round_trips_short_quantity(store: Store) -> None:
    value = Position("SYM001", D("-1234.5"), LONG, D("-987654321.000000000001"), 3)
    assert await store.put_position(value) == 1
    assert await store.get_position("SYM001") == replace(value, version=1)


async def test_risk_round_trips_and_is_single(store: Store) -> None:
    value = replace(f.risk("1e12"), equity=D("-5.5"), daily_loss_limit=TINY)
    assert await store.put_risk(value) == 1
    assert await store.put_risk(replace(value, equity=LONG)) == 2
    assert await store.get_risk() == replace(value, equity=LONG, version=2)


async def test_order_round_trips_limit_and_market(store: Store) -> None:
    limit = replace(f.order("L-1"), price=LONG, quantity=HUGE, filled_quantity=TINY)
    market = f.order("M-1", side=OrderSide.SELL, limit=None)
    assert await store.put_order(limit) == 1
    assert await store.put_order(market) == 1
    assert await store.get_order("L-1") == replace(limit, version=1)
    got = await store.get_order("M-1")
    assert got == replace(market, version=1)
    assert got is not None
    assert got.price is None


async def test_strategy_round_trips_parameters(store: Store) -> None:
    value = StrategyConfig(
        "strat-x", "Scalper X", False, {"edge": "1.5", "ünï": "✓", "note": "a; b\x27c"}
    )
    assert await store.put_strategy(value) == 1
    got = await store.get_strategy("strat-x")
    assert got == replace(value, version=1)
    assert got is not None
    assert got.enabled is False


async def test_book_round_trips_best_first_and_depth(store: Store) -> None:
    bids = BookSide(
        "SYM000",
        Side.BID,
        (BookLevel(HUGE, TINY), BookLevel(LONG, D("5")), BookLevel(TINY, HUGE)),
        7,
    )
    assert await store.put_book(bids) == 1
    assert await store.get_book("SYM000", Side.BID) == replace(bids, version=1)
    top = await store.get_book("SYM000", Side.BID, depth=2)
    assert top is not None
    assert top.levels == bids.levels[:2]
    assert top.version == 1
    assert await store.get_book("SYM000", Side.ASK) is None


async def test_put_book_replaces_the_whole_side(store: Store) -> None:
    await store.put_book(f.book(prices=("10", "9", "8", "7")))
    version = await store.put_book(f.book(prices=("11",)))
    got = await store.get_book("SYM000", Side.BID)
    assert version == 2
    assert got is not None
    assert [lv.price for lv in got.levels] == [D("11")]
    assert await store.put_book(f.book(prices=())) == 3
    empty = await store.get_book("SYM000", Side.BID)
    assert empty is not None
    assert empty.levels == ()


async def test_versions_count_one_two_three_for_every_family(store: Store) -> None:
    for expected in (1, 2, 3):
        assert await store.put_price(f.price(ts=expected)) == expected
        assert await store.put_book(f.book()) == expected
        assert await store.put_position(f.position()) == expected
        assert await store.put_risk(f.risk()) == expected
        assert await store.put_order(f.order()) == expected
        assert await store.put_strategy(f.strategy()) == expected
    price = await store.get_price("SYM000")
    assert price is not None
    assert price.version == 3
    assert price.timestamp_ns == 3


async def test_wrong_expected_version_raises_conflict_and_writes_nothing(store: Store) -> None:
    await store.put_price(f.price(bid="1"))
    await store.put_price(f.price(bid="2"))
    with pytest.raises(ConflictError) as info:
        await store.put_price(f.price(bid="3"), expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert await store.put_price(f.price(bid="4"), expected_version=2) == 3
    got = await store.get_price("SYM000")
    assert got is not None
    assert got.bid == D("4")


async def test_expected_version_zero_means_insert_only(store: Store) -> None:
    assert await store.put_order(f.order(), expected_version=0) == 1
    with pytest.raises(ConflictError) as info:
        await store.put_order(f.order(), expected_version=0)
    assert info.value.actual == 1


async def test_expected_version_on_absent_row_is_a_conflict(store: Store) -> None:
    with pytest.raises(ConflictError) as info:
        await store.put_book(f.book(), expected_version=1)
    assert info.value.actual is None
    assert await store.get_book("SYM000", Side.BID) is None


async def test_position_and_risk_read_together(store: Store) -> None:
    await store.put_risk(f.risk("5"))
    assert await store.get_position_and_risk("SYM000") == (None, replace(f.risk("5"), version=1))
    await store.put_position(f.position(quantity="-3", average="2"))
    position, risk = await store.get_position_and_risk("SYM000")
    assert position == replace(f.position(quantity="-3", average="2"), version=1)
    assert risk is not None
    assert risk.version == 1


@pytest.mark.parametrize(
    "identifier", ["O'Brien; DROP TABLE orders;--", "100%", "a_b", "back\\slash", '"quoted"']
)
async def test_sql_metacharacters_in_identifiers_are_stored_verbatim(
    store: Store, identifier: str
) -> None:
    await store.put_order(f.order(identifier, symbol=identifier))
    await store.put_price(f.price(identifier))
    got = await store.get_order(identifier)
    assert got is not None
    assert (got.order_id, got.symbol) == (identifier, identifier)
    assert await store.get_order(identifier.replace("%", "x").replace("_", "y") + "?") is None
    price = await store.get_price(identifier)
    assert price is not None
    assert price.symbol == identifier


async def test_transaction_commits_all_writes_together(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.put_price(f.price()) == 1
        assert await tx.put_price(f.price()) == 2
        assert await tx.put_book(f.book()) == 1
        seen = await tx.get_price("SYM000")
        assert seen is not None
        assert seen.version == 2
    price = await store.get_price("SYM000")
    assert price is not None
    assert price.version == 2
    assert await store.get_book("SYM000", Side.BID) is not None


async def test_transaction_that_raises_leaves_nothing_behind(store: Store) -> None:
    await store.put_position(f.position(quantity="1", average="1"))

    class Boom(Exception):
        pass

    async def write_then_fail() -> None:
        async with store.transaction() as tx:
            await tx.put_position(f.position(quantity="999", average="1"))
            await tx.put_order(f.order("new-order"))
            await tx.put_book(f.book())
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()
    assert await store.get_order("new-order") is None
    assert await store.get_book("SYM000", Side.BID) is None
    position = await store.get_position("SYM000")
    assert position is not None
    assert (position.quantity, position.version) == (D("1"), 1)


async def test_conflict_inside_transaction_rolls_back_earlier_writes(store: Store) -> None:
    async def write_then_conflict() -> None:
        async with store.transaction() as tx:
            await tx.put_price(f.price())
            await tx.put_risk(f.risk(), expected_version=5)

    with pytest.raises(ConflictError):
        await write_then_conflict()
    assert await store.get_price("SYM000") is None


async def test_apply_fill_updates_order_position_and_risk(store: Store) -> None:
    await store.put_risk(f.risk("0"))
    await store.put_order(f.order("o-1", quantity="10"))
    first = await store.apply_fill("o-1", D("4"), D("10.00"), 100)
    assert first.order.filled_quantity == D("4")
    assert first.order.status is OrderStatus.PARTIALLY_FILLED
    assert (first.order.version, first.position.version, first.risk.version) == (2, 1, 2)
    assert (first.position.quantity, first.position.average_price) == (D("4"), D("10.00"))
    assert first.risk.exposure == D("40.00")
    assert first.risk.margin_used == D("4.000")
    second = await store.apply_fill("o-1", D("6"), D("20.00"), 200)
    assert second.order.status is OrderStatus.FILLED
    assert second.position.average_price == D("16")
    assert second.risk.exposure == D("160")
    assert await store.get_order("o-1") == second.order
    assert await store.get_position_and_risk("SYM000") == (second.position, second.risk)


async def test_apply_fill_sell_realises_pnl_and_crosses_zero(store: Store) -> None:
    await store.put_risk(f.risk("100"))
    await store.put_position(f.position(quantity="10", average="10"))
    await store.put_order(f.order("s-1", side=OrderSide.SELL, quantity="15"))
    result = await store.apply_fill("s-1", D("15"), D("12"), 5)
    assert result.position.quantity == D("-5")
    assert result.position.average_price == D("12")
    assert result.position.realized_pnl == D("20")
    assert result.risk.exposure == D("60")


async def test_apply_fill_rejects_overfill_and_closed_orders(store: Store) -> None:
    await store.put_risk(f.risk())
    await store.put_order(f.order("o-1", quantity="5"))
    with pytest.raises(ValidationError) as info:
        await store.apply_fill("o-1", D("6"), D("1"), 1)
    assert info.value.field == "quantity"
    await store.apply_fill("o-1", D("5"), D("1"), 2)
    with pytest.raises(ValidationError) as closed:
        await store.apply_fill("o-1", D("1"), D("1"), 3)
    assert closed.value.field == "status"
    order = await store.get_order("o-1")
    assert order is not None
    assert (order.filled_quantity, order.version) == (D("5"), 2)


async def test_apply_fill_on_unknown_order_or_missing_risk_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.apply_fill("ghost", D("1"), D("1"), 1)
    await store.put_order(f.order("o-1"))
    with pytest.raises(NotFoundError):
        await store.apply_fill("o-1", D("1"), D("1"), 1)
    order = await store.get_order("o-1")
    assert order is not None
    assert order.version == 1
    assert await store.get_position("SYM000") is None


async def test_fill_inside_a_transaction_is_rolled_back_with_it(store: Store) -> None:
    await store.put_risk(f.risk())
    await store.put_order(f.order("o-1"))
    seen: list[int] = []

    async def fill_then_fail() -> None:
        async with store.transaction() as tx:
            result = await tx.apply_fill("o-1", D("1"), D("1"), 1)
            seen.append(result.order.version)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await fill_then_fail()
    assert seen == [2]
    order = await store.get_order("o-1")
    assert order is not None
    assert order.version == 1
    assert await store.get_position("SYM000") is None


async def test_fifty_concurrent_fills_lose_no_update(store: Store) -> None:
    await store.put_risk(f.risk())
    await store.put_order(f.order("big", quantity="50"))
    results = await asyncio.gather(
        *(store.apply_fill("big", D("1"), D("10.00"), i + 1) for i in range(50))
    )
    order_versions = sorted(r.order.version for r in results)
    position_versions = sorted(r.position.version for r in results)
    assert order_versions == list(range(2, 52))
    assert position_versions == list(range(1, 51))
    final_order = await store.get_order("big")
    position = await store.get_position("SYM000")
    risk = await store.get_risk()
    assert final_order is not None
    assert (final_order.filled_quantity, final_order.status) == (D("50"), OrderStatus.FILLED)
    assert position is not None
    assert position.quantity == D("50")
    assert position.version == 50
    assert risk is not None
    assert (risk.exposure, risk.version) == (D("500.00"), 51)


async def test_fifty_concurrent_fills_of_separate_orders_on_one_position(store: Store) -> None:
    await store.put_risk(f.risk())
    await store.put_position(f.position(quantity="100", average="10"))
    for i in range(50):
        side = OrderSide.BUY if i % 2 else OrderSide.SELL
        await store.put_order(f.order(f"o-{i}", side=side, quantity=str(i + 1)))
    results = await asyncio.gather(
        *(store.apply_fill(f"o-{i}", D(i + 1), D("10"), i) for i in range(50))
    )
    versions = [r.position.version for r in results]
    assert len(set(versions)) == 50
    assert sorted(versions) == list(range(2, 52))
    expected = D(100) + sum(D(i + 1) if i % 2 else -D(i + 1) for i in range(50))
    position = await store.get_position("SYM000")
    assert position is not None
    assert position.quantity == expected
