"""The exception tree of ``runtime.data``: every error a store raises.

::

    StoreError
    ├── StoreConfigurationError (ValueError)  bad URL or option; names the problem
    ├── ValidationError (ValueError)          bad input, rejected before any SQL;
    │                                         ``field`` and ``value`` name it
    ├── ConflictError                         optimistic check lost (expected_version),
    │                                         unique race, deadlock or serialization failure
    ├── NotFoundError                         a row the operation needs is absent
    └── StoreUnavailableError                 refused, timed out, pool or store closed

Driver errors (asyncpg, sqlite3/aiosqlite, ``OSError``, timeouts) become these in
exactly one place, :func:`translate_driver_errors`, which chains the original with
``raise ... from``. Messages never contain a password: URLs are shown through
:func:`runtime.data.url.redact_url`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

__all__ = [
    "ConflictError",
    "NotFoundError",
    "StoreConfigurationError",
    "StoreError",
    "StoreUnavailableError",
    "ValidationError",
    "translate_driver_errors",
]

_MAX_SHOWN = 60


def _shorten(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


class StoreError(Exception):
    """Root of every error raised by ``runtime.data``."""


class StoreConfigurationError(StoreError, ValueError):
    """A store URL or option is invalid; the message names the problem."""


class StoreUnavailableError(StoreError):
    """The database did not serve the call: refused, timed out, or the store is closed."""


class ValidationError(StoreError, ValueError):
    """An input breaks the data contract; raised before any SQL runs.

    ``field`` names the offending field (``symbol``, ``bid``, ``expected_version``,
    ...), ``value`` is the rejected value, ``reason`` says why. Fills that the
    stored state forbids (overfill, non-open order) raise it too, inside the
    fill's transaction, which is then rolled back.
    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {field} {_shorten(value)}: {reason}")


class ConflictError(StoreError):
    """A concurrent write won: the row's version is not the expected one.

    ``entity`` and ``key`` name the row, ``expected`` is the version the caller
    expected and ``actual`` the stored one (``None``: row absent or unknown).
    Also raised for a deadlock or serialization failure the database detected.
    Retrying after re-reading the row is safe.
    """

    def __init__(
        self,
        entity: str,
        key: object,
        expected: int | None,
        actual: int | None,
        *,
        detail: str | None = None,
    ) -> None:
        self.entity = entity
        self.key = key
        self.expected = expected
        self.actual = actual
        if detail is None:
            stored = "absent" if actual is None else f"at version {actual}"
            detail = f"expected version {expected}, row is {stored}"
        super().__init__(f"conflict on {entity} {_shorten(key)}: {detail}")


class NotFoundError(StoreError, LookupError):
    """A row the operation needs does not exist (e.g. ``apply_fill`` on an unknown order)."""

    def __init__(self, entity: str, key: object) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"{entity} {_shorten(key)} not found")


# asyncpg: SQLSTATE classes that mean "the server cannot serve us now".
_PG_UNAVAILABLE_STATES = ("08", "53", "57")  # connection, resources, operator intervention
_PG_CONFLICT_STATES = ("40001", "40P01", "23505")  # serialization, deadlock, unique


@contextmanager
def translate_driver_errors(operation: str) -> Iterator[None]:
    """Turn driver and OS errors raised in the block into :class:`StoreError` subclasses.

    Our own ``StoreError`` passes through unchanged. ``operation`` (e.g.
    ``"get_price"``) is named in the message. ``asyncio.CancelledError`` is never
    caught.
    """
    try:
        yield
    except StoreError:
        raise
    except asyncpg.PostgresError as exc:
        raise _from_postgres(operation, exc) from exc
    except asyncpg.InterfaceError as exc:
        # Pool closing, connection released or closed under us, protocol misuse.
        raise StoreUnavailableError(f"{operation}: {exc}") from exc
    except sqlite3.Error as exc:
        raise _from_sqlite(operation, exc) from exc
    except TimeoutError as exc:  # before OSError: TimeoutError is one
        raise StoreUnavailableError(f"{operation}: timed out") from exc
    except OSError as exc:
        raise StoreUnavailableError(f"{operation}: {exc}") from exc


def _from_postgres(operation: str, exc: asyncpg.PostgresError) -> StoreError:
    state = str(getattr(exc, "sqlstate", "") or "")
    if state in _PG_CONFLICT_STATES:
        return ConflictError("row", operation, None, None, detail=f"{type(exc).__name__}: {exc}")
    if state.startswith(_PG_UNAVAILABLE_STATES) or state == "28P01" or state == "28000":
        return StoreUnavailableError(f"{operation}: {type(exc).__name__}: {exc}")
    return StoreError(f"{operation}: {type(exc).__name__} [{state}]: {exc}")


def _from_sqlite(operation: str, exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError("row", operation, None, None, detail=f"{exc}")
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc).lower():
        return StoreUnavailableError(f"{operation}: {exc}")
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        if "locked" in message or "busy" in message or "unable to open" in message:
            return StoreUnavailableError(f"{operation}: {exc}")
    return StoreError(f"{operation}: {type(exc).__name__}: {exc}")
