"""runtime.cache - the Redis caching layer of the trading runtime.

The public API is re-exported here; everything else is internal.
"""

from runtime.cache.exceptions import (
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
    PoolExhaustedError,
)
from runtime.cache.models import CacheKeys, Family, FamilySpec, KeySchema, ParsedKey, RedisType

__all__ = [
    "CacheClusterDownError",
    "CacheConnectionError",
    "CacheError",
    "CacheKeys",
    "CacheLoadingError",
    "CacheOutOfMemoryError",
    "CacheReadOnlyError",
    "CacheResponseError",
    "CacheTimeoutError",
    "CacheUnavailableError",
    "CircuitOpenError",
    "ConfigurationError",
    "DecodeError",
    "Family",
    "FamilySpec",
    "InvalidKeyError",
    "InvalidValueError",
    "KeySchema",
    "ParsedKey",
    "PoolExhaustedError",
    "RedisType",
]
