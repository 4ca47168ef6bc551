"""The key schema: families, key builders and parsing, TTLs (C1-C3).

Six families, each with a Redis type and a default TTL::

    price:{SYMBOL}          hash        100 ms
    pos:{SYMBOL}            hash        1 s
    book:{SYMBOL}:bid|ask   sorted set  50 ms
    risk:account            hash        5 s
    ord:{ORDER_ID}          hash        60 s
    strat:{STRATEGY_ID}     hash        60 s

Per-symbol keys carry the symbol as a Redis Cluster hash tag (C3), so one
symbol's keys share a slot. Identifiers are validated before they become a key
(C2). TTLs are integer milliseconds inside; :class:`KeySchema` takes overrides
as seconds (``float``) or ``timedelta`` at the edge.

Each entry has a *fence* key beside it (:func:`fence_key`) that holds the newest
version written or invalidated for that entry; the write scripts compare against
it to refuse stale sets (C7). The codecs live in :mod:`runtime.cache.codecs`.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import NoReturn

from runtime.cache.exceptions import ConfigurationError, InvalidKeyError
from runtime.domain import Side

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "CacheKeys",
    "Family",
    "FamilySpec",
    "KeySchema",
    "ParsedKey",
    "RedisType",
    "fence_key",
    "to_milliseconds",
    "validate_identifier",
]

MAX_IDENTIFIER_LENGTH = 64

# Anything but whitespace, control characters (C0, DEL, C1), glob characters,
# braces, ':'.
_VALID_IDENTIFIER = re.compile(
    r"[^\s\x00-\x1f\x7f-\x9f*?\[\]\\{}:]{1,%s}" % (MAX_IDENTIFIER_LENGTH,)  # noqa: UP031
)
_GLOB_CHARACTERS = frozenset("*?[]\\")
_SIDES: Mapping[str, Side] = MappingProxyType({side.value: side for side in Side})


class RedisType(enum.StrEnum):
    """The Redis data type an entry of a family is stored as."""

    HASH = "hash"
    ZSET = "zset"


class Family(enum.StrEnum):
    """The six key families; the value is the key prefix."""

    PRICE = "price"
    POSITION = "pos"
    BOOK = "book"
    RISK = "risk"
    ORDER = "ord"
    STRATEGY = "strat"


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """A family's Redis type and default TTL in milliseconds."""

    family: Family
    redis_type: RedisType
    default_ttl_ms: int


_SPECS: Mapping[Family, FamilySpec] = MappingProxyType(
    {
        Family.PRICE: FamilySpec(Family.PRICE, RedisType.HASH, 100),
        Family.POSITION: FamilySpec(Family.POSITION, RedisType.HASH, 1_000),
        Family.BOOK: FamilySpec(Family.BOOK, RedisType.ZSET, 50),
        Family.RISK: FamilySpec(Family.RISK, RedisType.HASH, 5_000),
        Family.ORDER: FamilySpec(Family.ORDER, RedisType.HASH, 60_000),
        Family.STRATEGY: FamilySpec(Family.STRATEGY, RedisType.HASH, 60_000),
    }
)


def validate_identifier(field: str, value: object) -> str:
    """Return ``value`` if it may stand in a key, else raise :class:`InvalidKeyError`.

    Rejected: non-strings, empty, longer than ``MAX_IDENTIFIER_LENGTH``,
    whitespace or control characters, glob characters ``* ? [ ] \\``, braces, ``:``.
    """
    if isinstance(value, str) and _VALID_IDENTIFIER.fullmatch(value):
        return value
    raise InvalidKeyError(field, value, _why_invalid(value))


def _why_invalid(value: object) -> str:
    if not isinstance(value, str):
        return f"must be a str, not {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_IDENTIFIER_LENGTH:
        return f"longer than {MAX_IDENTIFIER_LENGTH} characters"
    for char in value:
        if char.isspace() or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            return "contains whitespace or a control character"
        if char in _GLOB_CHARACTERS:
            return f"contains the glob character {char!r}"
        if char in "{}":
            return "contains a brace"
        if char == ":":
            return "contains ':'"
    return "not allowed"  # pragma: no cover - the regex and the loop agree


