"""Store fixtures: a migrated store of each engine, for the data and cache tests.

``store`` is parametrized over both engines, so every test that takes it runs
twice:

- ``sqlite``: a fresh database file in ``tmp_path``;
- ``postgres``: the shared server, in a schema created for this test session
  (``pg_schema``) and dropped at its end; tables are emptied before each test.
  A missing server fails loudly.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from runtime.data import PostgresStore, SqliteStore, Store

# Same source as tests/conftest.py's function-scoped ``postgres_dsn``; needed here
# at session scope for the schema.
SESSION_POSTGRES_DSN = os.environ.get(
    "RUNTIME_CACHE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)

DATA_TABLES = (
    "book_levels",
    "book_sides",
    "prices",
    "positions",
    "account_risk",
    "orders",
    "strategies",
)


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _create_schema(dsn: str, schema: str) -> None:
    store = await PostgresStore(dsn, schema=schema, connect_timeout=10).connect()
    try:
        await store.migrate()
    finally:
        await store.close()


@pytest.fixture(scope="session", name="pg_schema")
def pg_schema_fixture() -> Iterator[str]:
    """A migrated schema of its own for this test session, dropped afterwards."""
    postgres_dsn = SESSION_POSTGRES_DSN
    schema = f"rt_data_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_create_schema(postgres_dsn, schema))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {postgres_dsn} is not usable: {exc}")
    try:
        yield schema
    finally:
        asyncio.run(_drop_schema(postgres_dsn, schema))


async def _truncate(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema}, timeout=10)
    try:
        await conn.execute(f"TRUNCATE {', '.join(DATA_TABLES)}")
    finally:
        await conn.close()


@pytest.fixture(name="pg_store")
async def pg_store_fixture(postgres_dsn: str, pg_schema: str) -> AsyncIterator[PostgresStore]:
    """A connected PostgresStore on the session schema, with empty tables."""
    await _truncate(postgres_dsn, pg_schema)
    store = await PostgresStore(postgres_dsn, schema=pg_schema, max_size=4).connect()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(name="sqlite_store")
async def sqlite_store_fixture(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A connected, migrated SqliteStore on a fresh file."""
    store = await SqliteStore(tmp_path / "store.db").connect()
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgres"], name="engine")
def engine_fixture(request: pytest.FixtureRequest) -> str:
    """Name of the engine the parametrized ``store`` runs on."""
    return str(request.param)


@pytest.fixture(name="store")
def store_fixture(engine: str, request: pytest.FixtureRequest) -> Store:
    """A migrated, empty store of each engine (contract tests run on both)."""
    name = "sqlite_store" if engine == "sqlite" else "pg_store"
    value: Store = request.getfixturevalue(name)
    return value
