"""open_store: URL forms of both engines, bad URLs, unreachable servers, no leaked passwords."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from runtime.data import (
    PostgresStore,
    SqliteStore,
    StoreConfigurationError,
    StoreError,
    StoreUnavailableError,
    open_store,
    redact_url,
)
from runtime.data.url import _sqlite_path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite://:memory:", ":memory:"),
        ("sqlite:///data/store.db", "data/store.db"),
        ("sqlite:////var/lib/store.db", "/var/lib/store.db"),
    ],
)
def test_sqlite_url_forms_map_to_paths(url: str, path: str) -> None:
    assert _sqlite_path(url, url.partition("://")[2]) == path


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://user@host/db", "unsupported store URL scheme 'mysql'"),
        ("not a url", "malformed store URL"),
        ("", "non-empty"),
        ("sqlite://relative.db", "malformed SQLite URL"),
        ("sqlite:///", "names no database file"),
        ("sqlite:///dir/", "names no database file"),
        ("sqlite:///x.db?mode=ro", "query strings"),
        ("postgresql://user@host:notaport/db", "malformed PostgreSQL URL"),
        ("postgresql:///db", "names no host"),
    ],
)
async def test_bad_urls_raise_configuration_error_naming_the_problem(
    url: str, problem: str
) -> None:
    with pytest.raises(StoreConfigurationError, match=problem):
        await open_store(url)


async def test_unknown_option_is_a_configuration_error() -> None:
    with pytest.raises(StoreConfigurationError, match="bad option"):
        await open_store("sqlite:///:memory:", pool_size=3)


async def test_non_bool_migrate_is_a_configuration_error() -> None:
    with pytest.raises(StoreConfigurationError, match="migrate"):
        await open_store("sqlite:///:memory:", migrate="yes")


def test_password_never_appears_in_repr_or_redacted_url() -> None:
    url = "postgresql://trader:s3cr3t-pw@db.example:5432/prod"
    assert redact_url(url) == "postgresql://trader:***@db.example:5432/prod"
    assert "s3cr3t-pw" not in repr(PostgresStore(url))


async def test_password_never_appears_in_configuration_errors() -> None:
    with pytest.raises(StoreConfigurationError) as info:
        await open_store("postgresql://trader:s3cr3t-pw@host:bad/db")
    assert "s3cr3t-pw" not in str(info.value)
    assert "***" in str(info.value)


async def test_sqlite_memory_store_opens_unmigrated_then_migrates() -> None:
    store = await open_store("sqlite://:memory:")
    try:
        assert isinstance(store, SqliteStore)
        with pytest.raises(StoreError, match="no such table") as info:  # not migrated yet
            await store.get_price("SYM000")
        assert not isinstance(info.value, StoreUnavailableError)
        await store.migrate()
        assert await store.get_price("SYM000") is None
    finally:
        await store.close()


async def test_sqlite_file_store_opens_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///rel.db", migrate=True)
    try:
        assert await store.get_risk() is None
    finally:
        await store.close()
    assert (tmp_path / "rel.db").exists()


async def test_postgres_url_opens_with_both_schemes(postgres_dsn: str, pg_schema: str) -> None:
    for url in (postgres_dsn, postgres_dsn.replace("postgresql://", "postgres://", 1)):
        store = await open_store(url, schema=pg_schema, max_size=2)
        try:
            assert isinstance(store, PostgresStore)
            assert await store.get_price("nothing-here") is None
        finally:
            await store.close()


async def test_closed_port_raises_unavailable_within_connect_timeout() -> None:
    url = f"postgresql://postgres:pw-not-shown@127.0.0.1:{_free_port()}/test"
    with pytest.raises(StoreUnavailableError) as info:
        await open_store(url, connect_timeout=2.0)
    assert "pw-not-shown" not in str(info.value)


async def test_closed_store_raises_unavailable_and_close_is_idempotent(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/c.db", migrate=True)
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailableError, match="closed"):
        await store.get_price("SYM000")
    with pytest.raises(StoreUnavailableError, match="closed"):
        async with store.transaction():
            pass


async def test_closed_postgres_store_raises_unavailable(postgres_dsn: str, pg_schema: str) -> None:
    store = await open_store(postgres_dsn, schema=pg_schema)
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailableError, match="closed"):
        await store.get_risk()
