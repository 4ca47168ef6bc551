"""What differs between standalone, Sentinel and Cluster, in one place.

Standalone and Sentinel give a plain ``redis.asyncio.Redis`` (one primary at a
time): any group of keys can go into one script call, atomically. Cluster
gives ``RedisCluster``: a script call or ``MULTI`` may only touch keys of one
hash slot, so multi-key work is split per slot and the per-slot calls run
concurrently. Atomicity across slots is impossible in Cluster; what the layer
still guarantees there is that each entry is written with its TTL and behind
its version fence (C1, C7; the fence key shares the entry's slot), that a
failed or partial multi-slot write invalidates every key of it (C10), and that
a symbol's own keys (hash tag ``{SYM}``, C3) stay one atomic step.

Helpers here are also meant for ``fallback.py`` (recovery: invalidations
grouped per slot, ``SCAN`` + ``UNLINK`` over every primary).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from runtime.cache.manager import RedisClient
from runtime.cache.models import fence_key

__all__ = [
    "clear_matching",
    "gather_all",
    "group_by_slot",
    "invalidate_grouped",
    "is_cluster",
    "slot_of",
]

T = TypeVar("T")


def is_cluster(client: RedisClient) -> bool:
    """True for a ``RedisCluster`` client (multi-key work must stay within one slot)."""
    return isinstance(client, RedisCluster)


def slot_of(key: str) -> int:
    """The Cluster hash slot of ``key`` (hash tags honoured), as ``CLUSTER KEYSLOT``."""
    return int(key_slot(key.encode()))


def group_by_slot(keys: Sequence[str]) -> list[list[int]]:
    """Indices of ``keys`` grouped by slot, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(slot_of(key), []).append(index)
    return list(groups.values())


async def gather_all(*calls: Awaitable[T]) -> list[T]:
    """Await every call concurrently; then raise the first error, if any.

    Unlike a bare ``asyncio.gather``, no call is left running (or its error
    unretrieved) when another fails.
    """
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


async def invalidate_grouped(
    client: RedisClient, script: Any, items: Sequence[tuple[str, int, int]]
) -> None:
    """Run the ``INVALIDATE`` ``script`` over ``items`` (key, version, fence TTL ms).

    One script call on standalone and Sentinel; on Cluster one call per slot,
    concurrently (each slot's keys atomically).
    """
    if not items:
        return
    if is_cluster(client):
        groups = group_by_slot([key for key, _, _ in items])
    else:
        groups = [list(range(len(items)))]
    calls = []
    for group in groups:
        keys: list[str] = []
        args: list[int] = []
        for index in group:
            key, version, fence_ttl_ms = items[index]
            keys += (key, fence_key(key))
            args += (version, fence_ttl_ms)
        calls.append(script(keys=keys, args=args, client=client))
    await gather_all(*calls)


async def clear_matching(client: RedisClient, pattern: str, batch: int = 500) -> int:
    """``SCAN`` + ``UNLINK`` every key matching ``pattern``; returns how many were removed.

    On Cluster, redis-py's ``scan_iter`` walks every primary and ``UNLINK`` is
    split per slot, so one call covers the whole cluster.
    """
    removed = 0
    keys: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=batch):
        keys.append(key)
        if len(keys) >= batch:
            removed += int(await client.unlink(*keys))
            keys.clear()
    if keys:
        removed += int(await client.unlink(*keys))
    return removed
