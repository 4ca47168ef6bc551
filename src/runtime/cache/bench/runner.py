"""The ``bench`` run: the workload through the cache, then side by side without it.

Phases, in order, each with its own short warm-up that is not counted:

1. ``cache``: the standard workload through ``TradingCache`` (``tasks`` strategies);
   hit rate, fallbacks and breaker transitions are taken from this phase only;
2. ``no_cache``: the same workload, every read and write on the store directly;
3. ``raw``: the same workload, the snapshot issued as raw redis-py (one pipeline
   of the same five commands on the same Redis), the rest through the cache;
4. ``cache_32`` and ``raw_32``: phases 1 and 3 with ``throughput_tasks``
   strategies, for the snapshot throughput ratio (skipped if their duration is 0).

The result is a JSON-ready ``dict`` (see :mod:`.report` for its rendering).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runtime.cache.bench.backends import RawSnapshotBackend, RecordingSource, StoreBackend
from runtime.cache.bench.environment import (
    Environment,
    library_versions,
    machine_facts,
    remove_cache_keys,
)
from runtime.cache.bench.params import WorkloadParams
from runtime.cache.bench.report import phase_summary, ratio
from runtime.cache.bench.workload import FEED_WORKERS, PhaseResult, run_phase
from runtime.cache.circuit_breaker import BreakerTransition, CircuitBreaker
from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import Family, KeySchema
from runtime.cache.stats import CacheStatistics
from runtime.domain import Side

__all__ = [
    "BenchOptions",
    "TransitionLog",
    "cache_footprint",
    "feed_notes",
    "run_bench",
    "statistics_dict",
]

Progress = Callable[[str, float], None]


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """How the side-by-side phases run, and run facts to report."""

    side_duration: float = 10.0
    throughput_tasks: int = 32
    throughput_duration: float = 5.0
    loop: str = "asyncio"
    operation_timeout: float = 0.05
    breaker_wait: float = 30.0
    ttl: tuple[tuple[str, float], ...] = ()
    refresh_ahead: tuple[tuple[str, float], ...] = ()


class TransitionLog:
    """Breaker transitions, with their time relative to ``origin`` (perf_counter)."""

    def __init__(self) -> None:
        self.origin = time.perf_counter()
        self.items: list[dict[str, Any]] = []

    def __call__(self, transition: BreakerTransition) -> None:
        self.items.append(
            {
                "at_s": round(time.perf_counter() - self.origin, 4),
                "from": transition.from_state.value,
                "to": transition.to_state.value,
                "reason": transition.reason,
            }
        )


def statistics_dict(stats: CacheStatistics) -> dict[str, Any]:
    """Per-family and overall counts; ``hit_rate`` = (hits + negative hits) / reads."""
    families: dict[str, Any] = {}
    for family, fs in stats.families.items():
        families[family.value] = {
            "hits": fs.hits,
            "negative_hits": fs.negative_hits,
            "misses": fs.misses,
            "hit_rate": fs.hit_rate,
            "fallbacks": fs.fallbacks,
            "loads": fs.loads,
            "load_errors": fs.load_errors,
            "refreshes": fs.refreshes,
            "stale_sets_rejected": fs.stale_sets_rejected,
            "decode_failures": fs.decode_failures,
            "writes": fs.writes,
            "write_failures": fs.write_failures,
        }
    total = stats.total
    return {
        "overall": total.hit_rate,
        "hits": total.hits + total.negative_hits,
        "misses": total.misses,
        "fallbacks": total.fallbacks,
        "families": families,
    }


async def _used_memory(manager: CacheManager) -> int:
    info = await manager.get_connection().info("memory")
    return int(info["used_memory"])


async def cache_footprint(manager: CacheManager, env: Environment) -> dict[str, Any]:
    """``used_memory`` of the whole seeded universe cached (long TTLs, then removed)."""
    before = await _used_memory(manager)
    schema = KeySchema(ttl=dict.fromkeys(Family, 3600.0))
    universe = env.universe
    async with TradingCache(
        manager,
        RecordingSource(env.store),
        fallback=FallbackHandler(manager, schema=schema, operation_timeout=5.0),
    ) as filler:
        values: list[Any] = [universe.risk, *universe.strategies.values()]
        for symbol in universe.symbols:
            values += [
                universe.prices[symbol],
                universe.books[(symbol, Side.BID)],
                universe.books[(symbol, Side.ASK)],
                universe.positions[symbol],
            ]
        for start in range(0, len(values), 100):
            await filler.writes.cache_committed(values[start : start + 100])
    after = await _used_memory(manager)
    keys = await manager.get_connection().dbsize()
    await remove_cache_keys(env.redis_url)
    return {
        "used_memory_empty": before,
        "used_memory_universe": after,
        "universe_bytes": after - before,
        "universe_keys": keys,
    }


async def run_bench(
    env: Environment,
    params: WorkloadParams,
    options: BenchOptions,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Sequence[int]]]:
    """Run every phase on ``env``; return the report and the snapshot samples (ns)."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    universe = env.universe
    source = RecordingSource(env.store)
    transitions = TransitionLog()
    side_warmup = min(params.warmup, 1.0)
    phases: dict[str, PhaseResult] = {}
    async with CacheManager(env.redis_url) as manager:
        await manager.health_check()
        footprint = await cache_footprint(manager, env)
        server_version = manager.status().server_version
        breaker = CircuitBreaker(recovery_timeout=options.breaker_wait, listeners=[transitions])
        async with TradingCache(
            manager,
            source,
            breaker=breaker,
            schema=KeySchema(ttl=dict(options.ttl)),
            refresh_ahead=dict(options.refresh_ahead),
            operation_timeout=options.operation_timeout,
        ) as cache:
            marks: dict[str, Any] = {}

            def measure() -> None:
                cache.reset_statistics()
                marks["fallback"] = cache.fallback.statistics().fallbacks_by_reason
                marks["transitions"] = len(transitions.items)

            phases["cache"] = await run_phase(
                "cache",
                cache,
                universe,
                params,
                tasks=params.strategies,
                warmup=params.warmup,
                duration=params.duration,
                seed=params.seed,
                on_measure=measure,
                progress=progress,
            )
            stats = statistics_dict(cache.statistics())
            fallbacks = _delta(cache.fallback.statistics().fallbacks_by_reason, marks["fallback"])
            window_transitions = transitions.items[marks["transitions"] :]
            phases["no_cache"] = await run_phase(
                "no_cache",
                StoreBackend(source),
                universe,
                params,
                tasks=params.strategies,
                seed=params.seed + 1,
                progress=progress,
                warmup=side_warmup,
                duration=options.side_duration,
            )
            raw = RawSnapshotBackend(cache, manager.get_connection())
            phases["raw"] = await run_phase(
                "raw",
                raw,
                universe,
                params,
                tasks=params.strategies,
                seed=params.seed + 2,
                check_versions=False,
                progress=progress,
                warmup=side_warmup,
                duration=options.side_duration,
            )
            if options.throughput_duration > 0:
                tasks = options.throughput_tasks
                phases["cache_32"] = await run_phase(
                    "cache_32",
                    cache,
                    universe,
                    params,
                    tasks=tasks,
                    seed=params.seed + 3,
                    progress=progress,
                    warmup=side_warmup,
                    duration=options.throughput_duration,
                )
                phases["raw_32"] = await run_phase(
                    "raw_32",
                    raw,
                    universe,
                    params,
                    tasks=tasks,
                    seed=params.seed + 4,
                    check_versions=False,
                    progress=progress,
                    warmup=side_warmup,
                    duration=options.throughput_duration,
                )
            fallback_stats = cache.fallback.statistics()
    summaries = {name: phase_summary(result) for name, result in phases.items()}
    errors: dict[str, int] = {}
    raw_errors: dict[str, int] = {}
    for name, summary in summaries.items():
        for kind, count in summary["errors"].items():
            # A raw redis-py snapshot has no fallback: its failures are the baseline's, not ours.
            baseline = name.startswith("raw") and ".snapshot:" in kind
            target = raw_errors if baseline else errors
            target[f"{name}/{kind}"] = target.get(f"{name}/{kind}", 0) + count
    error_total = sum(errors.values())
    stale = sum(s["stale_reads"] for s in summaries.values())
    snap = {name: s["operations"].get("snapshot", {}) for name, s in summaries.items()}
    ratios = {
        "snapshot_p50_layer_over_raw": ratio(
            snap["cache"].get("p50_us"), snap["raw"].get("p50_us")
        ),
        "snapshot_p99_layer_over_raw": ratio(
            snap["cache"].get("p99_us"), snap["raw"].get("p99_us")
        ),
        "snapshot_p50_cache_over_no_cache": ratio(
            snap["cache"].get("p50_us"), snap["no_cache"].get("p50_us")
        ),
        "snapshot_p99_cache_over_no_cache": ratio(
            snap["cache"].get("p99_us"), snap["no_cache"].get("p99_us")
        ),
        "snapshot_throughput_cache_over_no_cache": ratio(
            snap["cache"].get("ops_per_s"), snap["no_cache"].get("ops_per_s")
        ),
        "snapshot_throughput_layer_over_raw": ratio(
            snap["cache"].get("ops_per_s"), snap["raw"].get("ops_per_s")
        ),
        "snapshot_throughput_32_layer_over_raw": ratio(
            snap.get("cache_32", {}).get("ops_per_s"), snap.get("raw_32", {}).get("ops_per_s")
        ),
    }
    hit_rate = stats["overall"]
    p99_ms = (snap["cache"].get("p99_us") or 0.0) / 1000
    criteria = [
        _criterion("overall hit rate > 90 %", hit_rate, hit_rate is not None and hit_rate > 0.90),
        _criterion("snapshot p99 < 100 ms", p99_ms, bool(snap["cache"]) and p99_ms < 100.0),
        _criterion("0 errors raised to callers", error_total, error_total == 0),
    ]
    throughput_32 = ratios["snapshot_throughput_32_layer_over_raw"]
    targets = [
        _criterion("hit rate >= 99 %", hit_rate, hit_rate is not None and hit_rate >= 0.99),
        _criterion("snapshot p99 <= 1 ms", p99_ms, bool(snap["cache"]) and p99_ms <= 1.0),
        _criterion("0 errors", error_total, error_total == 0),
        _criterion(
            f"snapshot throughput at {options.throughput_tasks} tasks >= 0.8x raw",
            throughput_32,
            throughput_32 is not None and throughput_32 >= 0.8,
        ),
        _criterion("0 stale reads", stale, stale == 0),
    ]
    samples: dict[str, Sequence[int]] = {
        n: r.recorder.latencies.get("snapshot", array("q")) for n, r in phases.items()
    }
    return {
        "command": "bench",
        "started_at": started_at,
        "passed": all(c["passed"] for c in criteria),
        "criteria": criteria,
        "targets": targets,
        "parameters": params.as_dict(),
        "run": {
            "redis": env.redis_description,
            "store": env.store_description,
            "event_loop": options.loop,
            "operation_timeout_ms": options.operation_timeout * 1000,
            "breaker_wait_s": options.breaker_wait,
            "ttl_ms": {f.value: KeySchema(ttl=dict(options.ttl)).ttl_ms(f) for f in Family},
            "refresh_ahead": dict(options.refresh_ahead),
            "feed_workers": FEED_WORKERS,
            "side_phase_warmup_s": side_warmup,
            "side_phase_duration_s": options.side_duration,
            "throughput_tasks": options.throughput_tasks,
            "throughput_phase_duration_s": options.throughput_duration,
            "embedded_redis_pids": list(env.embedded.pids) if env.embedded else [],
            "embedded_directory": str(env.embedded.directory) if env.embedded else None,
        },
        "versions": library_versions(),
        "server": {"redis_version": server_version, **footprint},
        "machine": machine_facts(),
        "hit_rate": stats,
        "fallbacks": {"total": sum(fallbacks.values()), "by_reason": fallbacks},
        "fallback_handler": {
            "recoveries": fallback_stats.recoveries,
            "pending_invalidations": fallback_stats.pending_invalidations,
            "invalidations_flushed": fallback_stats.invalidations_flushed,
        },
        "breaker": {
            "transitions": window_transitions,
            "count": len(window_transitions),
            "transitions_all_phases": transitions.items,
        },
        "errors": {
            "total": error_total,
            "by_kind": errors,
            "raw_baseline_snapshot_errors": raw_errors,
        },
        "stale_reads": stale,
        "phases": summaries,
        "ratios": ratios,
        "notes": [
            f"hit rate, fallbacks and breaker transitions are from the 'cache' phase "
            f"({params.duration:g} s measured after {params.warmup:g} s warm-up)",
            f"side phases (no_cache, raw) ran {options.side_duration:g} s each and the "
            f"{options.throughput_tasks}-task phases {options.throughput_duration:g} s each, "
            f"after {side_warmup:g} s warm-up each, to keep the run time sane",
            "raw snapshots are undecoded replies; the layer decodes to typed entities",
            *feed_notes(summaries, params.feed_rate),
        ],
    }, samples


def feed_notes(summaries: dict[str, Any], target: float) -> list[str]:
    """A note for each phase whose feed fell short of ``target`` updates/s by > 10 %."""
    notes = []
    for name, summary in summaries.items():
        achieved = summary["feed_updates_per_s"]
        if target > 0 and achieved is not None and achieved < 0.9 * target:
            notes.append(
                f"phase {name}: the feed reached {achieved:g} of {target:g} updates/s "
                "(store writes are the bottleneck; see update_market latency)"
            )
    return notes


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _criterion(name: str, value: object, passed: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "passed": passed}
