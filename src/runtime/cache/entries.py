"""Reading and writing cache entries: one place for the Redis commands of the schema.

:class:`EntryStore` issues the reads (``HGETALL``, ``ZRANGE``, with ``PTTL`` when
refresh-ahead needs it) and the guarded writes (the ``SET_IF_NOT_STALE`` script,
C1 and C7) and invalidations (``INVALIDATE``) for both patterns, so the two
cannot drift apart. On Cluster a multi-entry write or invalidation is split per
hash slot, one script call per slot, run concurrently (see
:mod:`runtime.cache.topology` for what that keeps and loses). It holds no state
but the script handles and does no error handling: callers run it through
:meth:`FallbackHandler.execute <runtime.cache.fallback.FallbackHandler.execute>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from runtime.cache.codecs import NEGATIVE_FIELD, Absent, Entity, encode
from runtime.cache.exceptions import InvalidValueError
from runtime.cache.manager import RedisClient
from runtime.cache.models import CacheKeys, Family, KeySchema, fence_key
from runtime.cache.scripts import INVALIDATE, SET_IF_NOT_STALE
from runtime.cache.topology import gather_all, group_by_slot, invalidate_grouped, is_cluster
from runtime.domain import AccountRisk, BookSide, Order, Position, Price, StrategyConfig

__all__ = ["PAIR_LOAD", "Entry", "EntryStore", "key_for"]


PAIR_LOAD: Final = "position+risk"
"""First item of the single-flight key of a snapshot's joint position-and-risk load."""


def key_for(value: Entity) -> str:
    """The key under which ``value`` is cached."""
    match value:
        case Price():
            return CacheKeys.price(value.symbol)
        case BookSide():
            return CacheKeys.book(value.symbol, value.side)
        case Position():
            return CacheKeys.position(value.symbol)
        case AccountRisk():
            return CacheKeys.risk()
        case Order():
            return CacheKeys.order(value.order_id)
        case StrategyConfig():
            return CacheKeys.strategy(value.strategy_id)
    raise InvalidValueError("value", value, "not a cacheable entity")


@dataclass(frozen=True, slots=True)
class Entry:
    """A value to cache under ``key``; ``ABSENT`` caches "no such row" (version 0)."""

    key: str
    family: Family
    value: Entity | Absent

    @property
    def version(self) -> int:
        return 0 if isinstance(self.value, Absent) else self.value.version


class EntryStore:
    """The Redis commands of the schema, with TTLs from ``schema``.

    ``negative_ttl_ms`` is the TTL of negative entries (``ABSENT``).
    """

    __slots__ = ("_invalidate_script", "_negative_ttl_ms", "_schema", "_set_script")

    def __init__(self, schema: KeySchema, *, negative_ttl_ms: int = 1_000) -> None:
        self._schema = schema
        self._negative_ttl_ms = negative_ttl_ms
        self._set_script: Any = None
        self._invalidate_script: Any = None

    @property
    def schema(self) -> KeySchema:
        return self._schema

    async def read(
        self,
        client: RedisClient,
        key: str,
        family: Family,
        *,
        depth: int = -1,
        with_ttl: bool = False,
    ) -> tuple[Any, int]:
        """One round trip: the raw entry (hash dict or zset members) and its PTTL (-3 if unread).

        ``depth`` limits a book side to its best ``depth`` levels (-1: all).
        """
        is_book = family is Family.BOOK
        if not with_ttl:
            if is_book:
                return await client.zrange(key, 0, depth), -3
            return await client.hgetall(key), -3
        pipe = client.pipeline(transaction=False)
        if is_book:
            pipe.zrange(key, 0, depth)
        else:
            pipe.hgetall(key)
        pipe.pttl(key)
        raw, pttl = await pipe.execute()
        return raw, int(pttl)

    def _arguments(self, entries: Sequence[Entry]) -> tuple[list[str], list[Any]]:
        keys: list[str] = []
        args: list[Any] = []
        for entry in entries:
            family = entry.family
            if isinstance(entry.value, Absent):
                payload: list[Any] = [NEGATIVE_FIELD, b"0"]
                ttl = self._negative_ttl_ms
            else:
                payload = encode(entry.value)
                ttl = self._schema.ttl_ms(family)
            keys += (entry.key, fence_key(entry.key))
            args += (
                entry.version,
                ttl,
                self._schema.fence_ttl_ms(family),
                b"z" if family is Family.BOOK else b"h",
                len(payload),
            )
            args += payload
        return keys, args

    async def write(self, client: RedisClient, entries: Sequence[Entry]) -> list[bool]:
        """Write ``entries`` in one atomic script call, each with its TTL (C1, C9).

        An entry whose version is below its fence is not written (C7); the
        result tells, per entry, whether it was written. On Cluster, entries of
        different slots go in one script call per slot, concurrently: each slot's
        entries are atomic, the whole is not (a failure raises after every call
        finished; the caller invalidates, C10).
        """
        script = self._set_script
        if script is None:
            script = self._set_script = client.register_script(SET_IF_NOT_STALE)
        if len(entries) > 1 and is_cluster(client):
            groups = group_by_slot([entry.key for entry in entries])
            if len(groups) > 1:
                return await self._write_per_slot(client, script, entries, groups)
        keys, args = self._arguments(entries)
        flags = await script(keys=keys, args=args, client=client)
        return [bool(flag) for flag in flags]

    async def _write_per_slot(
        self, client: RedisClient, script: Any, entries: Sequence[Entry], groups: list[list[int]]
    ) -> list[bool]:
        calls = []
        for group in groups:
            keys, args = self._arguments([entries[i] for i in group])
            calls.append(script(keys=keys, args=args, client=client))
        replies = await gather_all(*calls)
        written = [False] * len(entries)
        for group, flags in zip(groups, replies, strict=True):
            for index, flag in zip(group, flags, strict=True):
                written[index] = bool(flag)
        return written

    async def invalidate(
        self, client: RedisClient, entries: Sequence[tuple[str, Family, int]]
    ) -> None:
        """Delete entries and raise their fences to at least the given versions.

        One script call (standalone, Sentinel), or one per slot (Cluster).
        """
        script = self._invalidate_script
        if script is None:
            script = self._invalidate_script = client.register_script(INVALIDATE)
        items = [
            (key, version, self._schema.fence_ttl_ms(family)) for key, family, version in entries
        ]
        await invalidate_grouped(client, script, items)