def _not_a_str(field: str, value: object) -> NoReturn:
    # The memoised builders hash their arguments first: an unhashable value
    # raises TypeError there, before validation could name the field.
    raise InvalidKeyError(field, value, f"must be a str, not {type(value).__name__}")


def _validate_side(value: object) -> Side:
    if isinstance(value, str) and value in _SIDES:
        return _SIDES[value]
    raise InvalidKeyError("side", value, "must be 'bid' or 'ask'")


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A key taken apart: its family and the identifiers it was built from."""

    family: Family
    symbol: str | None = None
    side: Side | None = None
    identifier: str | None = None

    @property
    def spec(self) -> FamilySpec:
        return _SPECS[self.family]


class CacheKeys:
    """Key templates of the schema and the builders that fill them safely.

    The templates are the seed's; the builders validate every identifier (C2)
    and wrap per-symbol identifiers in a hash tag (C3). Builders are memoised:
    calling them on every request is cheap.
    """

    PRICE = "price:{symbol}"
    POSITION = "pos:{symbol}"
    ORDERBOOK = "book:{symbol}:{side}"
    RISK = "risk:account"
    ORDER = "ord:{order_id}"
    STRATEGY = "strat:{strategy_id}"

    @staticmethod
    def price(symbol: str) -> str:
        try:
            return _price_key(symbol)
        except TypeError:
            _not_a_str("symbol", symbol)

    @staticmethod
    def position(symbol: str) -> str:
        try:
            return _position_key(symbol)
        except TypeError:
            _not_a_str("symbol", symbol)

    @staticmethod
    def book(symbol: str, side: Side | str) -> str:
        try:
            return _book_key(symbol, side)
        except TypeError:
            validate_identifier("symbol", symbol)
            _not_a_str("side", side)

    @staticmethod
    def risk() -> str:
        return CacheKeys.RISK

    @staticmethod
    def order(order_id: str) -> str:
        try:
            return _order_key(order_id)
        except TypeError:
            _not_a_str("order_id", order_id)

    @staticmethod
    def strategy(strategy_id: str) -> str:
        try:
            return _strategy_key(strategy_id)
        except TypeError:
            _not_a_str("strategy_id", strategy_id)

    @staticmethod
    def parse(key: str) -> ParsedKey:
        """Take a key apart; raise :class:`InvalidKeyError` (field ``key``) if it is not one."""
        try:
            return _parse(key)
        except TypeError:
            _not_a_str("key", key)


@lru_cache(maxsize=8192)
def _price_key(symbol: str) -> str:
    return f"price:{{{validate_identifier('symbol', symbol)}}}"


@lru_cache(maxsize=8192)
def _position_key(symbol: str) -> str:
    return f"pos:{{{validate_identifier('symbol', symbol)}}}"


@lru_cache(maxsize=16384)
def _book_key(symbol: str, side: Side | str) -> str:
    checked = validate_identifier("symbol", symbol)
    return f"book:{{{checked}}}:{_validate_side(side).value}"


@lru_cache(maxsize=65536)
def _order_key(order_id: str) -> str:
    return f"ord:{{{validate_identifier('order_id', order_id)}}}"


@lru_cache(maxsize=1024)
def _strategy_key(strategy_id: str) -> str:
    return f"strat:{{{validate_identifier('strategy_id', strategy_id)}}}"


_ID_FIELDS: Mapping[str, tuple[Family, str]] = MappingProxyType(
    {
        "price": (Family.PRICE, "symbol"),
        "pos": (Family.POSITION, "symbol"),
        "ord": (Family.ORDER, "order_id"),
        "strat": (Family.STRATEGY, "strategy_id"),
    }
)


@lru_cache(maxsize=65536)
def _parse(key: str) -> ParsedKey:
    try:
        return _parse_checked(key)
    except InvalidKeyError as exc:
        if exc.field == "key":
            raise
        # A bad identifier inside a key is a bad key: name the key, keep the why.
        raise InvalidKeyError("key", key, f"{exc.field} {exc.reason}") from None


def _parse_checked(key: str) -> ParsedKey:
    if not isinstance(key, str):
        raise InvalidKeyError("key", key, f"must be a str, not {type(key).__name__}")
    if key == CacheKeys.RISK:
        return ParsedKey(Family.RISK)
    prefix, sep, rest = key.partition(":{")
    if not sep or "}" not in rest:
        raise InvalidKeyError("key", key, "not a key of the schema")
    identifier, _, tail = rest.partition("}")
    if prefix == "book":
        if not tail.startswith(":"):
            raise InvalidKeyError("key", key, "book key needs a side")
        symbol = validate_identifier("symbol", identifier)
        return ParsedKey(Family.BOOK, symbol=symbol, side=_validate_side(tail[1:]))
    if prefix not in _ID_FIELDS or tail:
        raise InvalidKeyError("key", key, "not a key of the schema")
    family, field = _ID_FIELDS[prefix]
    checked = validate_identifier(field, identifier)
    if field == "symbol":
        return ParsedKey(family, symbol=checked)
    return ParsedKey(family, identifier=checked)


def fence_key(key: str) -> str:
    """The key that fences ``key``'s versions (C7), in the same Cluster slot."""
    if "{" in key:
        return "~v:" + key
    return "~v:{" + key + "}"


