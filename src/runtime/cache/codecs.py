"""Codecs between the typed entities and the Redis types of the schema (C4).

Hashes hold one field per attribute under short names; money and quantities
are the ``Decimal``'s own text (``str(Decimal)``), so every value round-trips
exactly, exponent included. A book side is a sorted set: each level is a member
``b"<price>|<size>"`` whose score is its rank (0 = best), so the order of levels
is exact whatever the prices; one metadata member ``b"#<version>|<timestamp>"``
at score -1 comes first in ``ZRANGE key 0 depth``.

A hash holding only the field ``~`` is a *negative* entry: the row is known to
be absent from the source of truth (:data:`ABSENT`).

Cached bytes are untrusted: every decoder raises :class:`DecodeError` (and
nothing else) for bytes it cannot turn into a valid entity; encoders raise
:class:`InvalidValueError` for values that cannot be cached (NaN, infinity).
"""

from __future__ import annotations

import enum
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from runtime.cache.exceptions import DecodeError, InvalidValueError
from runtime.cache.models import Family, ParsedKey
from runtime.domain import (
    AccountRisk,
    BookLevel,
    BookSide,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    Price,
    Side,
    StrategyConfig,
)

__all__ = [
    "ABSENT",
    "NEGATIVE_FIELD",
    "Absent",
    "Entity",
    "HashFields",
    "decode_book",
    "decode_hash",
    "encode",
    "family_of",
]

Entity: TypeAlias = Price | Position | BookSide | AccountRisk | Order | StrategyConfig
HashFields: TypeAlias = list[bytes | str | int]
"""Flat ``[field, value, field, value, ...]`` (hash) or ``[score, member, ...]`` (zset)."""

NEGATIVE_FIELD: Final = b"~"
_META_PREFIX: Final = b"#"


