"""Reading and writing cache entries: one place for the Redis commands of the schema.

:class:`EntryStore` issues the reads (``HGETALL``, ``ZRANGE``, with ``PTTL`` when
refresh-ahead needs it) and the guarded writes (the ``SET_IF_NOT_STALE`` script,
C1 and C7) for both patterns, so the two cannot drift apart. It holds no state
but the script handles and does no error handling: callers run it through
:meth:`FallbackHandler.execute <runtime.cache.fallback.FallbackHandler.execute>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from runtime.cache.codecs import NEGATIVE_FIELD, Absent, Entity, encode
from runtime.cache.exceptions import InvalidValueError
from runtime.cache.models import CacheKeys, Family, KeySchema, fence_key
from runtime.cache.scripts import SET_IF_NOT_STALE
from runtime.domain import AccountRisk, BookSide, Order, Position, Price, StrategyConfig

__all__ = ["Entry", "EntryStore", "key_for"]


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

    __slots__ = ("_negative_ttl_ms", "_schema", "_set_script")

    def __init__(self, schema: KeySchema, *, negative_ttl_ms: int = 1_000) -> None:
        self._schema = schema
        self._negative_ttl_ms = negative_ttl_ms
        self._set_script: Any = None

    @property
    def schema(self) -> KeySchema:
        return self._schema

    async def read(
        self, client: Redis, key: str, family: Family, *, depth: int = -1, with_ttl: bool = False
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

    async def write(self, client: Redis, entries: Sequence[Entry]) -> list[bool]:
        """Write ``entries`` in one atomic script call, each with its TTL (C1, C9).

        An entry whose version is below its fence is not written (C7); the
        result tells, per entry, whether it was written.
        """
        if self._set_script is None:
            self._set_script = client.register_script(SET_IF_NOT_STALE)
        keys, args = self._arguments(entries)
        flags = await self._set_script(keys=keys, args=args, client=client)
        return [bool(flag) for flag in flags]
