"""Prometheus metrics of the caching layer (C13), defined once for the process.

Every component reports here; labels name the key family, the reason or the
component instance. Serve them with ``prometheus_client.start_http_server`` or
the command line's ``--metrics-port``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BREAKER_REJECTIONS",
    "BREAKER_STATE",
    "BREAKER_TRANSITIONS",
    "CACHE_DECODE_FAILURES",
    "CACHE_INVALIDATIONS",
    "CACHE_LOADS",
    "CACHE_PENDING_INVALIDATIONS",
    "CACHE_REQUESTS",
    "CACHE_STALE_SETS_REJECTED",
    "FALLBACK_LATENCY",
    "FALLBACK_TOTAL",
    "REDIS_CONSECUTIVE_FAILURES",
    "REDIS_HEALTHY",
    "REDIS_PING_SECONDS",
    "REDIS_POOL_CONNECTIONS",
    "REDIS_RETRIES",
]

_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)

CACHE_REQUESTS = Counter(
    "runtime_cache_requests",
    "Cache reads by key family and result (hit, miss, negative_hit).",
    ["family", "result"],
)
CACHE_LOADS = Counter(
    "runtime_cache_loads",
    "Loader calls made on a miss or a refresh, by family and outcome (ok, error).",
    ["family", "outcome"],
)
CACHE_STALE_SETS_REJECTED = Counter(
    "runtime_cache_stale_sets_rejected",
    "Cache sets refused because a newer version was already fenced (C7).",
    ["family"],
)
CACHE_DECODE_FAILURES = Counter(
    "runtime_cache_decode_failures",
    "Cached entries that did not decode and were dropped as misses (C4).",
    ["family"],
)
CACHE_INVALIDATIONS = Counter(
    "runtime_cache_invalidations",
    "Keys invalidated, by family and reason.",
    ["family", "reason"],
)
CACHE_PENDING_INVALIDATIONS = Gauge(
    "runtime_cache_pending_invalidations",
    "Keys whose invalidation waits for Redis to answer again (C10).",
)
FALLBACK_TOTAL = Counter(
    "runtime_cache_fallback",
    "Reads served straight from the source of truth, by family and reason.",
    ["family", "reason"],
)
FALLBACK_LATENCY = Histogram(
    "runtime_cache_fallback_latency_seconds",
    "Latency of reads served by the fallback.",
    ["family"],
    buckets=_LATENCY_BUCKETS,
)
BREAKER_STATE = Gauge(
    "runtime_cache_breaker_state",
    "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
    ["breaker"],
)
BREAKER_TRANSITIONS = Counter(
    "runtime_cache_breaker_transitions",
    "Circuit breaker transitions.",
    ["breaker", "from_state", "to_state"],
)
BREAKER_REJECTIONS = Counter(
    "runtime_cache_breaker_rejections",
    "Calls the circuit breaker rejected without touching Redis.",
    ["breaker"],
)
REDIS_HEALTHY = Gauge(
    "runtime_cache_redis_healthy",
    "1 while the last health check of the manager succeeded.",
    ["manager"],
)
REDIS_PING_SECONDS = Gauge(
    "runtime_cache_redis_ping_seconds",
    "Latency of the last successful health-check PING.",
    ["manager"],
)
REDIS_CONSECUTIVE_FAILURES = Gauge(
    "runtime_cache_redis_consecutive_failures",
    "Health checks failed in a row.",
    ["manager"],
)
REDIS_POOL_CONNECTIONS = Gauge(
    "runtime_cache_redis_pool_connections",
    "Pooled Redis connections by state (in_use, idle).",
    ["manager", "state"],
)
REDIS_RETRIES = Counter(
    "runtime_cache_redis_retries",
    "Redis commands retried by the manager's retry policy.",
    ["manager"],
)