class Absent:
    """The type of :data:`ABSENT`: a cached "this row does not exist"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = Absent()

# RecursionError: json.loads of deeply nested garbage (b"[[[[...") raises it.
_DECODE_ERRORS = (
    KeyError,
    ValueError,
    ArithmeticError,
    TypeError,
    AttributeError,
    IndexError,
    RecursionError,
)


def _money(field: str, value: Decimal) -> str:
    if not isinstance(value, Decimal):
        raise InvalidValueError(field, value, f"must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise InvalidValueError(field, value, "must be finite")
    return str(value)


def _text(field: str, value: str) -> bytes:
    # Encoded here, not by redis-py: a lone surrogate would otherwise escape as
    # UnicodeEncodeError from inside the client, and a non-str would be stored
    # as its repr and come back as a different value.
    if not isinstance(value, str):
        raise InvalidValueError(field, value, f"must be a str, not {type(value).__name__}")
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise InvalidValueError(field, value, "is not valid UTF-8 text") from None


def _integer(field: str, value: int) -> int:
    # bool is refused by redis-py itself; a float would be stored and never decode.
    if type(value) is not int:
        raise InvalidValueError(field, value, f"must be an int, not {type(value).__name__}")
    return value


def _member(field: str, value: enum.StrEnum, kind: type[enum.StrEnum]) -> str:
    if type(value) is not kind:
        raise InvalidValueError(field, value, f"must be a {kind.__name__}")
    return value.value


def _dec(raw: bytes) -> Decimal:
    value = Decimal(raw.decode("ascii"))
    if not value.is_finite():
        raise ValueError("not a finite decimal")
    return value


def _int(raw: bytes) -> int:
    return int(raw)


# ---------------------------------------------------------------- encoders


def _encode_price(value: Price) -> HashFields:
    return [
        b"b", _money("bid", value.bid),
        b"a", _money("ask", value.ask),
        b"l", _money("last", value.last),
        b"t", _integer("timestamp_ns", value.timestamp_ns),
        b"v", _integer("version", value.version),
    ]  # fmt: skip


def _encode_position(value: Position) -> HashFields:
    return [
        b"q", _money("quantity", value.quantity),
        b"ap", _money("average_price", value.average_price),
        b"rp", _money("realized_pnl", value.realized_pnl),
        b"t", _integer("timestamp_ns", value.timestamp_ns),
        b"v", _integer("version", value.version),
    ]  # fmt: skip


def _encode_risk(value: AccountRisk) -> HashFields:
    return [
        b"eq", _money("equity", value.equity),
        b"mu", _money("margin_used", value.margin_used),
        b"ex", _money("exposure", value.exposure),
        b"mx", _money("max_exposure", value.max_exposure),
        b"mo", _money("max_order_notional", value.max_order_notional),
        b"dl", _money("daily_loss_limit", value.daily_loss_limit),
        b"t", _integer("timestamp_ns", value.timestamp_ns),
        b"v", _integer("version", value.version),
    ]  # fmt: skip


def _encode_order(value: Order) -> HashFields:
    price = "" if value.price is None else _money("price", value.price)
    return [
        b"st", _text("strategy_id", value.strategy_id),
        b"sy", _text("symbol", value.symbol),
        b"sd", _member("side", value.side, OrderSide),
        b"ty", _member("type", value.type, OrderType),
        b"q", _money("quantity", value.quantity),
        b"p", price,
        b"fq", _money("filled_quantity", value.filled_quantity),
        b"s", _member("status", value.status, OrderStatus),
        b"c", _integer("created_ns", value.created_ns),
        b"u", _integer("updated_ns", value.updated_ns),
        b"v", _integer("version", value.version),
    ]  # fmt: skip


def _encode_strategy(value: StrategyConfig) -> HashFields:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.parameters.items()):
        raise InvalidValueError("parameters", value.parameters, "must map str to str")
    # ensure_ascii (the default) escapes lone surrogates, so any str round-trips.
    parameters = json.dumps(dict(value.parameters), separators=(",", ":"), sort_keys=True)
    return [
        b"n", _text("name", value.name),
        b"e", b"1" if value.enabled else b"0",
        b"p", parameters,
        b"v", _integer("version", value.version),
    ]  # fmt: skip


def _encode_book(value: BookSide) -> HashFields:
    version = _integer("version", value.version)
    timestamp = _integer("timestamp_ns", value.timestamp_ns)
    if type(value.side) is not Side:
        raise InvalidValueError("side", value.side, "must be a Side")
    fields: HashFields = [-1, b"#%d|%d" % (version, timestamp)]
    for rank, level in enumerate(value.levels):
        member = f"{_money('level price', level.price)}|{_money('level size', level.size)}"
        fields.append(rank)
        fields.append(member)
    try:
        # A book that the decoder would refuse must not be cached: every read
        # of it would be a decode failure and a reload of the same book.
        _check_order(value.side, value.levels)
    except ValueError as exc:
        raise InvalidValueError("levels", value.levels, str(exc)) from None
    return fields


_ENCODERS: Mapping[type, tuple[Family, Callable[[Any], HashFields]]] = MappingProxyType(
    {
        Price: (Family.PRICE, _encode_price),
        Position: (Family.POSITION, _encode_position),
        BookSide: (Family.BOOK, _encode_book),
        AccountRisk: (Family.RISK, _encode_risk),
        Order: (Family.ORDER, _encode_order),
        StrategyConfig: (Family.STRATEGY, _encode_strategy),
    }
)


def family_of(value: object) -> Family:
    """The family that caches values of ``value``'s type."""
    try:
        return _ENCODERS[type(value)][0]
    except KeyError:
        raise InvalidValueError("value", value, "not a cacheable entity") from None


def encode(value: Entity) -> HashFields:
    """Flatten ``value`` into the arguments of ``HSET`` (hash) or ``ZADD`` (book)."""
    try:
        _, encoder = _ENCODERS[type(value)]
    except KeyError:
        raise InvalidValueError("value", value, "not a cacheable entity") from None
    return encoder(value)


# ---------------------------------------------------------------- decoders


def _decode_price(key: ParsedKey, raw: Mapping[bytes, bytes]) -> Price:
    return Price(
        key.symbol or "",
        _dec(raw[b"b"]),
        _dec(raw[b"a"]),
        _dec(raw[b"l"]),
        _int(raw[b"t"]),
        _int(raw[b"v"]),
    )


def _decode_position(key: ParsedKey, raw: Mapping[bytes, bytes]) -> Position:
    return Position(
        key.symbol or "",
        _dec(raw[b"q"]),
        _dec(raw[b"ap"]),
        _dec(raw[b"rp"]),
        _int(raw[b"t"]),
        _int(raw[b"v"]),
    )


