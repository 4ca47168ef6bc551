"""``SqliteStore``: the embedded source of truth (aiosqlite, WAL).

Money is ``TEXT`` holding ``str(Decimal)`` so it survives exactly. Concurrency:

- one writer connection; an ``asyncio.Lock`` serializes every write and every
  transaction (``BEGIN IMMEDIATE``), so concurrent fills never lose an update and
  no reader of this store ever sees uncommitted data;
- for a file database, one more connection (``query_only``) serves reads without
  waiting for writers: WAL gives it the last committed snapshot. An in-memory
  database has a single connection, so reads take the lock too.

Each single-row read and ``get_book``/``get_position_and_risk`` is one SQL
statement, hence one consistent snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import aiosqlite

from runtime.data._migrations import SCHEMA_MIGRATIONS_DDL, load_migrations, split_statements
from runtime.data._session import BaseStore, Ops
from runtime.data._sql import Dialect, Statements
from runtime.data.errors import (
    StoreConfigurationError,
    StoreUnavailableError,
    translate_driver_errors,
)

__all__ = ["SQLITE_DIALECT", "SqliteStore"]

logger = logging.getLogger(__name__)

SQLITE_DIALECT = Dialect(
    name="sqlite",
    placeholder=lambda i: f"?{i}",
    lock_suffix="",  # BEGIN IMMEDIATE already holds the database's write lock
    money=str,
    flag=int,
)
_STATEMENTS = Statements(SQLITE_DIALECT)
_MEMORY = ":memory:"
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

Row = Sequence[Any]


class _Executor:
    """The four primitives on one aiosqlite connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetchrow(self, sql: str, args: Sequence[object]) -> Row | None:
        rows = await self._conn.execute_fetchall(sql, args)
        for row in rows:
            return row
        return None

    async def fetch(self, sql: str, args: Sequence[object]) -> Sequence[Row]:
        return list(await self._conn.execute_fetchall(sql, args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        await self._conn.executemany(sql, rows)

    async def execute(self, sql: str, args: Sequence[object]) -> None:
        await self._conn.execute(sql, args)


class SqliteStore(BaseStore):
    """A :class:`~runtime.data.store.Store` on SQLite; ``path`` may be ``":memory:"``.

    Options (keyword-only): ``busy_timeout`` (seconds another process's lock is
    waited for, default 5), ``synchronous`` (default ``"NORMAL"``: in WAL mode a
    commit survives a process crash; ``"FULL"`` also survives power loss, at one
    fsync per commit). Call :meth:`connect` (or use :func:`runtime.data.open_store`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float):
            raise StoreConfigurationError(f"busy_timeout must be a number, got {busy_timeout!r}")
        if busy_timeout < 0:
            raise StoreConfigurationError(f"busy_timeout must be >= 0, got {busy_timeout!r}")
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreConfigurationError(
                f"synchronous must be OFF/NORMAL/FULL/EXTRA, got {synchronous!r}"
            )
        self._path = os.fspath(path)
        if not self._path:
            raise StoreConfigurationError("sqlite path must not be empty")
        self._busy_ms = int(busy_timeout * 1000)
        self._synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._writer else "new")
        return f"<SqliteStore path={self._path!r} {state}>"

    @property
    def path(self) -> str:
        """The database file, or ``":memory:"``."""
        return self._path

    @property
    def in_memory(self) -> bool:
        return self._path == _MEMORY

    async def connect(self) -> SqliteStore:
        """Open the connections (idempotent) and return the store."""
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        if self._writer is not None:
            return self
        with translate_driver_errors("connect"):
            writer = await self._open(query_only=False)
            try:
                if not self.in_memory:
                    self._reader = await self._open(query_only=True)
            except BaseException:
                await writer.close()
                raise
            self._writer = writer
        logger.debug("opened %r", self)
        return self

    async def _open(self, *, query_only: bool) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self._path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if not query_only:
                await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            await conn.execute("PRAGMA foreign_keys = ON")
            if query_only:
                await conn.execute("PRAGMA query_only = ON")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Close both connections; idempotent."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            connections = [c for c in (self._reader, self._writer) if c is not None]
            self._reader = self._writer = None
            for conn in connections:
                with translate_driver_errors("close"):
                    await conn.close()
        logger.debug("closed %r", self)

    def _require_writer(self) -> aiosqlite.Connection:
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        if self._writer is None:
            raise StoreUnavailableError("the store is not connected; call connect()")
        return self._writer

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Ops]:
        self._require_writer()
        if self._reader is not None:
            yield Ops(_Executor(self._reader), _STATEMENTS)
            return
        async with self._lock:
            yield Ops(_Executor(self._require_writer()), _STATEMENTS)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[Ops]:
        self._require_writer()
        async with self._lock:
            # One statement in autocommit mode is its own transaction.
            yield Ops(_Executor(self._require_writer()), _STATEMENTS)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Ops]:
        self._require_writer()
        async with self._lock:
            conn = self._require_writer()
            with translate_driver_errors("begin"):
                await conn.execute("BEGIN IMMEDIATE")
            try:
                yield Ops(_Executor(conn), _STATEMENTS)
                with translate_driver_errors("commit"):
                    await conn.execute("COMMIT")
            except BaseException:
                await _rollback(conn)
                raise

    async def migrate(self) -> None:
        """Apply missing migrations, each in its own ``BEGIN IMMEDIATE`` transaction."""
        self._require_writer()
        async with self._lock:
            conn = self._require_writer()
            with translate_driver_errors("migrate"):
                await conn.execute(SCHEMA_MIGRATIONS_DDL)
                for migration in load_migrations("sqlite"):
                    await conn.execute("BEGIN IMMEDIATE")
                    try:
                        # Re-checked under the write lock: another process may have won.
                        rows = await conn.execute_fetchall(
                            "SELECT 1 FROM schema_migrations WHERE version = ?1",
                            (migration.version,),
                        )
                        if not list(rows):
                            for statement in split_statements(migration.sql):
                                await conn.execute(statement)
                            await conn.execute(
                                "INSERT INTO schema_migrations (version, name, applied_ns) "
                                "VALUES (?1, ?2, ?3)",
                                (migration.version, migration.name, time.time_ns()),
                            )
                            logger.info(
                                "applied sqlite migration %04d_%s",
                                migration.version,
                                migration.name,
                            )
                    except BaseException:
                        await _rollback(conn)
                        raise
                    await conn.execute("COMMIT")


async def _rollback(conn: aiosqlite.Connection) -> None:
    """Roll back if a transaction is open; a failing rollback is logged, not raised,
    so the error that caused it is the one that propagates."""
    try:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
    except Exception:
        logger.exception("sqlite rollback failed")
