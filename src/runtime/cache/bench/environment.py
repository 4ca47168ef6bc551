"""The benchmark's surroundings: Redis and the store it runs on, and the facts it reports.

:func:`open_environment` yields an :class:`Environment` with a Redis URL (the
given one, or a private :class:`~.embedded.EmbeddedRedis`) and a seeded store
(the given one, or SQLite in a temporary directory). It never clobbers data
silently: a Redis database that holds keys is refused, a store that already
holds a seeded universe is refused unless ``reuse_store``; a PostgreSQL store
gets a temporary schema that is dropped at the end. Everything it started is
stopped and removed on exit, errors and cancellation included.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg

from runtime.cache.bench.embedded import EmbeddedRedis, SetupError
from runtime.cache.manager import CacheManager, redact_url
from runtime.cache.topology import clear_matching
from runtime.data import SeededUniverse, Store, open_store, seed_workload
from runtime.data import redact_url as redact_store_url

__all__ = ["Environment", "library_versions", "machine_facts", "open_environment"]

_FAMILY_PATTERNS = ("price:*", "pos:*", "book:*", "risk:*", "ord:*", "strat:*", "~v:*")


@dataclass(slots=True)
class Environment:
    """Where one run happens (see the module doc)."""

    redis_url: str
    embedded: EmbeddedRedis | None
    store: Store
    store_description: str
    universe: SeededUniverse

    @property
    def redis_description(self) -> str:
        if self.embedded is not None:
            return f"embedded redis-server ({self.embedded.url})"
        return redact_url(self.redis_url)


async def _check_redis(url: str, *, must_be_empty: bool) -> None:
    manager = CacheManager(url)
    try:
        if not await manager.health_check():
            raise SetupError(
                f"Redis at {manager.url} does not answer: {manager.status().last_error}"
            )
        if must_be_empty:
            keys = await manager.get_connection().dbsize()
            if keys:
                raise SetupError(
                    f"Redis database at {manager.url} holds {keys} keys; "
                    "point --redis-url at an empty database (the run writes cache keys there)"
                )
    finally:
        await manager.close()


async def remove_cache_keys(url: str) -> int:
    """UNLINK the keys of every cache family and their fences (SCAN, never KEYS),
    on every primary of whatever topology ``url`` names."""
    manager = CacheManager(url, connect_timeout=1.0, socket_timeout=1.0, pool_timeout=1.0)
    removed = 0
    try:
        client = manager.get_connection()
        for pattern in _FAMILY_PATTERNS:
            removed += await clear_matching(client, pattern, 1000)
    finally:
        await manager.close()
    return removed


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _holds_data(store: Store, symbol: str) -> bool:
    return await store.get_risk() is not None or await store.get_price(symbol) is not None


@contextlib.asynccontextmanager
async def open_environment(
    *,
    redis_url: str | None,
    store_url: str | None,
    reuse_store: bool,
    symbols: int,
    levels: int,
    strategies: int,
    seed: int,
) -> AsyncIterator[Environment]:
    """Start or check Redis, open and seed the store; undo it all on exit."""
    embedded: EmbeddedRedis | None = None
    store: Store | None = None
    directory: Path | None = None
    pg_schema: str | None = None
    try:
        if redis_url is None:
            embedded = EmbeddedRedis()
            await embedded.start()
            url = embedded.url
        else:
            await _check_redis(redis_url, must_be_empty=True)
            url = redis_url
        options: dict[str, Any] = {"migrate": True}
        if store_url is None:
            directory = Path(tempfile.mkdtemp(prefix="rc-bench-store-"))
            store_url = f"sqlite:///{directory / 'store.db'}"
            description = "embedded SQLite (temporary file)"
        elif store_url.partition("://")[0].lower() in ("postgresql", "postgres"):
            pg_schema = f"rc_bench_{os.getpid()}_{secrets.token_hex(4)}"
            options |= {"schema": pg_schema, "max_size": 20}
            description = f"{redact_store_url(store_url)} (temporary schema {pg_schema})"
        else:
            description = redact_store_url(store_url)
        store = await open_store(store_url, **options)
        if pg_schema is None and not reuse_store and await _holds_data(store, "SYM000"):
            raise SetupError(
                f"the store {description} already holds data; the run would overwrite it: "
                "pass --reuse-store to allow that, or use an empty store"
            )
        universe = await seed_workload(
            store, symbols=symbols, levels=levels, strategies=strategies, seed=seed
        )
        yield Environment(url, embedded, store, description, universe)
    finally:
        try:
            if store is not None:
                await store.close()
            if pg_schema is not None and store_url is not None:
                await _drop_schema(store_url, pg_schema)
            if redis_url is not None and embedded is None and store is not None:
                with contextlib.suppress(Exception):
                    await remove_cache_keys(redis_url)
        finally:
            if embedded is not None:
                embedded.close()
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries the numbers depend on (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in ("runtime-cache", "redis", "hiredis", "asyncpg", "aiosqlite", "uvloop", "rich"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def machine_facts() -> dict[str, Any]:
    """CPU count and model, memory, OS, Python implementation."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "python_implementation": f"{platform.python_implementation()} {sys.version.split()[0]}",
    }
