"""Latency of the source-of-truth stores: a single-row read and a fill transaction.

Usage::

    python benchmarks/store_latency.py [--store-url URL ...] [--iterations N] [--seed S]

Defaults: a SQLite file in a temporary directory and the local PostgreSQL
(``postgresql://postgres@127.0.0.1:5432/test``). PostgreSQL always runs in a
temporary schema that is dropped afterwards. Each store is migrated and seeded
with the standard workload (shared/workload.md), then measured sequentially
(one caller, no contention): ``get_price`` on Zipf-drawn symbols,
``get_position_and_risk``, ``put_price`` and ``apply_fill`` (one-lot fills of one
big order). Prints p50/p99/max in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal

import asyncpg

from runtime.data import Store, open_store, redact_url, seed_workload
from runtime.domain import Order, OrderSide, OrderStatus, OrderType

__all__ = ["main"]

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
WARMUP = 100


def _percentile(samples: list[int], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index] / 1000


async def _measure(
    name: str, call: Callable[[int], Awaitable[object]], iterations: int
) -> tuple[str, int, float, float, float, float]:
    for i in range(WARMUP):
        await call(i)
    samples: list[int] = []
    for i in range(WARMUP, WARMUP + iterations):
        start = time.perf_counter_ns()
        await call(i)
        samples.append(time.perf_counter_ns() - start)
    mean = statistics.fmean(samples) / 1000
    return (
        name,
        iterations,
        _percentile(samples, 0.5),
        _percentile(samples, 0.99),
        max(samples) / 1000,
        mean,
    )


async def _bench_store(
    store: Store, iterations: int, seed: int
) -> list[tuple[str, int, float, float, float, float]]:
    universe = await seed_workload(store, seed=seed)
    rng = random.Random(seed)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(universe.symbols))]
    draws = rng.choices(universe.symbols, weights, k=WARMUP + iterations)
    total = WARMUP + iterations
    order = Order(
        order_id=f"bench-{uuid.uuid4().hex[:8]}",
        strategy_id=universe.strategy_ids[0],
        symbol=universe.symbols[0],
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal(total),
        price=universe.prices[universe.symbols[0]].ask,
        filled_quantity=Decimal(0),
        status=OrderStatus.NEW,
        created_ns=time.time_ns(),
        updated_ns=time.time_ns(),
    )
    await store.put_order(order)
    fill_price = universe.prices[universe.symbols[0]].ask

    async def read(i: int) -> object:
        return await store.get_price(draws[i])

    async def snapshot(i: int) -> object:
        return await store.get_position_and_risk(draws[i])

    async def write(i: int) -> object:
        price = universe.prices[draws[i]]
        return await store.put_price(replace(price, timestamp_ns=price.timestamp_ns + i))

    async def fill(i: int) -> object:
        return await store.apply_fill(order.order_id, Decimal(1), fill_price, time.time_ns())

    return [
        await _measure("get_price", read, iterations),
        await _measure("get_position_and_risk", snapshot, iterations),
        await _measure("put_price", write, iterations),
        await _measure("apply_fill", fill, iterations),
    ]


async def _run_one(
    url: str, iterations: int, seed: int
) -> list[tuple[str, int, float, float, float, float]]:
    if url.startswith(("postgresql://", "postgres://")):
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        store = await open_store(url, schema=schema, migrate=True)
        try:
            return await _bench_store(store, iterations, seed)
        finally:
            await store.close()
            conn = await asyncpg.connect(url, timeout=10)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()
    store = await open_store(url, migrate=True)
    try:
        return await _bench_store(store, iterations, seed)
    finally:
        await store.close()


async def _main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="store-latency-") as tmp:
        urls = args.store_url or [f"sqlite:///{tmp}/bench.db", DEFAULT_POSTGRES]
        print(
            f"store_latency: iterations={args.iterations} warmup={WARMUP} seed={args.seed} "
            f"python={platform.python_version()} machine={platform.machine()} "
            f"sqlite={__import__('sqlite3').sqlite_version} asyncpg={asyncpg.__version__}"
        )
        columns = ("n", "p50 us", "p99 us", "max us", "mean us")
        header = f"{'store':<48} {'operation':<22} " + " ".join(f"{c:>8}" for c in columns)
        print(header)
        print("-" * len(header))
        for url in urls:
            shown = redact_url(url).replace(tmp, "<tmp>")
            for name, n, p50, p99, peak, mean in await _run_one(url, args.iterations, args.seed):
                figures = " ".join(f"{x:>8.1f}" for x in (p50, p99, peak, mean))
                print(f"{shown:<48} {name:<22} {n:>8} {figures}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--store-url",
        action="append",
        help="store URL (repeatable); default: sqlite temp file + local PostgreSQL",
    )
    parser.add_argument("--iterations", type=int, default=2000, help="measured calls per operation")
    parser.add_argument("--seed", type=int, default=7, help="workload seed")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
