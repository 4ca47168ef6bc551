"""``PostgresStore``: the production source of truth (asyncpg pool, ``NUMERIC`` money).

- A bounded pool (``min_size``..``max_size``); a caller that cannot get a
  connection within ``acquire_timeout`` gets ``StoreUnavailableError``, never a hang.
- Statements are constant strings, so asyncpg prepares each once per connection.
- Single-row reads and single-statement writes run in autocommit; ``put_book``,
  ``apply_fill`` and :meth:`transaction` run in a transaction (READ COMMITTED;
  ``apply_fill`` takes ``SELECT ... FOR UPDATE`` row locks: order, risk, position).
- ``schema``: every connection's ``search_path`` is that schema only; ``migrate()``
  creates it. Tests and benchmarks run in a schema of their own and drop it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from runtime.data._migrations import SCHEMA_MIGRATIONS_DDL, load_migrations
from runtime.data._session import BaseStore, Ops
from runtime.data._sql import Dialect, Statements
from runtime.data.errors import (
    StoreConfigurationError,
    StoreUnavailableError,
    translate_driver_errors,
)
from runtime.data.url import redact_url

__all__ = ["POSTGRES_DIALECT", "PostgresStore"]

logger = logging.getLogger(__name__)

POSTGRES_DIALECT = Dialect(
    name="postgres",
    placeholder=lambda i: f"${i}",
    lock_suffix=" FOR UPDATE",
    money=lambda d: d,
    flag=lambda b: b,
)
_STATEMENTS = Statements(POSTGRES_DIALECT)
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_CLOSE_TIMEOUT = 5.0

Row = Sequence[Any]
if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    _Conn: TypeAlias = PoolConnectionProxy[asyncpg.Record]


class _Executor:
    """The four primitives on one pooled asyncpg connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    async def fetchrow(self, sql: str, args: Sequence[object]) -> Row | None:
        # asyncpg's Record indexes and slices like a tuple.
        return await self._conn.fetchrow(sql, *args)  # type: ignore[return-value]

    async def fetch(self, sql: str, args: Sequence[object]) -> Sequence[Row]:
        return await self._conn.fetch(sql, *args)  # type: ignore[return-value]

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        await self._conn.executemany(sql, rows)

    async def execute(self, sql: str, args: Sequence[object]) -> None:
        await self._conn.execute(sql, *args)


async def _keep_session(conn: object) -> None:
    """Pool reset hook: nothing to undo.

    asyncpg still rolls back an open transaction on release; the default reset
    would add a round trip (``RESET ALL``, ``UNLISTEN *``, ...) to every call, and
    this store never changes session state (its advisory lock is transaction-scoped).
    """


def _seconds(name: str, value: object, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise StoreConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class PostgresStore(BaseStore):
    """A :class:`~runtime.data.store.Store` on PostgreSQL.

    Options (keyword-only): ``min_size`` (1) and ``max_size`` (10) pooled
    connections, ``connect_timeout`` (5 s, bounds :meth:`connect`),
    ``command_timeout`` (10 s per statement, ``None``: none), ``acquire_timeout``
    (5 s to get a pooled connection), ``schema`` (``None``: the server's
    ``search_path``). Call :meth:`connect` (or use :func:`runtime.data.open_store`).
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float | None = 10.0,
        acquire_timeout: float = 5.0,
        schema: str | None = None,
    ) -> None:
        if not isinstance(min_size, int) or not isinstance(max_size, int):
            raise StoreConfigurationError("min_size and max_size must be ints")
        if not 0 <= min_size <= max_size or max_size < 1:
            raise StoreConfigurationError(
                f"need 0 <= min_size <= max_size and max_size >= 1, got {min_size}, {max_size}"
            )
        if schema is not None and not (isinstance(schema, str) and _SCHEMA_NAME.match(schema)):
            raise StoreConfigurationError(
                f"schema must match {_SCHEMA_NAME.pattern}, got {schema!r}"
            )
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = _seconds("connect_timeout", connect_timeout)
        self._command_timeout = _seconds("command_timeout", command_timeout, allow_none=True)
        self._acquire_timeout = _seconds("acquire_timeout", acquire_timeout)
        self._schema = schema
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._pool else "new")
        size = f" pool={self._pool.get_size()}/{self._max_size}" if self._pool else ""
        return (
            f"<PostgresStore url={redact_url(self._dsn)!r} schema={self._schema!r} {state}{size}>"
        )

    @property
    def schema(self) -> str | None:
        """The schema every connection uses, or ``None``."""
        return self._schema

    async def connect(self) -> PostgresStore:
        """Create the pool and check the server answers, within ``connect_timeout``."""
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        if self._pool is not None:
            return self
        settings = {"search_path": self._schema} if self._schema else {}
        timeout = self._connect_timeout
        assert timeout is not None
        with translate_driver_errors(f"connect to {redact_url(self._dsn)}"):
            try:
                async with asyncio.timeout(timeout):
                    pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=self._min_size,
                        max_size=self._max_size,
                        timeout=timeout,
                        command_timeout=self._command_timeout,
                        server_settings=settings,
                        reset=_keep_session,
                    )
                    try:
                        async with pool.acquire() as conn:
                            await conn.fetchval("SELECT 1")
                    except BaseException:
                        pool.terminate()
                        raise
            except (asyncpg.ClientConfigurationError, asyncpg.InvalidCatalogNameError) as exc:
                raise StoreConfigurationError(
                    f"cannot use {redact_url(self._dsn)!r}: {type(exc).__name__}: {exc}"
                ) from exc
        self._pool = pool
        logger.debug("opened %r", self)
        return self

    async def close(self) -> None:
        """Close the pool (terminating it if it does not close in time); idempotent."""
        if self._closed:
            return
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT)
        except TimeoutError:
            logger.warning("pool did not close within %.1fs; terminating", _CLOSE_TIMEOUT)
            pool.terminate()
        logger.debug("closed %r", self)

    def _require_pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        if self._pool is None:
            raise StoreUnavailableError("the store is not connected; call connect()")
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Conn]:
        async with self._require_pool().acquire(timeout=self._acquire_timeout) as conn:
            yield conn

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Ops]:
        async with self._connection() as conn:
            yield Ops(_Executor(conn), _STATEMENTS)

    # A single statement in autocommit is atomic on its own.
    _writing = _reading

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Ops]:
        with translate_driver_errors("transaction"):
            async with self._connection() as conn, conn.transaction():
                yield Ops(_Executor(conn), _STATEMENTS)

    async def migrate(self) -> None:
        """Create the schema if needed and apply missing migrations in one transaction.

        A transaction-scoped advisory lock keeps concurrent migrators apart.
        """
        with translate_driver_errors("migrate"):
            async with self._connection() as conn, conn.transaction():
                lock_key = f"runtime.data.migrate:{self._schema or ''}"
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock_key)
                if self._schema:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
                await conn.execute(SCHEMA_MIGRATIONS_DDL)
                applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for migration in load_migrations("postgres"):
                    if migration.version in applied:
                        continue
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_ns) "
                        "VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        time.time_ns(),
                    )
                    logger.info(
                        "applied postgres migration %04d_%s", migration.version, migration.name
                    )
