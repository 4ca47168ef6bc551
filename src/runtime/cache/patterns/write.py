"""Write-through: the source of truth commits first, then the cache (C8-C10).

The seed's order (cache, then database, then invalidate on failure) lets a
reader see a value the database never committed. Here the writer commits first
and returns the committed version; only then is the value cached, with that
version, in one atomic fenced step. So:

- no reader ever sees an uncommitted value (C8); after a failed commit the cache
  does not hold the new value (it was never written);
- ``write`` returns True iff the source of truth committed;
- a failed cache update after a commit invalidates the key (and raises its
  version fence); a failed invalidation, or any write while the breaker is open,
  is remembered and invalidated before the cache serves the key again (C10);
- a multi-key write (:meth:`WriteThrough.write_all`, e.g. an order fill of
  ``ord``, ``pos`` and ``risk``) is one transaction in the store and one script
  call in Redis (C9). On Cluster those three keys live in three slots: one
  script call per slot, concurrently; each entry is still fenced and written
  with its TTL, and if any slot's call fails every key of the write is
  invalidated (C10), but a reader may briefly see one slot updated before
  another (no cross-slot atomicity exists in Cluster).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from runtime.cache.codecs import Entity, family_of
from runtime.cache.entries import PAIR_LOAD, Entry, EntryStore, key_for
from runtime.cache.exceptions import CacheError, CircuitOpenError, InvalidValueError
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import RedisClient
from runtime.cache.models import CacheKeys, Family
from runtime.cache.scripts import UNKNOWN_VERSION
from runtime.cache.stats import StatsRecorder

__all__ = ["WriteThrough", "Writer"]

_log = logging.getLogger(__name__)

E = TypeVar("E", bound=Entity)
Writer = Callable[[E], Awaitable[int]]
"""An ``async (value) -> committed version`` that writes the source of truth."""


class WriteThrough:
    """Write-through writes over a :class:`FallbackHandler`."""

    def __init__(
        self,
        fallback: FallbackHandler,
        *,
        stats: StatsRecorder | None = None,
        entries: EntryStore | None = None,
    ) -> None:
        self._fallback = fallback
        self._entries = entries or EntryStore(fallback.schema)
        self._stats = stats or StatsRecorder()

    async def write(self, key: str, value: E, writer: Writer[E]) -> bool:
        """Commit ``value`` through ``writer``, then cache it under ``key``.

        Returns True iff the writer committed. Raises :class:`InvalidKeyError` or
        :class:`InvalidValueError` when ``key`` and ``value`` do not belong
        together, and ``ValueError``/``TypeError`` from the writer (bad input)
        unchanged; any other writer error is logged and gives False. After a
        writer error or a cancellation the key is invalidated before the cache
        serves it again (the commit's outcome is unknown).
        """
        parsed = CacheKeys.parse(key)
        family = family_of(value)
        if family is not parsed.family or key_for(value) != key:
            raise InvalidValueError("value", value, f"does not belong under key {key!r}")
        try:
            version = await writer(value)
        except (ValueError, TypeError):
            self._stats.add(family, "write_failures")
            raise
        except BaseException as exc:
            # The store may have committed before the error (a lost COMMIT reply)
            # or the cancellation: the cached value can no longer be trusted.
            self._stats.add(family, "write_failures")
            self._fallback.remember_invalidation(key, family, None)
            if not isinstance(exc, Exception):
                raise
            _log.warning("write-through: commit failed key=%s: %r", key, exc)
            return False
        committed = dataclasses.replace(value, version=version)
        await self.cache_committed([committed])
        return True

    async def write_all(
        self, writer: Callable[[], Awaitable[Sequence[Entity]]]
    ) -> Sequence[Entity]:
        """Run ``writer`` (one store transaction returning the committed entities)
        and cache them all in one atomic step (C9). Returns what the writer returned;
        the writer's errors propagate (nothing is cached then)."""
        committed = await writer()
        await self.cache_committed(committed)
        return committed

    async def cache_committed(self, values: Sequence[Entity]) -> None:
        """Cache committed values in one atomic step; never raises for a cache fault.

        A failure invalidates the keys; a failed invalidation (or an open breaker)
        remembers them for recovery (C10).
        """
        batch = [Entry(key_for(value), family_of(value), value) for value in values]
        for entry in batch:
            self._stats.add(entry.family, "writes")
        try:
            await self._cache_batch(batch)
        except BaseException:
            # Cancelled mid-update: the committed values may not have reached Redis.
            self._remember(batch)
            raise
        finally:
            self._detach_loads([(entry.key, entry.family) for entry in batch])

    def _detach_loads(self, written: Sequence[tuple[str, Family]]) -> None:
        """Readers arriving after this write must not join a load that began before it."""
        loads = self._fallback.loads
        for key, _ in written:
            loads.detach(key)
        if any(family in (Family.POSITION, Family.RISK) for _, family in written):
            loads.detach_where(lambda key: isinstance(key, tuple) and key[0] == PAIR_LOAD)

    async def _cache_batch(self, batch: list[Entry]) -> None:
        entries = self._entries

        async def operation(client: RedisClient) -> list[bool]:
            return await entries.write(client, batch)

        try:
            written = await self._fallback.execute(operation)
        except CircuitOpenError:
            self._remember(batch)
            return
        except CacheError as exc:
            _log.warning(
                "write-through: cache update failed (%r); invalidating %s",
                exc,
                [entry.key for entry in batch],
            )
            await self.invalidate_entries(batch)
            return
        for entry, ok in zip(batch, written, strict=True):
            if ok:
                self._fallback.forget_invalidation(entry.key, entry.version)
            else:
                self._stats.add(entry.family, "stale_sets_rejected")

    async def invalidate(self, key: str, version: int | None = None) -> bool:
        """Delete ``key`` from the cache and fence out versions below ``version``.

        With ``version=None`` every set is refused for one fence margin. Returns
        True if Redis did it now; False if it was remembered for recovery (C10).
        """
        parsed = CacheKeys.parse(key)
        fallback = self._fallback
        entries = self._entries
        known = version if version is not None else UNKNOWN_VERSION

        async def operation(client: RedisClient) -> None:
            await entries.invalidate(client, [(key, parsed.family, known)])

        try:
            await fallback.execute(operation)
        except CacheError as exc:
            _log.warning("invalidation of %s failed (%r); remembered for recovery", key, exc)
            fallback.remember_invalidation(key, parsed.family, version)
            return False
        except BaseException:
            fallback.remember_invalidation(key, parsed.family, version)
            raise
        finally:
            self._detach_loads([(key, parsed.family)])
        return True

    async def invalidate_entries(self, batch: Sequence[Entry]) -> None:
        fallback = self._fallback
        entries = self._entries

        async def operation(client: RedisClient) -> None:
            await entries.invalidate(
                client, [(entry.key, entry.family, entry.version) for entry in batch]
            )

        try:
            await fallback.execute(operation)
        except CacheError as exc:
            _log.warning("invalidation failed (%r); remembered for recovery", exc)
            self._remember(batch)

    def _remember(self, batch: Sequence[Entry]) -> None:
        for entry in batch:
            self._fallback.remember_invalidation(entry.key, entry.family, entry.version)
