"""Read latency while Redis is killed (-9) or frozen (SIGSTOP), and time to recover.

Starts a private redis-server on a free loopback port, a seeded SQLite store in a
temporary directory, and ``--readers`` tasks taking snapshots through
``TradingCache``. Phases: steady, kill -9 (then restart on the same port),
steady, SIGSTOP (then SIGCONT). Prints read p50/p99/max per phase and the time
from Redis' return to the first cache hit.

    python benchmarks/fault_latency.py [--wait 2.0] [--deadline 0.05] [--phase 3.0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import redis.asyncio as redis_async
from redis.exceptions import ConnectionError as RedisConnectionError

from runtime.cache.circuit_breaker import BreakerState, CircuitBreaker
from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.data import open_store, seed_workload

__all__ = ["main"]


class Server:
    """A throwaway redis-server: no persistence, loopback, same port across restarts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a plain child, reaped below
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                "redis.log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis_async.Redis(port=self.port)
        try:
            for _ in range(1000):
                try:
                    if await client.ping():
                        return
                except (OSError, RedisConnectionError):
                    await asyncio.sleep(0.005)
        finally:
            await client.aclose()
        raise RuntimeError("redis-server did not start")

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()


class Readers:
    def __init__(self, cache: TradingCache, symbols: list[str], count: int) -> None:
        self.cache = cache
        self.symbols = symbols
        self.samples: list[tuple[float, float]] = []  # (finished at, latency)
        self.errors = 0
        self.stop = False
        self.tasks = [asyncio.create_task(self.run(i)) for i in range(count)]

    async def run(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop:
            symbol = rng.choice(self.symbols)
            started = time.perf_counter()
            try:
                await self.cache.snapshot(symbol, depth=5)
            except Exception:
                self.errors += 1
            now = time.perf_counter()
            self.samples.append((now, now - started))
            await asyncio.sleep(0)

    def between(self, start: float, end: float) -> list[float]:
        return [lat for at, lat in self.samples if start <= at < end]


def row(name: str, latencies: list[float]) -> str:
    if not latencies:
        return f"{name:<22} {'-':>8}"
    ordered = sorted(latencies)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return (
        f"{name:<22} {len(ordered):>8} {statistics.median(ordered) * 1000:>9.3f}"
        f" {p99 * 1000:>9.3f} {ordered[-1] * 1000:>9.3f}"
    )


async def first_hit_after(cache: TradingCache, since: float) -> float:
    hits = cache.statistics().total.hits
    async with asyncio.timeout(60):
        while cache.statistics().total.hits == hits:  # noqa: ASYNC110 - polling a counter
            await asyncio.sleep(0.0005)
    return time.perf_counter() - since


async def run(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="fault-bench-"))
    server = Server(directory)
    await server.start()
    store = await open_store(f"sqlite:///{directory / 'store.db'}", migrate=True)
    try:
        universe = await seed_workload(store, symbols=args.symbols, levels=20)
        symbols = list(universe.symbols)
        async with CacheManager(f"redis://127.0.0.1:{server.port}/0") as manager:
            breaker = CircuitBreaker(recovery_timeout=args.wait)
            handler = FallbackHandler(
                manager, breaker=breaker, operation_timeout=args.deadline, recovery_interval=0.01
            )
            async with handler, TradingCache(manager, store, fallback=handler) as cache:
                readers = Readers(cache, symbols, args.readers)
                t0 = time.perf_counter()
                await asyncio.sleep(args.phase)
                t1 = time.perf_counter()
                server.kill()
                await asyncio.sleep(args.phase)
                await server.start()
                t2 = time.perf_counter()
                kill_recovery = await first_hit_after(cache, t2)
                while breaker.state is not BreakerState.CLOSED:  # noqa: ASYNC110 - polling a state
                    await asyncio.sleep(0.001)
                await asyncio.sleep(args.phase)
                t3 = time.perf_counter()
                server.signal(signal.SIGSTOP)
                await asyncio.sleep(args.phase)
                server.signal(signal.SIGCONT)
                t4 = time.perf_counter()
                stop_recovery = await first_hit_after(cache, t4)
                await asyncio.sleep(1.0)
                readers.stop = True
                await asyncio.gather(*readers.tasks)
                t5 = time.perf_counter()
    finally:
        await store.close()
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)

    print(
        f"readers={args.readers} deadline={args.deadline * 1000:.0f}ms "
        f"breaker wait={args.wait}s phase={args.phase}s symbols={args.symbols}"
    )
    print(f"{'phase':<22} {'reads':>8} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    print(row("steady (Redis up)", readers.between(t0, t1)))
    print(row("kill -9 (Redis down)", readers.between(t1, t2)))
    print(row("after restart", readers.between(t2, t3)))
    print(row("SIGSTOP (frozen)", readers.between(t3, t4)))
    print(row("after SIGCONT", readers.between(t4, t5)))
    print(f"restart -> first cache hit: {kill_recovery * 1000:.1f} ms")
    print(f"SIGCONT -> first cache hit: {stop_recovery * 1000:.1f} ms")
    print(f"reader errors: {readers.errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--deadline", type=float, default=0.05, help="operation deadline, s")
    parser.add_argument("--wait", type=float, default=2.0, help="breaker recovery_timeout, s")
    parser.add_argument("--phase", type=float, default=3.0, help="seconds per phase")
    parser.add_argument("--symbols", type=int, default=50)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
