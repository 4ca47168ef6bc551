"""``runtime-cache``: benchmark, break, inspect and check the cache from the command line.

Subcommands: ``bench`` (the standard workload, ``shared/workload.md``), ``chaos``
(the workload while a private Redis is killed, frozen and restarted), ``inspect``
(key families, TTL spread and memory of a Redis) and ``health`` (the manager's
status). Exit codes: 0 criteria pass / healthy, 1 criteria fail / unhealthy,
2 usage or configuration error (one line on stderr naming the problem),
130/143 interrupted by SIGINT/SIGTERM (everything started is stopped first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import signal
import statistics
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

import redis

from runtime.cache.bench.chaos import run_chaos
from runtime.cache.bench.embedded import SetupError
from runtime.cache.bench.environment import open_environment
from runtime.cache.bench.params import ChaosSchedule, WorkloadParams
from runtime.cache.bench.report import (
    PlotUnavailableError,
    format_value,
    print_report,
    write_json,
    write_plot,
)
from runtime.cache.bench.runner import BenchOptions, run_bench
from runtime.cache.exceptions import CacheError
from runtime.cache.manager import CacheManager
from runtime.cache.models import Family, KeySchema
from runtime.data import StoreError

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_DEFAULTS = WorkloadParams()


def _add_workload_flags(parser: argparse.ArgumentParser, *, warmup: float, duration: float) -> None:
    g = parser.add_argument_group("workload (shared/workload.md)")
    d = _DEFAULTS
    g.add_argument("--symbols", type=int, default=d.symbols, help="universe size (%(default)s)")
    g.add_argument(
        "--levels", type=int, default=d.levels, help="seeded levels per book side (%(default)s)"
    )
    g.add_argument(
        "--zipf-exponent",
        type=float,
        default=d.zipf_exponent,
        help="symbol popularity exponent (%(default)s)",
    )
    g.add_argument(
        "--feed-rate",
        type=float,
        default=d.feed_rate,
        help="market-data updates per second in total (%(default)s)",
    )
    g.add_argument(
        "--strategies", type=int, default=d.strategies, help="strategy tasks (%(default)s)"
    )
    g.add_argument(
        "--order-probability",
        type=float,
        default=d.order_probability,
        help="per loop (%(default)s)",
    )
    g.add_argument(
        "--fill-probability", type=float, default=d.fill_probability, help="per loop (%(default)s)"
    )
    g.add_argument(
        "--strat-read-every",
        type=int,
        default=d.strategy_read_every,
        help="loops between strategy-config reads (%(default)s)",
    )
    g.add_argument(
        "--order-read-every",
        type=int,
        default=d.order_read_every,
        help="loops between open-order reads (%(default)s)",
    )
    g.add_argument("--depth", type=int, default=d.depth, help="snapshot book depth (%(default)s)")
    g.add_argument("--warmup", type=float, default=warmup, help="seconds not counted (%(default)s)")
    g.add_argument(
        "--duration", type=float, default=duration, help="measured seconds (%(default)s)"
    )
    g.add_argument(
        "--seed", type=int, default=d.seed, help="RNG seed of data and actors (%(default)s)"
    )
    r = parser.add_argument_group("run")
    r.add_argument(
        "--store-url",
        help="source of truth: postgresql://... (a temporary schema is created and "
        "dropped) or sqlite:///path (refused if it holds data, unless --reuse-store); "
        "default: SQLite in a temporary directory",
    )
    r.add_argument(
        "--reuse-store",
        action="store_true",
        help="allow seeding a store that already holds data (rows are overwritten)",
    )
    r.add_argument(
        "--operation-timeout",
        type=float,
        default=0.05,
        help="deadline of one Redis operation, seconds (%(default)s)",
    )
    r.add_argument(
        "--ttl",
        action="append",
        type=_ttl,
        default=[],
        metavar="FAMILY=SECONDS",
        help="override a family's TTL (price, pos, book, risk, ord, strat); repeatable",
    )
    r.add_argument(
        "--refresh-ahead",
        action="append",
        type=_fraction,
        default=None,
        metavar="FAMILY=FRACTION",
        help=(
            "reload a family in the background when read in the last FRACTION of its TTL; "
            "repeatable (default: price=0.5 and book=0.5; 'none' turns it off)"
        ),
    )
    r.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    r.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus metrics on 127.0.0.1:N during the run",
    )
    r.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default=None,
        help="event loop (default: uvloop when installed)",
    )
    r.add_argument(
        "--quiet", action="store_true", help="no progress; print only the criteria and the result"
    )


def _ttl(text: str) -> tuple[str, float]:
    family, sep, seconds = text.partition("=")
    try:
        value = float(seconds)
        Family(family)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FAMILY=SECONDS with FAMILY one of "
            f"{', '.join(f.value for f in Family)}"
        ) from None
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FAMILY=SECONDS")
    try:
        KeySchema(ttl={family: value})
    except CacheError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return family, value


DEFAULT_REFRESH_AHEAD: tuple[tuple[str, float], ...] = (("price", 0.5), ("book", 0.5))


def _fraction(text: str) -> tuple[str, float]:
    if text == "none":
        return ("none", 0.0)
    family, sep, fraction = text.partition("=")
    try:
        value = float(fraction)
        Family(family)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FAMILY=FRACTION with FAMILY one of "
            f"{', '.join(f.value for f in Family)}"
        ) from None
    if not sep or not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FAMILY=FRACTION, 0 < FRACTION < 1")
    return family, value


def _refresh_ahead(values: list[tuple[str, float]] | None) -> tuple[tuple[str, float], ...]:
    if values is None:
        return DEFAULT_REFRESH_AHEAD
    return tuple(item for item in values if item[0] != "none")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runtime-cache", description="Benchmark, break, inspect and check the runtime cache."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = sub.add_parser(
        "bench",
        help="run the standard workload and report hit rate, latency, PASS/FAIL",
        description="Run the standard scalp workload through the cache, then side by side "
        "with no cache and with raw redis-py snapshots; exit 0 if the criteria pass "
        "(hit rate > 90 %, snapshot p99 < 100 ms, 0 errors), 1 if not, 2 on bad setup.",
    )
    _add_workload_flags(bench, warmup=_DEFAULTS.warmup, duration=_DEFAULTS.duration)
    bench.add_argument(
        "--redis-url",
        help="an EMPTY Redis database to use (default: a private redis-server on a unix socket)",
    )
    bench.add_argument(
        "--side-duration",
        type=float,
        default=10.0,
        help="measured seconds of the no-cache and raw phases (%(default)s)",
    )
    bench.add_argument(
        "--throughput-tasks",
        type=int,
        default=32,
        help="strategy tasks of the throughput phases (%(default)s)",
    )
    bench.add_argument(
        "--throughput-duration",
        type=float,
        default=5.0,
        help="measured seconds of each throughput phase; 0 skips them (%(default)s)",
    )
    bench.add_argument(
        "--breaker-wait",
        type=float,
        default=30.0,
        help="breaker recovery timeout, seconds (%(default)s)",
    )
    bench.add_argument(
        "--plot",
        metavar="PATH",
        help="PNG of the snapshot latency distributions (needs the plot extra: matplotlib)",
    )

    chaos = sub.add_parser(
        "chaos",
        help="run the workload while a private Redis is killed, paused and restarted",
        description="Run the workload through the cache while the private redis-server this "
        "command starts is SIGKILLed, restarted empty, SIGSTOPped and SIGCONTed (times in "
        "seconds from the start of the measured window). Exit 0 if no error reached a "
        "caller, no read was stale and the cache served again after each outage.",
    )
    _add_workload_flags(chaos, warmup=2.0, duration=20.0)
    s = ChaosSchedule()
    chaos.add_argument(
        "--kill-at", type=float, default=s.kill_at, help="SIGKILL Redis (%(default)s)"
    )
    chaos.add_argument(
        "--restart-at", type=float, default=s.restart_at, help="start an empty Redis (%(default)s)"
    )
    chaos.add_argument(
        "--pause-at", type=float, default=s.pause_at, help="SIGSTOP Redis (%(default)s)"
    )
    chaos.add_argument(
        "--resume-at", type=float, default=s.resume_at, help="SIGCONT Redis (%(default)s)"
    )
    chaos.add_argument(
        "--breaker-wait",
        type=float,
        default=s.breaker_wait,
        help="breaker recovery timeout, seconds (%(default)s; the library default is 30)",
    )
    chaos.add_argument("--redis-url", help=argparse.SUPPRESS)

    inspect = sub.add_parser(
        "inspect",
        help="key families, TTL spread and memory of a Redis (SCAN, never KEYS)",
        description="Count the keys of every cache family with SCAN, and for a sample of "
        "each: PTTL spread (min/median/max) and MEMORY USAGE.",
    )
    inspect.add_argument("--redis-url", required=True)
    inspect.add_argument(
        "--sample",
        type=int,
        default=200,
        help="keys per family sampled for TTL and memory (%(default)s)",
    )
    inspect.add_argument("--json", metavar="PATH", help="write the result as JSON")

    health = sub.add_parser(
        "health",
        help="the cache manager's status; exit 1 if Redis is unhealthy",
        description="Ping Redis through a CacheManager and print its status(); exit 0 "
        "if healthy, 1 if not.",
    )
    health.add_argument("--redis-url", required=True)
    health.add_argument("--json", action="store_true", help="print the status as JSON")
    return parser


def _params(args: argparse.Namespace) -> WorkloadParams:
    return WorkloadParams(
        symbols=args.symbols,
        levels=args.levels,
        zipf_exponent=args.zipf_exponent,
        feed_rate=args.feed_rate,
        strategies=args.strategies,
        order_probability=args.order_probability,
        fill_probability=args.fill_probability,
        strategy_read_every=args.strat_read_every,
        order_read_every=args.order_read_every,
        depth=args.depth,
        warmup=args.warmup,
        duration=args.duration,
        seed=args.seed,
    ).check()


def _loop_name(requested: str | None) -> str:
    available = importlib.util.find_spec("uvloop") is not None
    if requested == "uvloop" and not available:
        raise SetupError(
            "--loop uvloop: uvloop is not installed (pip install 'runtime-cache[fast]')"
        )
    return requested or ("uvloop" if available else "asyncio")


class _Progress:
    """A rich progress bar on a terminal, one stderr line per phase otherwise, or nothing."""

    def __init__(self, mode: str) -> None:
        self._mode = mode
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._last = ""

    @contextlib.contextmanager
    def running(self) -> Iterator[Callable[[str, float], None] | None]:
        if self._mode == "none":
            yield None
            return
        if self._mode == "rich":
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(
                TextColumn("{task.description:24}"),
                BarColumn(),
                TimeRemainingColumn(),
                transient=True,
                console=None,
            ) as bar:
                self._bar = bar
                yield self.update
            return
        yield self.update

    def update(self, label: str, fraction: float) -> None:
        if self._bar is not None:
            if label not in self._tasks:
                self._tasks[label] = self._bar.add_task(label, total=1.0)
            self._bar.update(self._tasks[label], completed=fraction)
        elif label != self._last:
            self._last = label
            print(f"runtime-cache: running {label} ...", file=sys.stderr, flush=True)


def _progress_mode(args: argparse.Namespace, rich_ok: bool) -> str:
    if args.quiet:
        return "none"
    return "rich" if rich_ok and sys.stderr.isatty() else "plain"


def _plot_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _rich_available() -> bool:
    return importlib.util.find_spec("rich") is not None


def _finish(report: dict[str, Any], args: argparse.Namespace, rich_ok: bool) -> int:
    if args.json:
        write_json(report, args.json)
    if args.quiet:
        for c in report["criteria"]:
            mark = "PASS" if c["passed"] else "FAIL"
            print(f"{mark}  {c['name']}  (value: {format_value(c['value'])})")
        print(f"RESULT: {'PASS' if report['passed'] else 'FAIL'}")
    else:
        print_report(report, sys.stdout, rich_ok=rich_ok)
    return EXIT_OK if report["passed"] else EXIT_FAILED


@contextlib.contextmanager
def _metrics_server(port: int | None) -> Iterator[None]:
    if port is None:
        yield
        return
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr="127.0.0.1")
    except OSError as exc:
        raise SetupError(
            f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}: {exc}"
        ) from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def _bench(args: argparse.Namespace, loop: str) -> int:
    params = _params(args)
    if args.plot and not _plot_available():
        raise PlotUnavailableError("--plot needs matplotlib: pip install 'runtime-cache[plot]'")
    for name in ("side_duration", "throughput_duration", "breaker_wait", "operation_timeout"):
        if getattr(args, name) < 0 or (name != "throughput_duration" and getattr(args, name) == 0):
            raise ValueError(f"--{name.replace('_', '-')} must be > 0")
    if args.throughput_tasks < 1:
        raise ValueError("--throughput-tasks must be >= 1")
    options = BenchOptions(
        side_duration=args.side_duration,
        throughput_tasks=args.throughput_tasks,
        throughput_duration=args.throughput_duration,
        loop=loop,
        operation_timeout=args.operation_timeout,
        breaker_wait=args.breaker_wait,
        ttl=tuple(args.ttl),
        refresh_ahead=_refresh_ahead(args.refresh_ahead),
    )
    rich_ok = _rich_available() and sys.stdout.isatty()
    with _metrics_server(args.metrics_port):
        async with open_environment(
            redis_url=args.redis_url,
            store_url=args.store_url,
            reuse_store=args.reuse_store,
            symbols=params.symbols,
            levels=params.levels,
            strategies=params.strategies,
            seed=params.seed,
        ) as env:
            with _Progress(_progress_mode(args, rich_ok)).running() as progress:
                report, samples = await run_bench(env, params, options, progress)
    if args.plot:
        write_plot(report, samples, args.plot)
    return _finish(report, args, rich_ok)


async def _chaos(args: argparse.Namespace, loop: str) -> int:
    if args.redis_url:
        raise SetupError(
            "chaos kills, freezes and restarts Redis: it runs only against a redis-server it "
            "starts itself and refuses --redis-url"
        )
    params = _params(args)
    schedule = ChaosSchedule(
        kill_at=args.kill_at,
        restart_at=args.restart_at,
        pause_at=args.pause_at,
        resume_at=args.resume_at,
        breaker_wait=args.breaker_wait,
    ).check(params.duration)
    rich_ok = _rich_available() and sys.stdout.isatty()
    with _metrics_server(args.metrics_port):
        async with open_environment(
            redis_url=None,
            store_url=args.store_url,
            reuse_store=args.reuse_store,
            symbols=params.symbols,
            levels=params.levels,
            strategies=params.strategies,
            seed=params.seed,
        ) as env:
            with _Progress(_progress_mode(args, rich_ok)).running() as progress:
                report = await run_chaos(
                    env,
                    params,
                    schedule,
                    loop=loop,
                    operation_timeout=args.operation_timeout,
                    ttl=tuple(args.ttl),
                    refresh_ahead=_refresh_ahead(args.refresh_ahead),
                    progress=progress,
                )
    return _finish(report, args, rich_ok)


def _median(values: Sequence[int]) -> float | None:
    return statistics.median(values) if values else None


async def _inspect(args: argparse.Namespace) -> int:
    if args.sample < 1:
        raise ValueError("--sample must be >= 1")
    manager = CacheManager(
        args.redis_url, socket_timeout=3.0, connect_timeout=1.0, pool_timeout=1.0, retries=0
    )
    try:
        if not await manager.health_check():
            raise SetupError(
                f"Redis at {manager.url} does not answer: {manager.status().last_error}"
            )
        client = manager.get_connection()
        prefixes = {family.value: family.value for family in Family}
        counts: dict[str, int] = {}
        samples: dict[str, list[bytes]] = {}
        async for key in client.scan_iter(count=1000):
            if key.startswith(b"~v:"):
                group = "fence (~v:)"
            else:
                group = prefixes.get(key.split(b":", 1)[0].decode(errors="replace"), "other")
            counts[group] = counts.get(group, 0) + 1
            bucket = samples.setdefault(group, [])
            if len(bucket) < args.sample:
                bucket.append(key)
        result: dict[str, Any] = {"redis": manager.url, "families": {}}
        order = [f.value for f in Family] + ["fence (~v:)", "other"]
        for group in order:
            keys = samples.get(group, [])
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.pttl(key)
                pipe.memory_usage(key, samples=0)
            replies = await pipe.execute() if keys else []
            ttls = [int(t) for t in replies[0::2] if isinstance(t, int) and t >= 0]
            no_ttl = sum(1 for t in replies[0::2] if t == -1)
            memory = [int(m) for m in replies[1::2] if isinstance(m, int)]
            mean = statistics.fmean(memory) if memory else None
            result["families"][group] = {
                "keys": counts.get(group, 0),
                "sampled": len(keys),
                "pttl_min_ms": min(ttls) if ttls else None,
                "pttl_median_ms": _median(ttls),
                "pttl_max_ms": max(ttls) if ttls else None,
                "sampled_without_ttl": no_ttl,
                "memory_mean_bytes": None if mean is None else round(mean, 1),
                "memory_estimated_bytes": None
                if mean is None
                else round(mean * counts.get(group, 0)),
            }
    finally:
        await manager.close()
    if args.json:
        write_json(result, args.json)
    headers = (
        "family",
        "keys",
        "pttl min ms",
        "median",
        "max",
        "no ttl",
        "mem/key B",
        "est. total B",
    )
    print(f"Redis {result['redis']} (SCAN; TTL and memory on up to {args.sample} keys per family)")
    print("  ".join(f"{h:>12}" for h in headers))
    for group, f in result["families"].items():
        cells = (
            group,
            f["keys"],
            f["pttl_min_ms"],
            f["pttl_median_ms"],
            f["pttl_max_ms"],
            f["sampled_without_ttl"],
            f["memory_mean_bytes"],
            f["memory_estimated_bytes"],
        )
        print("  ".join(f"{'-' if c is None else c!s:>12}" for c in cells))
    return EXIT_OK


async def _health(args: argparse.Namespace) -> int:
    async with CacheManager(args.redis_url) as manager:
        healthy = await manager.health_check()
        status = manager.status()
    fields = {
        "name": status.name,
        "url": status.url,
        "healthy": status.healthy,
        "last_ping_latency_ms": None
        if status.last_ping_latency is None
        else round(status.last_ping_latency * 1000, 3),
        "consecutive_failures": status.consecutive_failures,
        "last_error": status.last_error,
        "since": status.since.isoformat(),
        "pool_size": status.pool_size,
        "connections_in_use": status.connections_in_use,
        "connections_idle": status.connections_idle,
        "server_version": status.server_version,
        "role": status.role,
    }
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        for key, value in fields.items():
            print(f"{key:22} {value}")
    return EXIT_OK if healthy else EXIT_FAILED


async def _with_sigterm(coro: Coroutine[Any, Any, int]) -> int:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    installed = False
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            installed = True
    try:
        return await coro
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


def _run(coro: Coroutine[Any, Any, int], loop: str) -> int:
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_with_sigterm(coro))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``runtime-cache`` and ``python -m runtime.cache``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # The command line is an application: it routes the library's log lines to stderr.
    logging.basicConfig(
        level=logging.ERROR if getattr(args, "quiet", False) else logging.WARNING,
        format="runtime-cache: %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command in ("bench", "chaos"):
            loop = _loop_name(args.loop)
            handler = _bench if args.command == "bench" else _chaos
            return _run(handler(args, loop), loop)
        if args.command == "inspect":
            return _run(_inspect(args), "asyncio")
        return _run(_health(args), "asyncio")
    except KeyboardInterrupt:
        print("runtime-cache: interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except asyncio.CancelledError:
        print("runtime-cache: terminated; everything started was stopped", file=sys.stderr)
        return 143
    except (
        SetupError,
        CacheError,
        StoreError,
        PlotUnavailableError,
        redis.RedisError,
        OSError,
        ValueError,
    ) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"runtime-cache: error: {message}", file=sys.stderr)
        return EXIT_USAGE
