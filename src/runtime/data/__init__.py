"""``runtime.data``: the source of truth the cache fronts (PostgreSQL or SQLite).

Open a store with :func:`open_store` (``postgresql://...`` or ``sqlite:///...``),
use it through the :class:`Store` protocol, and group writes with
``async with store.transaction() as tx``. Every error is a :class:`StoreError`.
This package never imports ``runtime.cache``.
"""

from __future__ import annotations

from runtime.data.errors import (
    ConflictError,
    NotFoundError,
    StoreConfigurationError,
    StoreError,
    StoreUnavailableError,
    ValidationError,
)
from runtime.data.fills import MARGIN_RATE
from runtime.data.postgres import PostgresStore
from runtime.data.seed import SeededUniverse, build_universe, seed_workload
from runtime.data.sqlite import SqliteStore
from runtime.data.store import Store, StoreTransaction
from runtime.data.url import open_store, redact_url

__all__ = [
    "MARGIN_RATE",
    "ConflictError",
    "NotFoundError",
    "PostgresStore",
    "SeededUniverse",
    "SqliteStore",
    "Store",
    "StoreConfigurationError",
    "StoreError",
    "StoreTransaction",
    "StoreUnavailableError",
    "ValidationError",
    "build_universe",
    "open_store",
    "redact_url",
    "seed_workload",
]
