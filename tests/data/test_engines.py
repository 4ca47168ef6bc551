"""Engine-specific behaviour: SQLite in-memory serialization, PostgreSQL pool bounds."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from runtime.data import (
    PostgresStore,
    SqliteStore,
    Store,
    StoreConfigurationError,
    StoreTransaction,
    StoreUnavailableError,
)
from support import factories as f


def test_both_engines_satisfy_the_store_protocol(store: Store) -> None:
    assert isinstance(store, Store)
    assert isinstance(store, StoreTransaction)


async def test_sqlite_memory_store_serializes_fills_and_reads() -> None:
    store = await SqliteStore(":memory:").connect()
    try:
        await store.migrate()
        await store.put_risk(f.risk())
        await store.put_order(f.order("o", quantity="20"))
        fills = [store.apply_fill("o", Decimal(1), Decimal(2), i) for i in range(20)]
        reads = [store.get_position("SYM000") for _ in range(20)]
        results = await asyncio.gather(*fills, *reads)
        versions = sorted(r.order.version for r in results[:20])  # type: ignore[union-attr]
        assert versions == list(range(2, 22))
        position = await store.get_position("SYM000")
        assert position is not None
        assert position.quantity == Decimal(20)
    finally:
        await store.close()


async def test_sqlite_reader_never_sees_an_uncommitted_transaction(
    sqlite_store: SqliteStore,
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow_transaction() -> None:
        async with sqlite_store.transaction() as tx:
            await tx.put_price(f.price())
            entered.set()
            await release.wait()

    task = asyncio.create_task(slow_transaction())
    await asyncio.wait_for(entered.wait(), 10)
    assert await sqlite_store.get_price("SYM000") is None
    release.set()
    await asyncio.wait_for(task, 10)
    assert await sqlite_store.get_price("SYM000") is not None


async def test_postgres_pool_exhaustion_is_unavailable_not_a_hang(
    postgres_dsn: str, pg_schema: str
) -> None:
    store = await PostgresStore(
        postgres_dsn, schema=pg_schema, min_size=1, max_size=1, acquire_timeout=0.2
    ).connect()
    try:
        release = asyncio.Event()
        held = asyncio.Event()

        async def hold_the_only_connection() -> None:
            async with store.transaction():
                held.set()
                await release.wait()

        task = asyncio.create_task(hold_the_only_connection())
        await asyncio.wait_for(held.wait(), 10)
        with pytest.raises(StoreUnavailableError, match="timed out"):
            await store.get_price("SYM000")
        release.set()
        await asyncio.wait_for(task, 10)
        assert await store.get_price("SYM000") is None
    finally:
        await store.close()


async def test_postgres_reader_never_sees_an_uncommitted_transaction(
    pg_store: PostgresStore,
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow_transaction() -> None:
        async with pg_store.transaction() as tx:
            await tx.put_price(f.price())
            entered.set()
            await release.wait()

    task = asyncio.create_task(slow_transaction())
    await asyncio.wait_for(entered.wait(), 10)
    assert await pg_store.get_price("SYM000") is None
    release.set()
    await asyncio.wait_for(task, 10)
    assert await pg_store.get_price("SYM000") is not None


@pytest.mark.parametrize(
    "options",
    [
        {"max_size": 0},
        {"min_size": 3, "max_size": 2},
        {"schema": "Robert'); DROP"},
        {"connect_timeout": 0},
        {"acquire_timeout": True},
    ],
)
def test_postgres_rejects_bad_options(options: dict[str, object]) -> None:
    with pytest.raises(StoreConfigurationError):
        PostgresStore("postgresql://u@h/db", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [{"busy_timeout": -1}, {"synchronous": "SOMETIMES"}])
def test_sqlite_rejects_bad_options(options: dict[str, object]) -> None:
    with pytest.raises(StoreConfigurationError):
        SqliteStore("x.db", **options)  # type: ignore[arg-type]
