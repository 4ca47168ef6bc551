"""Seeded randomness of the workload: Zipf symbol popularity and market moves.

:class:`Zipf` draws symbol indices with probability proportional to
``1 / rank ** exponent`` (rank 1 is the hottest). :class:`MarketSimulator`
keeps each symbol's book in ticks and produces updates that stay realistic: the
top of book moves by a few ticks, prices stay on the symbol's tick grid and
positive, bids strictly descend and asks strictly ascend, sizes are round lots.
"""

from __future__ import annotations

import bisect
import itertools
import random
from decimal import Decimal

from runtime.data import SeededUniverse
from runtime.domain import BookLevel, BookSide, Price, Side

__all__ = ["MarketSimulator", "Zipf", "lot_size"]

_MOVES = (-2, -1, -1, 0, 0, 0, 1, 1, 2)


def lot_size(tick: Decimal) -> int:
    """Round lot of a symbol: 1 on the coarse 0.5 grid, 100 on the fine one."""
    return 1 if tick >= Decimal("0.5") else 100


class Zipf:
    """Draws indices ``0..n-1`` with P(i) proportional to ``1 / (i + 1) ** exponent``."""

    __slots__ = ("_cumulative", "_rng", "_total")

    def __init__(self, n: int, exponent: float, rng: random.Random) -> None:
        weights: list[float] = [1.0 / float(rank**exponent) for rank in range(1, n + 1)]
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1]
        self._rng = rng

    def draw(self) -> int:
        return bisect.bisect_left(self._cumulative, self._rng.random() * self._total)

    def probability(self, index: int) -> float:
        previous = self._cumulative[index - 1] if index else 0.0
        return (self._cumulative[index] - previous) / self._total


class _Book:
    __slots__ = ("ask_gaps", "ask_sizes", "bid", "bid_gaps", "bid_sizes", "lot", "spread", "tick")

    def __init__(self, tick: Decimal, bids: BookSide, asks: BookSide) -> None:
        self.tick = tick
        self.lot = lot_size(tick)
        bid_ticks = [int(level.price / tick) for level in bids.levels]
        ask_ticks = [int(level.price / tick) for level in asks.levels]
        self.bid = bid_ticks[0]
        self.spread = ask_ticks[0] - bid_ticks[0]
        self.bid_gaps = [a - b for a, b in itertools.pairwise(bid_ticks)]
        self.ask_gaps = [b - a for a, b in itertools.pairwise(ask_ticks)]
        self.bid_sizes = [int(level.size) for level in bids.levels]
        self.ask_sizes = [int(level.size) for level in asks.levels]


class MarketSimulator:
    """The evolving books of a universe; :meth:`update` makes one market-data update."""

    def __init__(self, universe: SeededUniverse, rng: random.Random) -> None:
        self._rng = rng
        self._books = {
            symbol: _Book(
                universe.ticks[symbol],
                universe.books[(symbol, Side.BID)],
                universe.books[(symbol, Side.ASK)],
            )
            for symbol in universe.symbols
        }

    def tick(self, symbol: str) -> Decimal:
        return self._books[symbol].tick

    def update(self, symbol: str, timestamp_ns: int) -> tuple[Price, BookSide, BookSide]:
        """The next price and both book sides of ``symbol``, on its tick grid."""
        rng = self._rng
        book = self._books[symbol]
        floor = sum(book.bid_gaps) + 1  # the deepest bid stays above zero
        book.bid = max(floor, book.bid + rng.choice(_MOVES))
        book.spread = min(3, max(1, book.spread + rng.choice((-1, 0, 0, 1))))
        for sizes in (book.bid_sizes, book.ask_sizes):
            for _ in range(rng.randint(1, 3)):
                sizes[rng.randrange(len(sizes))] = rng.randint(1, 50) * book.lot
        if book.bid_gaps and rng.random() < 0.1:
            gaps = rng.choice((book.bid_gaps, book.ask_gaps))
            gaps[rng.randrange(len(gaps))] = rng.randint(1, 2)
        tick = book.tick
        bid_ticks = list(itertools.accumulate([0, *book.bid_gaps], lambda a, g: a - g))
        ask_ticks = list(itertools.accumulate([0, *book.ask_gaps]))
        ask = book.bid + book.spread
        bids = tuple(
            BookLevel((book.bid + t) * tick, Decimal(s))
            for t, s in zip(bid_ticks, book.bid_sizes, strict=True)
        )
        asks = tuple(
            BookLevel((ask + t) * tick, Decimal(s))
            for t, s in zip(ask_ticks, book.ask_sizes, strict=True)
        )
        last = book.bid if rng.random() < 0.5 else ask
        price = Price(symbol, book.bid * tick, ask * tick, last * tick, timestamp_ns)
        return (
            price,
            BookSide(symbol, Side.BID, bids, timestamp_ns),
            BookSide(symbol, Side.ASK, asks, timestamp_ns),
        )
