"""The standard workload's seeded universe (``shared/workload.md``), deterministic.

:func:`build_universe` computes the data from the seed alone (no I/O; the same
seed gives equal data); :func:`seed_workload` writes it into a store in ONE
transaction and returns the :class:`SeededUniverse` with the committed versions.

Per symbol (``SYM000``...): a tick size (``0.01`` below 1000, ``0.5`` from 1000
to 5000), a price on the tick grid with a 1-3 tick spread, ``levels`` levels per
book side on the grid (bids strictly descending from the bid, asks strictly
ascending from the ask, sizes in round lots) and a position (long, short or flat).
One account risk row whose exposure is the positions' notional and whose margin
is ``exposure * MARGIN_RATE``; strategies ``strat-0``... with text parameters.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType

from runtime.data.errors import ValidationError
from runtime.data.fills import MARGIN_RATE
from runtime.data.store import Store
from runtime.domain import (
    AccountRisk,
    BookLevel,
    BookSide,
    Position,
    Price,
    Side,
    StrategyConfig,
)

__all__ = ["SEED_TIMESTAMP_NS", "SeededUniverse", "build_universe", "seed_workload"]

SEED_TIMESTAMP_NS = 1_700_000_000_000_000_000
"""Default timestamp of the seeded rows, fixed so the data is deterministic."""

_FINE_TICK = Decimal("0.01")
_COARSE_TICK = Decimal("0.5")


def _frozen(mapping: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class SeededUniverse:
    """What was seeded: ids, tick sizes and every row (with its committed version)."""

    seed: int
    symbols: tuple[str, ...]
    strategy_ids: tuple[str, ...]
    levels: int
    timestamp_ns: int
    ticks: Mapping[str, Decimal] = field(repr=False)
    prices: Mapping[str, Price] = field(repr=False)
    books: Mapping[tuple[str, Side], BookSide] = field(repr=False)
    positions: Mapping[str, Position] = field(repr=False)
    risk: AccountRisk = field(repr=False)
    strategies: Mapping[str, StrategyConfig] = field(repr=False)


def _check_count(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValidationError(name, value, f"must be an int >= {minimum}")
    return value


def build_universe(
    *,
    symbols: int = 200,
    levels: int = 20,
    strategies: int = 8,
    seed: int = 7,
    timestamp_ns: int = SEED_TIMESTAMP_NS,
) -> SeededUniverse:
    """The universe for ``seed`` (versions 0: not stored yet). Pure and deterministic."""
    _check_count("symbols", symbols, 1)
    _check_count("levels", levels, 0)
    _check_count("strategies", strategies, 0)
    rng = random.Random(seed)
    width = max(3, len(str(symbols - 1)))
    names = tuple(f"SYM{i:0{width}d}" for i in range(symbols))
    ticks: dict[str, Decimal] = {}
    prices: dict[str, Price] = {}
    books: dict[tuple[str, Side], BookSide] = {}
    positions: dict[str, Position] = {}
    ts = timestamp_ns
    for symbol in names:
        coarse = rng.random() < 0.25
        tick = _COARSE_TICK if coarse else _FINE_TICK
        # Price in ticks: 1.00..999.99 on 0.01, 1000.0..5000.0 on 0.5; always > 2 * levels ticks.
        bid_t = rng.randint(2_000, 10_000) if coarse else rng.randint(100, 99_999)
        ask_t = bid_t + rng.randint(1, 3)
        lot = 1 if coarse else 100
        bid_levels, ask_levels = [], []
        b, a = bid_t, ask_t
        for _ in range(levels):
            bid_levels.append(BookLevel(b * tick, Decimal(rng.randint(1, 50) * lot)))
            ask_levels.append(BookLevel(a * tick, Decimal(rng.randint(1, 50) * lot)))
            b -= rng.randint(1, 2)
            a += rng.randint(1, 2)
        last_t = bid_t if rng.random() < 0.5 else ask_t
        ticks[symbol] = tick
        prices[symbol] = Price(symbol, bid_t * tick, ask_t * tick, last_t * tick, ts)
        books[(symbol, Side.BID)] = BookSide(symbol, Side.BID, tuple(bid_levels), ts)
        books[(symbol, Side.ASK)] = BookSide(symbol, Side.ASK, tuple(ask_levels), ts)
        quantity = Decimal(rng.randint(-10, 10) * lot)
        average = (bid_t + rng.randint(-5, 5)) * tick if quantity else Decimal(0)
        realized = Decimal(rng.randint(-500_000, 500_000)).scaleb(-2)
        positions[symbol] = Position(symbol, quantity, average, realized, ts)
    exposure = sum((abs(p.quantity * p.average_price) for p in positions.values()), Decimal(0))
    risk = AccountRisk(
        equity=Decimal("10000000.00"),
        margin_used=exposure * MARGIN_RATE,
        exposure=exposure,
        max_exposure=Decimal("50000000.00"),
        max_order_notional=Decimal("1000000.00"),
        daily_loss_limit=Decimal("250000.00"),
        timestamp_ns=ts,
    )
    configs: dict[str, StrategyConfig] = {}
    for i in range(strategies):
        strategy_id = f"strat-{i}"
        configs[strategy_id] = StrategyConfig(
            strategy_id,
            f"scalper-{i}",
            True,
            {
                "edge_bps": str(rng.randint(1, 10)),
                "max_position": str(rng.randint(1, 20) * 100),
                "order_size": str(rng.choice((100, 200, 500))),
                "cooldown_ms": str(rng.randint(5, 50)),
            },
        )
    return SeededUniverse(
        seed=seed,
        symbols=names,
        strategy_ids=tuple(configs),
        levels=levels,
        timestamp_ns=ts,
        ticks=MappingProxyType(ticks),
        prices=MappingProxyType(prices),
        books=MappingProxyType(books),
        positions=MappingProxyType(positions),
        risk=risk,
        strategies=MappingProxyType(configs),
    )


async def seed_workload(
    store: Store,
    *,
    symbols: int = 200,
    levels: int = 20,
    strategies: int = 8,
    seed: int = 7,
    timestamp_ns: int = SEED_TIMESTAMP_NS,
) -> SeededUniverse:
    """Write :func:`build_universe`'s data into ``store`` in one transaction.

    Existing rows with the same keys are overwritten (their versions go up). The
    returned universe carries the committed versions.
    """
    universe = build_universe(
        symbols=symbols, levels=levels, strategies=strategies, seed=seed, timestamp_ns=timestamp_ns
    )
    prices: dict[str, Price] = {}
    books: dict[tuple[str, Side], BookSide] = {}
    positions: dict[str, Position] = {}
    configs: dict[str, StrategyConfig] = {}
    async with store.transaction() as tx:
        for symbol in universe.symbols:
            price = universe.prices[symbol]
            prices[symbol] = replace(price, version=await tx.put_price(price))
            for side in (Side.BID, Side.ASK):
                book = universe.books[(symbol, side)]
                books[(symbol, side)] = replace(book, version=await tx.put_book(book))
            position = universe.positions[symbol]
            positions[symbol] = replace(position, version=await tx.put_position(position))
        risk = replace(universe.risk, version=await tx.put_risk(universe.risk))
        for strategy_id, config in universe.strategies.items():
            configs[strategy_id] = replace(config, version=await tx.put_strategy(config))
    return replace(
        universe,
        prices=MappingProxyType(prices),
        books=MappingProxyType(books),
        positions=MappingProxyType(positions),
        risk=risk,
        strategies=MappingProxyType(configs),
    )
