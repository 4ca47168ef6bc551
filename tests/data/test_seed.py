"""The seeded workload universe: deterministic, and what shared/workload.md says."""

from __future__ import annotations

import itertools
from decimal import Decimal

from runtime.data import Store, build_universe, seed_workload
from runtime.data.fills import MARGIN_RATE
from runtime.domain import Side


def test_same_seed_gives_the_same_universe_and_another_seed_does_not() -> None:
    assert build_universe(seed=7) == build_universe(seed=7)
    assert build_universe(seed=7).prices != build_universe(seed=8).prices


def test_universe_has_the_workload_shape_and_valid_books() -> None:
    universe = build_universe()
    assert universe.symbols == tuple(f"SYM{i:03d}" for i in range(200))
    assert universe.strategy_ids == tuple(f"strat-{i}" for i in range(8))
    for symbol in universe.symbols:
        tick = universe.ticks[symbol]
        price = universe.prices[symbol]
        bids = universe.books[(symbol, Side.BID)].levels
        asks = universe.books[(symbol, Side.ASK)].levels
        assert tick in (Decimal("0.01"), Decimal("0.5"))
        assert Decimal(1) <= price.bid < price.ask <= Decimal(5001)
        assert price.last in (price.bid, price.ask)
        assert len(bids) == len(asks) == 20
        assert bids[0].price == price.bid
        assert asks[0].price == price.ask
        assert all(a.price > b.price for a, b in itertools.pairwise(bids))
        assert all(a.price < b.price for a, b in itertools.pairwise(asks))
        assert bids[-1].price > 0
        for level in bids + asks:
            assert level.price % tick == 0
            assert level.size > 0
    positions = universe.positions.values()
    assert any(p.quantity < 0 for p in positions)
    assert any(p.quantity > 0 for p in positions)
    exposure = sum(abs(p.quantity * p.average_price) for p in positions)
    assert universe.risk.exposure == exposure
    assert universe.risk.margin_used == exposure * MARGIN_RATE


async def test_seed_workload_writes_everything_with_versions(store: Store) -> None:
    universe = await seed_workload(store, symbols=20, levels=5, strategies=3, seed=11)
    assert universe.symbols == tuple(f"SYM{i:03d}" for i in range(20))
    for symbol in universe.symbols:
        assert await store.get_price(symbol) == universe.prices[symbol]
        assert await store.get_position(symbol) == universe.positions[symbol]
        for side in Side:
            stored = await store.get_book(symbol, side)
            assert stored == universe.books[(symbol, side)]
            assert stored is not None
            assert stored.version == 1
    assert await store.get_risk() == universe.risk
    for strategy_id in ("strat-0", "strat-1", "strat-2"):
        assert await store.get_strategy(strategy_id) == universe.strategies[strategy_id]
    again = await seed_workload(store, symbols=20, levels=5, strategies=3, seed=11)
    assert again.prices["SYM000"].version == 2
    assert again.prices["SYM000"].bid == universe.prices["SYM000"].bid


async def test_full_default_seed_populates_the_store(store: Store) -> None:
    universe = await seed_workload(store)
    assert len(universe.symbols) == 200
    last = await store.get_book("SYM199", Side.ASK, depth=10)
    assert last is not None
    assert len(last.levels) == 10
    assert await store.get_strategy("strat-7") is not None
