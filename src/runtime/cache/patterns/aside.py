"""Cache-aside reads: the cache, else the loader, stored with the family's TTL.

``CacheAside.get(key, loader)`` (C4-C7, C11):

- hit: the decoded, typed value, from one round trip;
- miss: the loader runs once however many callers miss together (single-flight,
  C5); its value is stored with the family TTL through the version-fenced script
  (a value loaded before a concurrent write or invalidation never overwrites
  the newer state, C7: see :mod:`runtime.cache.scripts` for why versions) and
  returned to every waiter; a loader error reaches every waiter and is not cached;
- an entry that does not decode (or holds the wrong Redis type) is a miss: it is
  deleted, counted and logged (C4);
- refresh-ahead (C6, per family): an entry read in the last ``fraction`` of its
  TTL is returned at once and reloaded in the background, once;
- negative caching (optional): a loader's ``None`` is cached as "absent" for
  ``negative_ttl``, so an unknown order id does not hammer the database;
- any cache-side fault, or the breaker open, sends the read to the loader, counted
  as a fallback: nothing is raised to the caller for a cache-side fault (C11).

The family (Redis type, TTL, codec) follows from the key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from datetime import timedelta
from typing import Any, TypeVar, cast

from runtime.cache.codecs import ABSENT, Absent, Entity, decode_book, decode_hash, family_of
from runtime.cache.entries import Entry, EntryStore
from runtime.cache.exceptions import (
    CacheError,
    CacheResponseError,
    ConfigurationError,
    DecodeError,
    InvalidValueError,
)
from runtime.cache.fallback import FallbackHandler, fallback_reason
from runtime.cache.manager import RedisClient
from runtime.cache.models import CacheKeys, Family, ParsedKey, to_milliseconds
from runtime.cache.singleflight import SingleFlight
from runtime.cache.stats import StatsRecorder
from runtime.domain import BookSide

__all__ = ["CacheAside", "Loader"]

_log = logging.getLogger(__name__)

T = TypeVar("T", bound=Entity)
Loader = Callable[[], Awaitable[T | None]]
"""An ``async () -> value | None`` that reads the source of truth."""


def _decode(key: str, parsed: ParsedKey, raw: Any) -> Entity | Absent | None:
    """The entry's value, ``ABSENT`` for a negative entry, None when there is no entry."""
    if not raw:
        return None
    if parsed.family is Family.BOOK:
        return decode_book(key, parsed, raw)
    return decode_hash(key, parsed, raw)