def to_milliseconds(name: str, value: float | timedelta) -> int:
    """Convert a duration given in seconds or as ``timedelta`` to positive integer ms."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ConfigurationError(f"{name} must be seconds or a timedelta, not {value!r}")
    if not math.isfinite(seconds):
        # round() would raise ValueError (NaN) or OverflowError (infinity).
        raise ConfigurationError(f"{name} must be a finite duration, got {value!r}")
    milliseconds = round(seconds * 1000)
    if not milliseconds > 0:
        raise ConfigurationError(f"{name} must be at least 1 ms, got {value!r}")
    return milliseconds


class KeySchema:
    """The families with their TTLs, after configuration overrides.

    ``ttl`` maps a family (or its prefix) to a TTL in seconds or a ``timedelta``.
    ``fence_margin`` is how long a version fence outlives its entry: it must be
    longer than the slowest loader, or a very slow load could set a stale value
    after the fence expired.
    """

    __slots__ = ("_fence_margin_ms", "_ttl_ms")

    def __init__(
        self,
        *,
        ttl: Mapping[Family | str, float | timedelta] | None = None,
        fence_margin: float | timedelta = 10.0,
    ) -> None:
        ttl_ms = {family: spec.default_ttl_ms for family, spec in _SPECS.items()}
        for name, value in (ttl or {}).items():
            try:
                family = Family(name)
            except ValueError:
                raise ConfigurationError(f"unknown key family {name!r} in ttl") from None
            ttl_ms[family] = to_milliseconds(f"ttl[{family.value}]", value)
        self._ttl_ms: Mapping[Family, int] = MappingProxyType(ttl_ms)
        self._fence_margin_ms = to_milliseconds("fence_margin", fence_margin)

    def spec(self, family: Family) -> FamilySpec:
        return _SPECS[family]

    def ttl_ms(self, family: Family) -> int:
        """The family's TTL in milliseconds."""
        return self._ttl_ms[family]

    @property
    def fence_margin_ms(self) -> int:
        """How long a fence outlives its entry; a load slower than this is not cached."""
        return self._fence_margin_ms

    def fence_ttl_ms(self, family: Family) -> int:
        """How long a version fence of the family lives, in milliseconds."""
        return self._ttl_ms[family] + self._fence_margin_ms

    def families(self) -> tuple[FamilySpec, ...]:
        return tuple(_SPECS.values())

    def __repr__(self) -> str:
        ttls = ", ".join(f"{family.value}={ms}ms" for family, ms in self._ttl_ms.items())
        return f"KeySchema({ttls}, fence_margin={self._fence_margin_ms}ms)"
