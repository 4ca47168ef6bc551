"""runtime.cache - the Redis caching layer of the trading runtime.

Start with :class:`TradingCache` (typed reads, writes and the one-round-trip
``snapshot``) over a :class:`CacheManager` and a source of truth; the patterns
(:class:`CacheAside`, :class:`WriteThrough`), the :class:`FallbackHandler` and
the :class:`CircuitBreaker` are public for callers who compose their own.
"""

from runtime.cache.circuit_breaker import (
    BreakerState,
    BreakerStatistics,
    BreakerTransition,
    CircuitBreaker,
    Permit,
    is_cache_fault,
)
from runtime.cache.clock import Clock, ManualClock, SystemClock
from runtime.cache.exceptions import (
    CacheClientError,
    CacheClusterDownError,
    CacheConnectionError,
    CacheError,
    CacheLoadingError,
    CacheOutOfMemoryError,
    CacheReadOnlyError,
    CacheResponseError,
    CacheTimeoutError,
    CacheUnavailableError,
    CircuitOpenError,
    ConfigurationError,
    DecodeError,
    InvalidKeyError,
    InvalidValueError,
    LoadBusyError,
    PoolExhaustedError,
)
from runtime.cache.facade import Snapshot, SourceOfTruth, TradingCache
from runtime.cache.fallback import FallbackHandler, FallbackStatistics
from runtime.cache.manager import CacheManager, ManagerStatus, redact_url
from runtime.cache.models import CacheKeys, Family, FamilySpec, KeySchema, ParsedKey, RedisType
from runtime.cache.patterns.aside import CacheAside
from runtime.cache.patterns.write import WriteThrough
from runtime.cache.stats import CacheStatistics, FamilyStatistics

__all__ = [
    "BreakerState",
    "BreakerStatistics",
    "BreakerTransition",
    "CacheAside",
    "CacheClientError",
    "CacheClusterDownError",
    "CacheConnectionError",
    "CacheError",
    "CacheKeys",
    "CacheLoadingError",
    "CacheManager",
    "CacheOutOfMemoryError",
    "CacheReadOnlyError",
    "CacheResponseError",
    "CacheStatistics",
    "CacheTimeoutError",
    "CacheUnavailableError",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "ConfigurationError",
    "DecodeError",
    "Family",
    "FamilySpec",
    "FamilyStatistics",
    "FallbackHandler",
    "FallbackStatistics",
    "InvalidKeyError",
    "InvalidValueError",
    "KeySchema",
    "LoadBusyError",
    "ManagerStatus",
    "ManualClock",
    "ParsedKey",
    "Permit",
    "PoolExhaustedError",
    "RedisType",
    "Snapshot",
    "SourceOfTruth",
    "SystemClock",
    "TradingCache",
    "WriteThrough",
    "is_cache_fault",
    "redact_url",
]
