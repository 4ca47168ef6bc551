"""The exception tree of ``runtime.cache``: every error the layer raises.

::

    CacheError
    ├── ConfigurationError (ValueError)     bad URL, option or TTL
    ├── InvalidKeyError (ValueError)        bad identifier or key (C2); names the field
    ├── InvalidValueError (ValueError)      a value that cannot be cached (NaN, wrong type)
    ├── DecodeError                         cached bytes that do not decode (C4)
    ├── CircuitOpenError                    breaker OPEN / probe in flight (C12)
    ├── PoolExhaustedError                  no pooled connection within the deadline (C14)
    ├── LoadBusyError                       the bound on concurrent store loads stayed full
    ├── CacheOutOfMemoryError               Redis answered OOM: writes degraded
    ├── CacheResponseError                  any other error reply (WRONGTYPE, ...)
    │   └── CacheClientError                the Redis client failed unexpectedly (a bug)
    └── CacheUnavailableError               Redis itself failed: counts for the breaker
        ├── CacheConnectionError            refused, reset, closed
        ├── CacheTimeoutError               socket timeout or operation deadline
        ├── CacheLoadingError               LOADING: the dataset is being loaded
        ├── CacheReadOnlyError              READONLY: we talk to a replica
        └── CacheClusterDownError           CLUSTERDOWN / MASTERDOWN / TRYAGAIN

``counts_as_fault`` on each class says whether the circuit breaker counts it as a
cache fault: only ``CacheUnavailableError`` and its children do. Pool exhaustion is
our own saturation and OOM still serves reads and deletes, so neither opens the
breaker; application errors never do.

redis-py errors become these in one place: :func:`translate_redis_errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from redis import exceptions as redis_exc

__all__ = [
    "CacheClientError",
    "CacheClusterDownError",
    "CacheConnectionError",
    "CacheError",
    "CacheLoadingError",
    "CacheOutOfMemoryError",
    "CacheReadOnlyError",
    "CacheResponseError",
    "CacheTimeoutError",
    "CacheUnavailableError",
    "CircuitOpenError",
    "ConfigurationError",
    "DecodeError",
    "InvalidKeyError",
    "InvalidValueError",
    "LoadBusyError",
    "PoolExhaustedError",
    "translate_redis_error",
    "translate_redis_errors",
]

_MAX_SHOWN = 40


def shorten(value: object, limit: int = _MAX_SHOWN) -> str:
    """``repr`` of ``value`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CacheError(Exception):
    """Root of every error raised by ``runtime.cache``."""

    counts_as_fault: ClassVar[bool] = False


class ConfigurationError(CacheError, ValueError):
    """An option, URL or TTL is invalid; the message names it."""


class InvalidKeyError(CacheError, ValueError):
    """An identifier or key breaks the key schema (C2).

    ``field`` names the identifier (``symbol``, ``side``, ``order_id``, ...),
    ``value`` is the rejected value.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {field} {shorten(value)}: {reason}")


class InvalidValueError(CacheError, ValueError):
    """A value cannot be cached as given (a non-finite ``Decimal``, a wrong type)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {field} {shorten(value)}: {reason}")


class DecodeError(CacheError):
    """Cached bytes do not decode into the family's type (C4).

    The read patterns treat it as a miss: the entry is deleted and reloaded.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"cannot decode {shorten(key, 80)}: {reason}")


class CircuitOpenError(CacheError):
    """The circuit breaker rejected the call without touching Redis.

    ``retry_after`` is the number of seconds until the next probe may run
    (``0.0`` while a half-open probe is in flight).
    """

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"circuit open; next probe in {retry_after:.3f}s")


class PoolExhaustedError(CacheError):
    """No pooled connection became free within the deadline (C14)."""


class LoadBusyError(CacheError):
    """No slot of the bound on concurrent source-of-truth loads freed up in time.

    The bound keeps a Redis outage from turning into a database stampede; a
    caller waits for a slot within its load budget, then gets this error.
    """


class CacheOutOfMemoryError(CacheError):
    """Redis refused a write with OOM; reads and deletes still work."""


class CacheResponseError(CacheError):
    """Redis answered with an error that is not a server fault."""


class CacheClientError(CacheResponseError):
    """The Redis client raised something that is not a Redis error (a bug in the
    client or in this layer). Logged with its traceback; readers fall back."""


class CacheUnavailableError(CacheError):
    """Redis did not serve the call: a cache fault that the breaker counts."""

    counts_as_fault = True


class CacheConnectionError(CacheUnavailableError):
    """Connection refused, reset or closed."""


class CacheTimeoutError(CacheUnavailableError):
    """Redis did not answer within the socket timeout or operation deadline."""


class CacheLoadingError(CacheUnavailableError):
    """Redis is loading its dataset (LOADING)."""


class CacheReadOnlyError(CacheUnavailableError):
    """The server is a read-only replica (READONLY)."""


class CacheClusterDownError(CacheUnavailableError):
    """The cluster cannot serve the slot (CLUSTERDOWN, MASTERDOWN, TRYAGAIN)."""


def _is_pool_timeout(exc: redis_exc.ConnectionError) -> bool:
    # redis-py's BlockingConnectionPool raises ConnectionError("No connection
    # available.") from asyncio.TimeoutError when its wait runs out.
    return isinstance(exc.__cause__, TimeoutError | asyncio.TimeoutError) and (
        "No connection available" in str(exc)
    )


def translate_redis_error(exc: BaseException) -> CacheError | None:
    """The most specific ``CacheError`` for a redis-py or socket error, else None."""
    match exc:
        case redis_exc.BusyLoadingError():
            return CacheLoadingError(str(exc))
        case redis_exc.ReadOnlyError():
            return CacheReadOnlyError(str(exc))
        case redis_exc.MaxConnectionsError():
            return PoolExhaustedError(str(exc))
        case redis_exc.ConnectionError() if _is_pool_timeout(exc):
            return PoolExhaustedError(str(exc))
        case redis_exc.TimeoutError() | TimeoutError():
            return CacheTimeoutError(str(exc) or "timed out")
        case (
            redis_exc.ClusterDownError()
            | redis_exc.MasterDownError()
            | redis_exc.TryAgainError()
            | redis_exc.SlotNotCoveredError()
        ):
            return CacheClusterDownError(str(exc))
        case redis_exc.ConnectionError() | ConnectionError() | OSError():
            return CacheConnectionError(str(exc) or type(exc).__name__)
        case redis_exc.OutOfMemoryError():
            return CacheOutOfMemoryError(str(exc))
        case redis_exc.ResponseError() if str(exc).startswith(("LOADING", "BUSY ")):
            return CacheLoadingError(str(exc))
        case redis_exc.ResponseError() if str(exc).startswith("READONLY"):
            return CacheReadOnlyError(str(exc))
        case redis_exc.ResponseError() if str(exc).startswith(
            ("CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN")
        ):
            return CacheClusterDownError(str(exc))
        case redis_exc.ResponseError() if str(exc).startswith("OOM"):
            return CacheOutOfMemoryError(str(exc))
        case redis_exc.RedisError() | redis_exc.RedisClusterException():
            return CacheResponseError(str(exc))
    return None


@contextmanager
def translate_redis_errors() -> Iterator[None]:
    """Re-raise redis-py and socket errors as the most specific ``CacheError``.

    The original error is chained (``raise ... from exc``). ``CacheError`` and
    every other exception (including cancellation) pass through unchanged.
    """
    try:
        yield
    except CacheError:
        raise
    except (redis_exc.RedisError, redis_exc.RedisClusterException, OSError, TimeoutError) as exc:
        translated = translate_redis_error(exc)
        if translated is None:  # pragma: no cover - every branch above returns
            raise
        raise translated from exc