class CacheAside:
    """Cache-aside reads over a :class:`FallbackHandler`.

    ``refresh_ahead`` maps a family to the fraction of its TTL (0 < f < 1) at the
    end of which a read triggers a background reload; ``negative_ttl`` enables
    negative caching with that TTL.
    """

    def __init__(
        self,
        fallback: FallbackHandler,
        *,
        refresh_ahead: Mapping[Family | str, float] | None = None,
        negative_ttl: float | timedelta | None = None,
        stats: StatsRecorder | None = None,
        entries: EntryStore | None = None,
    ) -> None:
        self._fallback = fallback
        self._schema = fallback.schema
        self._negative = negative_ttl is not None
        negative_ms = to_milliseconds("negative_ttl", negative_ttl) if negative_ttl else 1_000
        self._entries = entries or EntryStore(self._schema, negative_ttl_ms=negative_ms)
        self._stats = stats or StatsRecorder()
        # Shared with the writes, which detach a key's loads once they commit.
        self._flights: SingleFlight[Hashable, Any] = fallback.loads
        self._refresh_ms: dict[Family, int] = {}
        for name, fraction in (refresh_ahead or {}).items():
            try:
                family = Family(name)
            except ValueError:
                raise ConfigurationError(f"unknown key family {name!r} in refresh_ahead") from None
            if not 0 < fraction < 1:
                raise ConfigurationError(
                    f"refresh_ahead[{family.value}] must be a fraction in (0, 1), got {fraction!r}"
                )
            self._refresh_ms[family] = int(self._schema.ttl_ms(family) * fraction)

    @property
    def stats(self) -> StatsRecorder:
        return self._stats

    @property
    def entries(self) -> EntryStore:
        return self._entries

    @property
    def fallback(self) -> FallbackHandler:
        return self._fallback

    @property
    def flights(self) -> SingleFlight[Hashable, Any]:
        """The single-flight of loads: one store load per key at a time."""
        return self._flights

    @property
    def negative_caching(self) -> bool:
        return self._negative

    @property
    def refreshes_ahead(self) -> bool:
        """True if refresh-ahead is on for any family."""
        return bool(self._refresh_ms)

    def refresh_window_ms(self, family: Family) -> int | None:
        """The remaining-TTL threshold below which a read refreshes, or None (off)."""
        return self._refresh_ms.get(family)

    async def get(self, key: str, loader: Loader[T]) -> T | None:
        """The value cached under ``key``, else ``await loader()`` (stored, then returned).

        Raises :class:`InvalidKeyError` for a key outside the schema, and what the
        loader raises; never a cache-side fault.
        """
        parsed = CacheKeys.parse(key)
        return cast("T | None", await self.read(key, parsed, loader))

    async def read(
        self, key: str, parsed: ParsedKey, loader: Loader[Any], *, depth: int = -1
    ) -> Any:
        """:meth:`get` for a parsed key; ``depth`` limits a book side's levels."""
        family = parsed.family
        if self._fallback.must_bypass(key, family):
            reason = self._fallback.bypass_reason()
            return await self.fallback_read(key, family, loader, reason, depth=depth)
        refresh_ms = self._refresh_ms.get(family)
        entries = self._entries
        with_ttl = refresh_ms is not None

        async def operation(client: RedisClient) -> tuple[Any, int]:
            return await entries.read(client, key, family, depth=depth, with_ttl=with_ttl)

        try:
            raw, pttl = await self._fallback.execute(operation)
        except CacheResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                return await self.fallback_read(key, family, loader, "error", depth=depth)
            self.drop_undecodable(key, parsed, DecodeError(key, str(exc)))
            raw, pttl = None, -3
        except CacheError as exc:
            reason = fallback_reason(exc)
            return await self.fallback_read(key, family, loader, reason, depth=depth)
        value = self.decode_or_drop(key, parsed, raw)
        if value is None:
            self._stats.add(family, "misses")
            return await self.load(key, parsed, loader, depth=depth)
        if refresh_ms is not None and 0 <= pttl <= refresh_ms:
            self.refresh(key, parsed, loader)
        if value is ABSENT:
            self._stats.add(family, "negative_hits")
            return None
        self._stats.add(family, "hits")
        return value

    def decode_or_drop(self, key: str, parsed: ParsedKey, raw: Any) -> Entity | Absent | None:
        """Decode a raw entry; an undecodable one is counted, logged, dropped: None (C4)."""
        try:
            return _decode(key, parsed, raw)
        except DecodeError as exc:
            self.drop_undecodable(key, parsed, exc)
            return None

    def drop_undecodable(self, key: str, parsed: ParsedKey, exc: DecodeError) -> None:
        """Count and log an entry that does not decode, and delete it in the background."""
        self._stats.add(parsed.family, "decode_failures")
        _log.warning("dropping undecodable entry family=%s: %s", parsed.family.value, exc)
        self._flights.start(("drop", key), lambda: self._drop(key))

    async def _drop(self, key: str) -> None:
        try:
            await self._fallback.execute(lambda client: client.unlink(key))
        except CacheError as exc:
            _log.warning("could not delete undecodable entry %s: %r", key, exc)

    async def load(
        self, key: str, parsed: ParsedKey, loader: Loader[Any], *, depth: int = -1
    ) -> Any:
        """Load ``key`` once for all concurrent callers, store it, return it (C5)."""
        value = await self._flights.run(key, lambda: self._load_and_store(key, parsed, loader))
        return _truncate(value, depth)

    def refresh(self, key: str, parsed: ParsedKey, loader: Loader[Any]) -> None:
        """Reload ``key`` in the background unless a load of it is already running (C6)."""
        if self._flights.start(key, lambda: self._load_and_store(key, parsed, loader)):
            self._stats.add(parsed.family, "refreshes")

    async def _load_and_store(self, key: str, parsed: ParsedKey, loader: Loader[Any]) -> Any:
        family = parsed.family
        started = time.monotonic()
        try:
            value = await self._fallback.load(loader)
        except BaseException:
            self._stats.add(family, "load_errors")
            raise
        self._stats.add(family, "loads")
        if value is not None and family_of(value) is not family:
            raise InvalidValueError(
                "loader result", value, f"is not a {family.value} entity for {key!r}"
            )
        if (time.monotonic() - started) * 1000 >= self._schema.fence_margin_ms:
            # A write's fence may have expired while this load ran: its value could
            # be older than what the cache has seen, so it is returned, not cached (C7).
            _log.warning("load of %s outlived the fence margin; not cached", key)
            return value
        if value is None:
            if self._negative:
                await self.store([Entry(key, family, ABSENT)])
            return None
        await self.store([Entry(key, family, value)])
        return value

    async def store(self, batch: list[Entry]) -> None:
        """Write loaded entries, fenced by version; cache faults are logged, not raised."""
        entries = self._entries

        async def operation(client: RedisClient) -> list[bool]:
            return await entries.write(client, batch)

        try:
            written = await self._fallback.execute(operation)
        except CacheError as exc:
            _log.debug("loaded value not cached (%r): %s", exc, [e.key for e in batch])
            return
        for entry, ok in zip(batch, written, strict=True):
            if not ok:
                self._stats.add(entry.family, "stale_sets_rejected")
                _log.debug("stale set refused key=%s version=%d", entry.key, entry.version)

    async def fallback_read(
        self, key: str, family: Family, loader: Loader[Any], reason: str, *, depth: int = -1
    ) -> Any:
        """Serve ``key`` from the loader (shared by concurrent callers), counted as a fallback."""
        started = time.perf_counter()
        # Same flight key as a miss: the store sees one load per key at a time.
        value = await self._flights.run(key, lambda: self._fallback.load(loader))
        self._stats.add(family, "fallbacks")
        self._fallback.record_fallback(family, reason, time.perf_counter() - started)
        return _truncate(value, depth)

    async def close(self) -> None:
        """Cancel background refreshes and loads in flight (C15)."""
        await self._flights.close()


def _truncate(value: Any, depth: int) -> Any:
    if depth >= 0 and isinstance(value, BookSide) and len(value.levels) > depth:
        return BookSide(
            value.symbol, value.side, value.levels[:depth], value.timestamp_ns, value.version
        )
    return value