def _decode_risk(key: ParsedKey, raw: Mapping[bytes, bytes]) -> AccountRisk:
    return AccountRisk(
        _dec(raw[b"eq"]),
        _dec(raw[b"mu"]),
        _dec(raw[b"ex"]),
        _dec(raw[b"mx"]),
        _dec(raw[b"mo"]),
        _dec(raw[b"dl"]),
        _int(raw[b"t"]),
        _int(raw[b"v"]),
    )


def _decode_order(key: ParsedKey, raw: Mapping[bytes, bytes]) -> Order:
    price = raw[b"p"]
    return Order(
        key.identifier or "",
        raw[b"st"].decode(),
        raw[b"sy"].decode(),
        OrderSide(raw[b"sd"].decode()),
        OrderType(raw[b"ty"].decode()),
        _dec(raw[b"q"]),
        _dec(price) if price else None,
        _dec(raw[b"fq"]),
        OrderStatus(raw[b"s"].decode()),
        _int(raw[b"c"]),
        _int(raw[b"u"]),
        _int(raw[b"v"]),
    )


def _decode_strategy(key: ParsedKey, raw: Mapping[bytes, bytes]) -> StrategyConfig:
    enabled = raw[b"e"]
    if enabled not in (b"0", b"1"):
        raise ValueError("enabled must be 0 or 1")
    parameters = json.loads(raw[b"p"])
    if not isinstance(parameters, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()
    ):
        raise ValueError("parameters must map text to text")
    return StrategyConfig(
        key.identifier or "",
        raw[b"n"].decode(),
        enabled == b"1",
        parameters,
        _int(raw[b"v"]),
    )


_HASH_DECODERS: Mapping[Family, Callable[[ParsedKey, Mapping[bytes, bytes]], Entity]] = (
    MappingProxyType(
        {
            Family.PRICE: _decode_price,
            Family.POSITION: _decode_position,
            Family.RISK: _decode_risk,
            Family.ORDER: _decode_order,
            Family.STRATEGY: _decode_strategy,
        }
    )
)


def decode_hash(key: str, parsed: ParsedKey, raw: Mapping[bytes, bytes]) -> Entity | Absent:
    """Decode a non-empty ``HGETALL`` reply of a hash family.

    Returns :data:`ABSENT` for a negative entry. Raises :class:`DecodeError`.
    """
    try:
        if NEGATIVE_FIELD in raw:
            if len(raw) != 1:
                raise ValueError("negative marker beside other fields")
            return ABSENT
        return _HASH_DECODERS[parsed.family](parsed, raw)
    except _DECODE_ERRORS as exc:
        raise DecodeError(key, f"{type(exc).__name__}: {exc}") from exc


def decode_book(key: str, parsed: ParsedKey, members: Sequence[bytes]) -> BookSide:
    """Decode a non-empty ``ZRANGE key 0 depth`` reply of a book side.

    Raises :class:`DecodeError` when the metadata member is missing, a level
    does not parse, or prices are not strictly best-first.
    """
    try:
        meta = members[0]
        if not meta.startswith(_META_PREFIX):
            raise ValueError("metadata member missing")
        version, _, timestamp = meta[1:].partition(b"|")
        side = parsed.side
        if side is None:
            raise ValueError("not a book key")
        # The hot path of a snapshot: one pass that parses each member once and
        # checks the order against the previous level (no second pairwise pass).
        bids = side is Side.BID
        levels = []
        previous: Decimal | None = None
        for member in members[1:]:
            price_text, sep, size_text = member.decode("ascii").partition("|")
            if not sep:
                raise ValueError("level member without '|'")
            price = Decimal(price_text)
            size = Decimal(size_text)
            if not (price.is_finite() and size.is_finite()):
                raise ValueError("not a finite decimal")
            if previous is not None and ((price >= previous) if bids else (price <= previous)):
                raise ValueError("levels are not strictly best-first")
            previous = price
            levels.append(BookLevel(price, size))
        return BookSide(parsed.symbol or "", side, tuple(levels), _int(timestamp), _int(version))
    except _DECODE_ERRORS as exc:
        raise DecodeError(key, f"{type(exc).__name__}: {exc}") from exc


def _check_order(side: Side, levels: Sequence[BookLevel]) -> None:
    for better, worse in itertools.pairwise(levels):
        if (better.price <= worse.price) if side is Side.BID else (better.price >= worse.price):
            raise ValueError("levels are not strictly best-first")
