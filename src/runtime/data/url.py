"""``open_store(url)``: one entry point for both engines, and URL redaction.

Accepted URLs:

- ``postgresql://user:password@host:port/database`` (also ``postgres://``);
  query parameters are passed to asyncpg (e.g. ``sslmode``);
- ``sqlite:///relative/path.db`` (three slashes: relative to the working
  directory), ``sqlite:////absolute/path.db`` (four: absolute),
  ``sqlite:///:memory:`` and ``sqlite://:memory:``.

Anything else raises :class:`~runtime.data.errors.StoreConfigurationError`
naming the problem. Passwords never appear in a message or a ``repr``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from runtime.data.errors import StoreConfigurationError
from runtime.data.store import Store

if TYPE_CHECKING:
    from runtime.data.postgres import PostgresStore
    from runtime.data.sqlite import SqliteStore

__all__ = ["open_store", "redact_url"]

_PASSWORD = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/:@]*):[^@/]*@")
_POSTGRES_SCHEMES = ("postgresql", "postgres")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    return _PASSWORD.sub(r"\1:***@", url)


async def open_store(url: str, **options: Any) -> Store:
    """A connected store for ``url``; migrated only if ``migrate=True`` is passed.

    Other keyword options go to the engine's constructor
    (:class:`~runtime.data.postgres.PostgresStore`: ``min_size``, ``max_size``,
    ``connect_timeout``, ``command_timeout``, ``acquire_timeout``, ``schema``;
    :class:`~runtime.data.sqlite.SqliteStore`: ``busy_timeout``, ``synchronous``).
    Raises ``StoreConfigurationError`` for a bad URL or option and
    ``StoreUnavailableError`` if the database cannot be reached.
    """
    migrate = options.pop("migrate", False)
    if not isinstance(migrate, bool):
        raise StoreConfigurationError(f"migrate must be a bool, got {migrate!r}")
    store = _build(url, options)
    await store.connect()
    if migrate:
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
    return store


def _build(url: object, options: dict[str, Any]) -> PostgresStore | SqliteStore:
    # Engines are imported here: they import this module for redact_url.
    from runtime.data.postgres import PostgresStore
    from runtime.data.sqlite import SqliteStore

    if not isinstance(url, str) or not url:
        raise StoreConfigurationError(
            f"store URL must be a non-empty str, got {type(url).__name__}"
        )
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreConfigurationError(
            f"malformed store URL {redact_url(url)!r}: expected scheme://..."
        )
    scheme = scheme.lower()
    try:
        if scheme in _POSTGRES_SCHEMES:
            _check_postgres(url)
            return PostgresStore(url, **options)
        if scheme == "sqlite":
            return SqliteStore(_sqlite_path(url, rest), **options)
    except TypeError as exc:  # an unknown keyword option
        raise StoreConfigurationError(f"bad option for {scheme} store: {exc}") from None
    raise StoreConfigurationError(
        f"unsupported store URL scheme {scheme!r} in {redact_url(url)!r}: "
        "use postgresql://, postgres:// or sqlite://"
    )


def _check_postgres(url: str) -> None:
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric port
    except ValueError as exc:
        raise StoreConfigurationError(f"malformed PostgreSQL URL {shown!r}: {exc}") from None
    if not parts.hostname:
        raise StoreConfigurationError(f"PostgreSQL URL {shown!r} names no host")
    if parts.fragment:
        raise StoreConfigurationError(f"PostgreSQL URL {shown!r} has a fragment")


def _sqlite_path(url: str, rest: str) -> str:
    if rest == ":memory:":
        return ":memory:"
    if not rest.startswith("/"):
        raise StoreConfigurationError(
            f"malformed SQLite URL {url!r}: use sqlite:///relative/path, "
            "sqlite:////absolute/path or sqlite:///:memory:"
        )
    path = rest[1:]
    if not path or path.endswith("/"):
        raise StoreConfigurationError(f"SQLite URL {url!r} names no database file")
    if "?" in path or "#" in path:
        raise StoreConfigurationError(f"SQLite URL {url!r}: query strings are not supported")
    return path
