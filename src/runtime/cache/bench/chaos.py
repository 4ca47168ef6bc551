"""The ``chaos`` run: the standard workload while the private Redis is broken on a schedule.

Only against an :class:`~.embedded.EmbeddedRedis` this process started. From the
start of the measured window: SIGKILL at ``kill_at``, a new empty server at
``restart_at``, SIGSTOP at ``pause_at``, SIGCONT at ``resume_at``. Reported:
errors raised to callers, stale reads (versions, see :mod:`.backends`), read
latency inside each outage window, and the time from Redis' return to the first
cache hit after it (the cache serving again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from runtime.cache.bench.backends import RecordingSource
from runtime.cache.bench.embedded import EmbeddedRedis, SetupError
from runtime.cache.bench.environment import Environment, library_versions, machine_facts
from runtime.cache.bench.params import ChaosSchedule, WorkloadParams
from runtime.cache.bench.report import percentiles, phase_summary
from runtime.cache.bench.runner import TransitionLog, feed_notes, statistics_dict
from runtime.cache.bench.workload import FEED_WORKERS, Recorder, run_phase
from runtime.cache.circuit_breaker import CircuitBreaker
from runtime.cache.facade import TradingCache
from runtime.cache.manager import CacheManager
from runtime.cache.models import Family, KeySchema

__all__ = ["run_chaos"]

_READS = ("snapshot", "order", "strategy")


class _ServingWatch:
    """After each Redis return: when did the cache next serve a hit?"""

    def __init__(self, cache: TradingCache) -> None:
        self._cache = cache
        self._pending: dict[str, tuple[int, int]] = {}
        self.served_after_s: dict[str, float] = {}

    def returned(self, window: str) -> None:
        self._pending[window] = (time.perf_counter_ns(), self._cache.statistics().total.hits)

    def check(self) -> None:
        if not self._pending:
            return
        hits = self._cache.statistics().total.hits
        now = time.perf_counter_ns()
        for window, (returned_ns, baseline) in list(self._pending.items()):
            if hits > baseline:
                self.served_after_s[window] = round((now - returned_ns) / 1e9, 4)
                del self._pending[window]


async def _schedule(
    server: EmbeddedRedis,
    schedule: ChaosSchedule,
    origin_ns: int,
    events: list[dict[str, Any]],
    watch: _ServingWatch,
) -> None:
    def at() -> float:
        return (time.perf_counter_ns() - origin_ns) / 1e9

    async def until(seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds - at()))

    await until(schedule.kill_at)
    events.append({"at_s": round(at(), 4), "event": "SIGKILL (redis down)"})
    server.kill()
    await until(schedule.restart_at)
    events.append({"at_s": round(at(), 4), "event": "restart empty: starting"})
    await server.restart()
    events.append(
        {"at_s": round(at(), 4), "event": f"restart empty: answering (pid {server.pids[-1]})"}
    )
    watch.returned("kill")
    await until(schedule.pause_at)
    events.append({"at_s": round(at(), 4), "event": "SIGSTOP (redis frozen)"})
    server.pause()
    await until(schedule.resume_at)
    server.resume()
    events.append({"at_s": round(at(), 4), "event": "SIGCONT (redis answering)"})
    watch.returned("pause")


def _window_latency(
    recorder: Recorder, operations: tuple[str, ...], start_s: float, end_s: float
) -> dict[str, Any]:
    low, high = int(start_s * 1e9), int(end_s * 1e9)
    samples: list[int] = []
    for operation in operations:
        starts: Sequence[int] = recorder.starts.get(operation, ())
        latencies: Sequence[int] = recorder.latencies.get(operation, ())
        samples += [lat for st, lat in zip(starts, latencies, strict=True) if low <= st < high]
    return {"count": len(samples), **percentiles(samples)}


async def run_chaos(
    env: Environment,
    params: WorkloadParams,
    schedule: ChaosSchedule,
    *,
    loop: str,
    operation_timeout: float,
    ttl: tuple[tuple[str, float], ...] = (),
    refresh_ahead: tuple[tuple[str, float], ...] = (),
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Run the workload through the cache while breaking Redis; return the report dict."""
    server = env.embedded
    if server is None:
        raise SetupError("chaos runs only against a redis-server it started itself")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    transitions = TransitionLog()
    events: list[dict[str, Any]] = []
    origin = {"ns": 0}
    scheduler: list[asyncio.Task[None]] = []
    async with CacheManager(env.redis_url) as manager:
        await manager.health_check()
        server_version = manager.status().server_version
        breaker = CircuitBreaker(recovery_timeout=schedule.breaker_wait, listeners=[transitions])
        async with TradingCache(
            manager,
            RecordingSource(env.store),
            breaker=breaker,
            schema=KeySchema(ttl=dict(ttl)),
            refresh_ahead=dict(refresh_ahead),
            operation_timeout=operation_timeout,
        ) as cache:
            watch = _ServingWatch(cache)
            marks: dict[str, Any] = {}

            def measure() -> None:
                cache.reset_statistics()
                origin["ns"] = time.perf_counter_ns()
                transitions.origin = origin["ns"] / 1e9
                marks["fallback"] = cache.fallback.statistics().fallbacks_by_reason
                marks["transitions"] = len(transitions.items)
                scheduler.append(
                    asyncio.create_task(_schedule(server, schedule, origin["ns"], events, watch))
                )

            try:
                result = await run_phase(
                    "chaos",
                    cache,
                    env.universe,
                    params,
                    tasks=params.strategies,
                    warmup=params.warmup,
                    duration=params.duration,
                    seed=params.seed,
                    on_measure=measure,
                    after_read=watch.check,
                    progress=progress,
                )
            finally:
                for task in scheduler:
                    if not task.done():
                        task.cancel()
                await asyncio.gather(*scheduler, return_exceptions=True)
            for task in scheduler:
                if not task.cancelled() and task.exception() is not None:
                    raise SetupError(f"chaos schedule failed: {task.exception()}")
            stats = statistics_dict(cache.statistics())
            fallback_after = cache.fallback.statistics().fallbacks_by_reason
    fallbacks = {
        k: v - marks["fallback"].get(k, 0)
        for k, v in fallback_after.items()
        if v - marks["fallback"].get(k, 0)
    }
    summary = phase_summary(result)
    recorder = result.recorder
    offset = (origin["ns"] - recorder.started_ns) / 1e9  # scheduler origin vs recorder origin
    windows = []
    bounds = {
        "kill": (events[0]["at_s"], events[2]["at_s"]) if len(events) >= 3 else None,
        "pause": (events[3]["at_s"], events[4]["at_s"]) if len(events) >= 5 else None,
    }
    for kind, span in bounds.items():
        if span is None:
            continue
        start, end = span[0] + offset, span[1] + offset
        windows.append(
            {
                "kind": kind,
                "start_s": round(span[0], 4),
                "end_s": round(span[1], 4),
                "snapshot": _window_latency(recorder, ("snapshot",), start, end),
                "reads": _window_latency(recorder, _READS, start, end),
                "time_to_serving_s": watch.served_after_s.get(kind),
            }
        )
    errors = summary["errors"]
    error_total = sum(errors.values())
    stale = summary["stale_reads"]
    worst_p99 = max((w["reads"].get("p99_us", 0.0) for w in windows), default=0.0) / 1000
    criteria = [
        {"name": "0 errors raised to callers", "value": error_total, "passed": error_total == 0},
        {"name": "0 stale reads", "value": stale, "passed": stale == 0},
        {
            "name": "cache serving again after every outage",
            "value": [w["time_to_serving_s"] for w in windows],
            "passed": len(windows) == 2
            and all(w["time_to_serving_s"] is not None for w in windows),
        },
        {
            "name": "read p99 during outages < 100 ms",
            "value": worst_p99,
            "passed": worst_p99 < 100.0,
        },
    ]
    return {
        "command": "chaos",
        "started_at": started_at,
        "passed": all(c["passed"] for c in criteria),
        "criteria": criteria,
        "targets": [],
        "parameters": {**params.as_dict(), **schedule.as_dict()},
        "run": {
            "redis": env.redis_description,
            "store": env.store_description,
            "event_loop": loop,
            "operation_timeout_ms": operation_timeout * 1000,
            "breaker_wait_s": schedule.breaker_wait,
            "ttl_ms": {f.value: KeySchema(ttl=dict(ttl)).ttl_ms(f) for f in Family},
            "refresh_ahead": dict(refresh_ahead),
            "feed_workers": FEED_WORKERS,
            "embedded_redis_pids": list(server.pids),
            "embedded_directory": str(server.directory),
        },
        "versions": library_versions(),
        "server": {"redis_version": server_version},
        "machine": machine_facts(),
        "hit_rate": stats,
        "fallbacks": {"total": sum(fallbacks.values()), "by_reason": fallbacks},
        "breaker": {
            "transitions": transitions.items[marks["transitions"] :],
            "count": len(transitions.items) - marks["transitions"],
        },
        "errors": {"total": error_total, "by_kind": errors},
        "stale_reads": stale,
        "phases": {"chaos": summary},
        "chaos": {"events": events, "windows": windows},
        "notes": [
            f"operation deadline {operation_timeout * 1000:g} ms per Redis operation; breaker "
            f"opens after 5 consecutive faults and waits {schedule.breaker_wait:g} s "
            "(library default 30 s) before its probe",
            "time to serving: from Redis answering again to the first cache hit after it",
            *feed_notes({"chaos": summary}, params.feed_rate),
        ],
    }
