"""The exception tree and the one place redis-py errors become ours."""

from __future__ import annotations

import asyncio

import pytest
from redis import exceptions as redis_exc

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
    translate_redis_errors,
)


def _pool_timeout() -> redis_exc.ConnectionError:
    # What redis.asyncio.BlockingConnectionPool raises when its wait runs out:
    # ConnectionError("No connection available.") from asyncio.TimeoutError.
    error = redis_exc.ConnectionError("No connection available.")
    error.__cause__ = asyncio.TimeoutError()  # noqa: UP041 - the alias is the point
    return error


TRANSLATIONS: list[tuple[BaseException, type[CacheError]]] = [
    (redis_exc.ConnectionError("Error 111 connecting to 127.0.0.1:6379"), CacheConnectionError),
    (redis_exc.ConnectionError("Connection closed by server."), CacheConnectionError),
    (redis_exc.AuthenticationError("invalid password"), CacheConnectionError),
    (redis_exc.TimeoutError("Timeout reading from socket"), CacheTimeoutError),
    (redis_exc.BusyLoadingError("Redis is loading the dataset in memory"), CacheLoadingError),
    (redis_exc.ReadOnlyError("You can't write against a read only replica."), CacheReadOnlyError),
    (redis_exc.ResponseError("LOADING Redis is loading the dataset in memory"), CacheLoadingError),
    (redis_exc.ResponseError("READONLY You can't write against a replica."), CacheReadOnlyError),
    (redis_exc.ClusterDownError("CLUSTERDOWN The cluster is down"), CacheClusterDownError),
    (redis_exc.MasterDownError("MASTERDOWN Link with MASTER is down"), CacheClusterDownError),
    (
        redis_exc.TryAgainError("TRYAGAIN Multiple keys request during rehashing"),
        CacheClusterDownError,
    ),
    (redis_exc.SlotNotCoveredError("slot 42 not covered"), CacheClusterDownError),
    (redis_exc.ResponseError("CLUSTERDOWN Hash slot not served"), CacheClusterDownError),
    (redis_exc.OutOfMemoryError("OOM command not allowed"), CacheOutOfMemoryError),
    (
        redis_exc.ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
        CacheOutOfMemoryError,
    ),
    (
        redis_exc.ResponseError(
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        ),
        CacheResponseError,
    ),
    (redis_exc.ResponseError("NOSCRIPT No matching script."), CacheResponseError),
    (redis_exc.DataError("Invalid input of type: 'bool'."), CacheResponseError),
    (_pool_timeout(), PoolExhaustedError),
    (redis_exc.MaxConnectionsError("Too many connections"), PoolExhaustedError),
    (ConnectionRefusedError(111, "Connection refused"), CacheConnectionError),
    (ConnectionResetError(104, "Connection reset by peer"), CacheConnectionError),
    (OSError(113, "No route to host"), CacheConnectionError),
    (TimeoutError(), CacheTimeoutError),
    (asyncio.TimeoutError("deadline"), CacheTimeoutError),  # noqa: UP041
]


@pytest.mark.parametrize(
    ("error", "expected"),
    TRANSLATIONS,
    ids=lambda x: type(x).__name__ + (f"({x})" if isinstance(x, BaseException) else ""),
)
def test_redis_error_becomes_the_most_specific_cache_error(
    error: BaseException, expected: type[CacheError]
) -> None:
    with pytest.raises(CacheError) as info, translate_redis_errors():
        raise error
    assert type(info.value) is expected
    assert info.value.__cause__ is error
    assert str(info.value)  # never an empty message in a log line


def test_pool_error_without_a_timeout_cause_is_a_connection_error() -> None:
    with pytest.raises(CacheConnectionError), translate_redis_errors():
        raise redis_exc.ConnectionError("No connection available.")


@pytest.mark.parametrize(
    "error",
    [
        CacheConnectionError("already ours"),
        CircuitOpenError(1.5),
        DecodeError("price:{X}", "bad"),
        InvalidKeyError("symbol", "a b", "whitespace"),
        ValueError("application error"),
        KeyError("k"),
        asyncio.CancelledError(),
        KeyboardInterrupt(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_cache_errors_and_foreign_exceptions_pass_unchanged(error: BaseException) -> None:
    with pytest.raises(type(error)) as info, translate_redis_errors():
        raise error
    assert info.value is error
    assert info.value.__cause__ is None


def test_no_error_means_nothing_raised() -> None:
    with translate_redis_errors():
        result = 1 + 1
    assert result == 2


def test_only_unavailability_counts_as_a_fault() -> None:
    faults = {
        cls
        for cls in (
            CacheConnectionError,
            CacheTimeoutError,
            CacheLoadingError,
            CacheReadOnlyError,
            CacheClusterDownError,
            CacheUnavailableError,
        )
        if cls.counts_as_fault
    }
    assert len(faults) == 6
    for cls in (
        CacheError,
        ConfigurationError,
        InvalidKeyError,
        InvalidValueError,
        DecodeError,
        CircuitOpenError,
        PoolExhaustedError,
        CacheOutOfMemoryError,
        CacheResponseError,
    ):
        assert cls.counts_as_fault is False, cls


def test_every_error_has_the_single_root() -> None:
    for cls in (
        ConfigurationError,
        InvalidKeyError,
        InvalidValueError,
        DecodeError,
        CircuitOpenError,
    ):
        assert issubclass(cls, CacheError)
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(InvalidKeyError, ValueError)
    assert issubclass(InvalidValueError, ValueError)


def test_errors_carry_their_details() -> None:
    key_error = InvalidKeyError("order_id", "x" * 100, "too long")
    assert (key_error.field, key_error.value, key_error.reason) == (
        "order_id",
        "x" * 100,
        "too long",
    )
    assert str(key_error).startswith("invalid order_id 'xxx")
    assert str(key_error).endswith("...: too long")
    value_error = InvalidValueError("bid", 1.5, "must be a Decimal")
    assert str(value_error) == "invalid bid 1.5: must be a Decimal"
    decode_error = DecodeError("price:{X}", "KeyError: b'b'")
    assert decode_error.key == "price:{X}"
    assert "price:{X}" in str(decode_error)
    assert CircuitOpenError(0.25).retry_after == 0.25
    assert "0.250s" in str(CircuitOpenError(0.25))
