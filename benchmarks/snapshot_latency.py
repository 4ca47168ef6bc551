"""Hit-path latency of the facade beside raw redis-py issuing the same commands.

Run: ``python benchmarks/snapshot_latency.py [--redis-url URL] [--iterations N]``

Seeds one symbol in the cache (long TTLs, so every read is a hit), then
interleaves, call by call, the facade's ``snapshot()`` with raw redis-py
issuing the same five commands in one pipeline, and ``price()`` with a raw
``HGETALL``; also 32 concurrent callers on the default pool of 10. Reports
p50/p99/p99.9 in microseconds and the ratios. The interleaving cancels the drift
of a shared machine; figures are for reading, not asserting.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import Family, KeySchema
from runtime.domain import AccountRisk, BookLevel, BookSide, Position, Price, Side

SYMBOL = "BENCH01"


class _OneSymbolSource:
    """A source of truth holding one symbol (the hit path never calls it)."""

    def __init__(self) -> None:
        step = Decimal("0.25")
        self.price = Price(SYMBOL, Decimal("100.00"), Decimal("100.25"), Decimal("100.25"), 1, 1)
        self.books = {
            side: BookSide(
                SYMBOL,
                side,
                tuple(
                    BookLevel(
                        Decimal("100.00") - step * i
                        if side is Side.BID
                        else Decimal("100.25") + step * i,
                        Decimal("1.5") + i,
                    )
                    for i in range(20)
                ),
                1,
                1,
            )
            for side in Side
        }
        self.position = Position(SYMBOL, Decimal("-3"), Decimal("100.10"), Decimal("12.5"), 1, 1)
        self.risk = AccountRisk(
            Decimal("1000000"),
            Decimal("1000"),
            Decimal("10000"),
            Decimal("500000"),
            Decimal("50000"),
            Decimal("20000"),
            1,
            1,
        )

    async def get_price(self, symbol: str) -> Price:
        return self.price

    async def get_book(self, symbol: str, side: Side, depth: int | None = None) -> BookSide:
        return self.books[side]

    async def get_position_and_risk(self, symbol: str) -> tuple[Position, AccountRisk]:
        return self.position, self.risk


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "p50": ordered[n // 2] * 1e6,
        "p99": ordered[min(n - 1, int(n * 0.99))] * 1e6,
        "p99.9": ordered[min(n - 1, int(n * 0.999))] * 1e6,
    }


async def _interleaved(
    pairs: dict[str, Callable[[], Awaitable[Any]]], iterations: int
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in pairs}
    clock = time.perf_counter
    for _ in range(iterations):
        for name, call in pairs.items():
            started = clock()
            await call()
            samples[name].append(clock() - started)
    return samples


async def _concurrent(call: Callable[[], Awaitable[Any]], tasks: int, per_task: int) -> list[float]:
    samples: list[float] = []

    async def worker() -> None:
        for _ in range(per_task):
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return samples


async def main(redis_url: str, iterations: int) -> None:
    schema = KeySchema(ttl=dict.fromkeys(Family, 3600.0))
    source = _OneSymbolSource()
    async with CacheManager(redis_url) as manager:
        client = manager.get_connection()
        fallback = FallbackHandler(manager, schema=schema)
        async with TradingCache(manager, source, fallback=fallback) as cache:  # type: ignore[arg-type]
            await cache.snapshot(SYMBOL)
            await cache.price(SYMBOL)
            keys = (
                f"price:{{{SYMBOL}}}",
                f"book:{{{SYMBOL}}}:bid",
                f"book:{{{SYMBOL}}}:ask",
                f"pos:{{{SYMBOL}}}",
                "risk:account",
            )

            async def raw_snapshot() -> Any:
                pipe = client.pipeline(transaction=False)
                pipe.hgetall(keys[0])
                pipe.zrange(keys[1], 0, 10)
                pipe.zrange(keys[2], 0, 10)
                pipe.hgetall(keys[3])
                pipe.hgetall(keys[4])
                return await pipe.execute()

            pairs: dict[str, Callable[[], Awaitable[Any]]] = {
                "facade snapshot": lambda: cache.snapshot(SYMBOL),
                "raw snapshot pipeline": raw_snapshot,
                "facade price": lambda: cache.price(SYMBOL),
                "raw HGETALL": lambda: client.hgetall(keys[0]),
            }
            for call in pairs.values():  # warm-up
                for _ in range(200):
                    await call()
            samples = await _interleaved(pairs, iterations)
            per_task = max(1, iterations // 32)
            samples["facade snapshot, 32 tasks"] = await _concurrent(
                lambda: cache.snapshot(SYMBOL), 32, per_task
            )
            samples["raw snapshot, 32 tasks"] = await _concurrent(raw_snapshot, 32, per_task)
            stats = cache.statistics().total
            for key in keys:
                await client.delete(key)

    print(f"{'operation':28} {'p50 us':>9} {'p99 us':>9} {'p99.9 us':>9}")
    figures = {name: _percentiles(values) for name, values in samples.items()}
    for name, fig in figures.items():
        print(f"{name:28} {fig['p50']:9.1f} {fig['p99']:9.1f} {fig['p99.9']:9.1f}")
    ratio = figures["facade snapshot"]["p50"] / figures["raw snapshot pipeline"]["p50"]
    print(f"snapshot p50 ratio facade/raw: {ratio:.2f}  (target <= 1.25)")
    ratio = figures["facade price"]["p50"] / figures["raw HGETALL"]["p50"]
    print(f"single-family p50 ratio facade/raw: {ratio:.2f}  (target <= 1.20)")
    tail = figures["facade snapshot, 32 tasks"]
    print(f"32 tasks: facade p99.9/p99 = {tail['p99.9'] / tail['p99']:.2f}  (target <= 2)")
    print(
        f"hit rate during the run: {stats.hit_rate:.4f}; mean facade snapshot "
        f"{statistics.fmean(samples['facade snapshot']) * 1e6:.1f} us"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--iterations", type=int, default=5000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.redis_url, arguments.iterations))
