"""One exception tree, and driver errors mapped to it in one place."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import asyncpg
import pytest

import runtime.data
from runtime.data import errors
from runtime.data.errors import (
    ConflictError,
    NotFoundError,
    StoreConfigurationError,
    StoreError,
    StoreUnavailableError,
    ValidationError,
    translate_driver_errors,
)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ConnectionRefusedError(111, "refused"), StoreUnavailableError),
        (TimeoutError(), StoreUnavailableError),
        (OSError("network down"), StoreUnavailableError),
        (sqlite3.OperationalError("database is locked"), StoreUnavailableError),
        (sqlite3.ProgrammingError("Cannot operate on a closed database."), StoreUnavailableError),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), ConflictError),
        (sqlite3.OperationalError("no such table: prices"), StoreError),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), ConflictError),
        (asyncpg.exceptions.SerializationError("serialize"), ConflictError),
        (asyncpg.exceptions.UniqueViolationError("dup"), ConflictError),
        (asyncpg.exceptions.TooManyConnectionsError("too many"), StoreUnavailableError),
        (asyncpg.exceptions.AdminShutdownError("shutdown"), StoreUnavailableError),
        (asyncpg.exceptions.UndefinedTableError("no table"), StoreError),
        (asyncpg.exceptions.InterfaceError("pool is closing"), StoreUnavailableError),
    ],
)
def test_driver_errors_map_to_the_most_specific_store_error(
    raised: Exception, expected: type[StoreError]
) -> None:
    with pytest.raises(StoreError) as info, translate_driver_errors("get_price"):
        raise raised
    assert type(info.value) is expected
    assert info.value.__cause__ is raised
    assert "get_price" in str(info.value)


def test_store_errors_and_unrelated_errors_pass_through_unchanged() -> None:
    original = NotFoundError("order", "x")
    with pytest.raises(NotFoundError) as info, translate_driver_errors("op"):
        raise original
    assert info.value is original
    with pytest.raises(KeyError), translate_driver_errors("op"):
        raise KeyError("not a driver error")


def test_tree_has_one_root_and_value_errors_where_input_is_bad() -> None:
    for cls in (StoreConfigurationError, ValidationError, ConflictError, NotFoundError):
        assert issubclass(cls, StoreError)
    assert issubclass(StoreUnavailableError, StoreError)
    assert issubclass(ValidationError, ValueError)
    assert issubclass(StoreConfigurationError, ValueError)
    error = ValidationError("bid", -1, "must not be negative")
    assert (error.field, error.value) == ("bid", -1)
    assert str(error) == "invalid bid -1: must not be negative"


def test_public_api_matches_dunder_all() -> None:
    for module in (runtime.data, errors):
        for name in module.__all__:
            assert getattr(module, name) is not None
    assert sorted(runtime.data.__all__) == sorted(set(runtime.data.__all__))
    public = {n for n in dir(runtime.data) if not n.startswith("_")}
    modules = {
        "errors",
        "fills",
        "postgres",
        "seed",
        "sqlite",
        "store",
        "url",
        "validation",
        "annotations",
    }
    assert public - modules == set(runtime.data.__all__)


def test_data_layer_never_imports_the_cache() -> None:
    code = (
        "import sys, runtime.data, runtime.data.seed; "
        "bad = [m for m in sys.modules if m.startswith('runtime.cache')]; "
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
