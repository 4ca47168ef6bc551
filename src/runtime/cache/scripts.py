"""Lua scripts that write and invalidate entries atomically, guarded by versions.

Why versions and not lease tokens (C7): every value the layer caches carries the
version its source of truth committed, so "is this older than what the cache has
seen?" is a comparison Redis can make on its own, in the same atomic step as the
write, without an extra round trip on the read path to take a lease. The newest
version seen for an entry lives in its *fence* key (``models.fence_key``), which
outlives the entry by a margin longer than any load. A set whose version is
below the fence is refused; a write-through or an invalidation raises the fence.
So a loader that read version 1 before a write of version 2 can never put
version 1 back, not even after the entry of version 2 expired.

``INVALIDATE`` may run while Redis is out of memory (``allow-oom``): it frees
more than the small fence it writes, and an invalidation that cannot run would
leave a stale value behind (C10).

An invalidation whose version is unknown raises the fence to ``UNKNOWN_VERSION``
(2**53): every set is refused until that fence expires, one fence margin later.

``READ_SNAPSHOT`` reads a symbol's five entries atomically in one command: on
loopback it costs less than the same five commands pipelined, and unlike a
plain pipeline no write can land between its reads.

The write scripts take any number of entries (a fill writes ``ord``, ``pos`` and
``risk`` in one script call: C9; in Cluster, one call per slot, see
:mod:`runtime.cache.topology`) and every value is written with its TTL in the
same step (C1). They are loaded once and called by SHA; redis-py's script objects
reload them on NOSCRIPT (a promoted replica, a new cluster node: in Cluster
``SCRIPT LOAD`` goes to every primary).
"""

from __future__ import annotations

from typing import Final

__all__ = ["INVALIDATE", "READ_SNAPSHOT", "SET_IF_NOT_STALE", "UNKNOWN_VERSION"]

UNKNOWN_VERSION: Final = 2**53

SET_IF_NOT_STALE: Final = """
-- KEYS: entry1, fence1, entry2, fence2, ...
-- ARGV per entry: version, ttl_ms, fence_ttl_ms, kind ('h' hash, 'z' zset), n, n payload args
-- Returns one flag per entry: 1 written, 0 refused as stale.
local result = {}
local a = 1
for i = 1, #KEYS, 2 do
  local entry, fence = KEYS[i], KEYS[i + 1]
  local version = tonumber(ARGV[a])
  local ttl, fence_ttl, kind, n = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local first = a + 5
  a = first + n
  local seen = tonumber(redis.call('GET', fence) or '-1')
  if version < seen then
    result[#result + 1] = 0
  else
    redis.call('SET', fence, ARGV[first - 5], 'PX', fence_ttl)
    redis.call('DEL', entry)
    -- in chunks: Lua's unpack() refuses more than ~8000 values at once
    for j = first, first + n - 1, 7000 do
      local last = math.min(j + 6999, first + n - 1)
      if kind == 'z' then
        redis.call('ZADD', entry, unpack(ARGV, j, last))
      else
        redis.call('HSET', entry, unpack(ARGV, j, last))
      end
    end
    redis.call('PEXPIRE', entry, ttl)
    result[#result + 1] = 1
  end
end
return result
"""

INVALIDATE: Final = """#!lua flags=allow-oom
-- KEYS: entry1, fence1, entry2, fence2, ...
-- ARGV per entry: version (newest committed, or 2^53 when unknown), fence_ttl_ms
-- Deletes every entry and raises its fence to at least the version given.
local a = 1
for i = 1, #KEYS, 2 do
  local entry, fence = KEYS[i], KEYS[i + 1]
  local version = tonumber(ARGV[a])
  local seen = tonumber(redis.call('GET', fence) or '-1')
  if seen > version then version = seen end
  redis.call('DEL', entry)
  redis.call('SET', fence, string.format('%d', version), 'PX', ARGV[a + 1])
  a = a + 2
end
return #KEYS / 2
"""

READ_SNAPSHOT: Final = """#!lua flags=no-writes
-- KEYS: price, book bid, book ask, position[, risk]; ARGV: depth (last ZRANGE index)
-- One atomic read of a symbol's scalp state: it cannot interleave with a
-- multi-key write, so it never mixes the before and after of one fill.
-- In Cluster the risk key lives in another slot: it is left out (4 keys) and
-- read beside the script; the fifth element is then an empty list.
-- The sixth holds the PTTL of price, bid and ask, for refresh-ahead (C6).
local risk = {}
if #KEYS >= 5 then risk = redis.call('HGETALL', KEYS[5]) end
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('ZRANGE', KEYS[2], 0, ARGV[1]),
  redis.call('ZRANGE', KEYS[3], 0, ARGV[1]),
  redis.call('HGETALL', KEYS[4]),
  risk,
  {redis.call('PTTL', KEYS[1]), redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[3])},
}
"""
