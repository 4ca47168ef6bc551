"""Schema migrations: applied once, recorded in schema_migrations, a second run is a no-op."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest

from runtime.data import PostgresStore, SqliteStore
from runtime.data._migrations import load_migrations, split_statements


@pytest.mark.parametrize("engine_name", ["postgres", "sqlite"])
def test_each_engine_ships_versioned_migration_files(engine_name: str) -> None:
    migrations = load_migrations(engine_name)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "initial"
    assert "CREATE TABLE orders" in migrations[0].sql


def test_split_statements_keeps_whole_statements_and_drops_comments() -> None:
    script = "-- header\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nCREATE TABLE b (y INT);\n-- end\n"
    assert split_statements(script) == [
        "-- header\nCREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE TABLE b (y INT);",
    ]


async def _sqlite_catalog(path: str) -> tuple[list[Any], list[Any]]:
    async with aiosqlite.connect(path) as conn:
        tables = list(
            await conn.execute_fetchall("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        )
        rows = list(await conn.execute_fetchall("SELECT * FROM schema_migrations ORDER BY 1"))
    return tables, rows


async def test_sqlite_migrate_twice_is_a_no_op(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    store = await SqliteStore(path).connect()
    try:
        await store.migrate()
        before = await _sqlite_catalog(path)
        await store.migrate()
        after = await _sqlite_catalog(path)
    finally:
        await store.close()
    tables, rows = before
    assert after == before
    assert len(rows) == len(load_migrations("sqlite"))
    assert {"prices", "book_levels", "orders", "schema_migrations"} <= {t[1] for t in tables}


async def _pg_catalog(dsn: str, schema: str) -> tuple[list[Any], list[Any]]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = $1 ORDER BY 1, 2",
            schema,
        )
        rows = await conn.fetch(f'SELECT * FROM "{schema}".schema_migrations ORDER BY version')
    finally:
        await conn.close()
    return [tuple(c) for c in columns], [tuple(r) for r in rows]


async def test_postgres_migrate_twice_is_a_no_op(postgres_dsn: str, pg_schema: str) -> None:
    store = await PostgresStore(postgres_dsn, schema=pg_schema).connect()
    try:
        before = await _pg_catalog(postgres_dsn, pg_schema)
        await store.migrate()
        await store.migrate()
        after = await _pg_catalog(postgres_dsn, pg_schema)
    finally:
        await store.close()
    columns, rows = before
    assert after == before
    assert len(rows) == len(load_migrations("postgres"))
    assert ("prices", "bid", "numeric") in columns
    assert ("orders", "order_id", "text") in columns
