"""Overhead of ``CacheManager``: ``get_connection()`` cost and PING through it vs raw redis-py.

Starts a private redis-server on loopback (or uses ``--url``), then measures in
one run, interleaved so both sides see the same machine load:

- ``get_connection()``: ns per call (``timeit``-style loop);
- PING through the manager's client vs a raw ``redis.asyncio.Redis`` with a
  default pool: p50 / p99 in microseconds.

    python benchmarks/manager_overhead.py [--n 20000] [--url redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import redis.asyncio as redis_async

from runtime.cache.manager import CacheManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.redis_server import RedisServer

__all__ = ["main"]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(url: str, n: int) -> None:
    manager = CacheManager(url, 10, name="bench")
    raw = redis_async.Redis.from_url(url)
    # Same pool class as the manager, redis-py's default retry: isolates our retry hook.
    blocking = redis_async.Redis(
        connection_pool=redis_async.BlockingConnectionPool.from_url(
            url, max_connections=10, timeout=0.05
        )
    )
    try:
        get = manager.get_connection
        loops = 1_000_000
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter_ns()
            for _ in range(loops):
                get()
            best = min(best, (time.perf_counter_ns() - t0) / loops)
        t0 = time.perf_counter_ns()
        for _ in range(loops):
            pass
        empty = (time.perf_counter_ns() - t0) / loops
        print(f"get_connection(): {best:.1f} ns/call (empty loop {empty:.1f} ns)")

        via_manager: list[float] = []
        via_raw: list[float] = []
        via_blocking: list[float] = []
        client = manager.get_connection()
        for _ in range(500):  # warm the pools
            await client.ping()
            await raw.ping()
            await blocking.ping()
        for _ in range(n):
            t0 = time.perf_counter_ns()
            await manager.get_connection().ping()
            via_manager.append((time.perf_counter_ns() - t0) / 1000)
            t0 = time.perf_counter_ns()
            await raw.ping()
            via_raw.append((time.perf_counter_ns() - t0) / 1000)
            t0 = time.perf_counter_ns()
            await blocking.ping()
            via_blocking.append((time.perf_counter_ns() - t0) / 1000)
        print(f"PING n={n} (interleaved)      p50 us   p99 us   mean us")
        rows = (
            ("manager", via_manager),
            ("raw redis-py (default pool)", via_raw),
            ("raw + BlockingConnectionPool", via_blocking),
        )
        for label, samples in rows:
            print(
                f"  {label:<30}{_pct(samples, 0.5):8.1f} {_pct(samples, 0.99):8.1f}"
                f" {statistics.fmean(samples):9.1f}"
            )
        ratio = _pct(via_manager, 0.5) / _pct(via_raw, 0.5)
        print(f"  p50 ratio manager/raw: {ratio:.3f}")
    finally:
        await raw.aclose()
        await blocking.aclose()
        await blocking.connection_pool.aclose()
        await manager.close()


async def main_async(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--url", default=None, help="an existing Redis; default: a private one")
    args = parser.parse_args(argv)
    if args.url:
        await _run(args.url, args.n)
        return
    async with RedisServer() as server:
        await _run(server.url, args.n)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    asyncio.run(main_async(argv))


if __name__ == "__main__":
    main()
