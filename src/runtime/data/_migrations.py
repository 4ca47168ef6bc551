"""Versioned schema migrations shipped as package data.

Files live in ``runtime/data/migrations/<engine>/NNNN_<name>.sql`` and are applied
in version order; the ``schema_migrations`` table records each applied version,
so applying again is a no-op.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

__all__ = ["SCHEMA_MIGRATIONS_DDL", "Migration", "load_migrations", "split_statements"]

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

SCHEMA_MIGRATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ns BIGINT NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its version, name and SQL text."""

    version: int
    name: str
    sql: str


def load_migrations(engine: str) -> tuple[Migration, ...]:
    """The migrations of ``engine`` (``"postgres"`` or ``"sqlite"``), oldest first."""
    folder = resources.files("runtime.data") / "migrations" / engine
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if not found or len(set(versions)) != len(versions):
        raise RuntimeError(f"migrations of {engine!r} are missing or duplicated: {versions}")
    return tuple(found)


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (SQLite's own completeness test)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            text = buffer.strip()
            if text and not all(
                part.strip().startswith("--") or not part.strip() for part in text.splitlines()
            ):
                statements.append(text)
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of the script: {buffer[:80]!r}")
    return statements
