"""Codecs (C4): exact round trips of every family, untrusted bytes, rejected values.

The Redis replies are built the way a real Redis gives them back to redis-py:
a hash is ``{field: value}`` of bytes (redis-py sends ``str`` as UTF-8 and
``int`` as ASCII digits); a book side is its members ordered by score.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
import redis as redis_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.cache.codecs import (
    ABSENT,
    NEGATIVE_FIELD,
    Entity,
    HashFields,
    decode_book,
    decode_hash,
    encode,
    family_of,
)
from runtime.cache.exceptions import DecodeError, InvalidValueError
from runtime.cache.models import CacheKeys, Family, ParsedKey
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
from support.strategies import (
    EXTREME_DECIMALS,
    book_sides,
    decimals,
    orders,
    positions,
    prices,
    risks,
    strategy_configs,
)

# ------------------------------------------------------------------ helpers


def wire(value: bytes | str | int) -> bytes:
    """What redis-py sends for one argument (and so what Redis gives back)."""
    if isinstance(value, bytes):
        return value
    assert not isinstance(value, bool), "redis-py refuses bool"
    if isinstance(value, int):
        return repr(value).encode()
    return value.encode("utf-8")


def hash_reply(fields: HashFields) -> dict[bytes, bytes]:
    return dict(zip(map(wire, fields[::2]), map(wire, fields[1::2]), strict=True))


def book_reply(fields: HashFields) -> list[bytes]:
    pairs = sorted(zip(fields[::2], fields[1::2], strict=True), key=lambda pair: pair[0])
    return [wire(member) for _, member in pairs]


def key_of(entity: Entity) -> str:
    match entity:
        case Price(symbol=symbol):
            return CacheKeys.price(symbol)
        case Position(symbol=symbol):
            return CacheKeys.position(symbol)
        case BookSide(symbol=symbol, side=side):
            return CacheKeys.book(symbol, side)
        case AccountRisk():
            return CacheKeys.risk()
        case Order(order_id=order_id):
            return CacheKeys.order(order_id)
        case StrategyConfig(strategy_id=strategy_id):
            return CacheKeys.strategy(strategy_id)
    raise AssertionError(entity)


def decimal_texts(value: object) -> Iterator[str]:
    """Every Decimal inside ``value`` as its exact text, in field order."""
    if isinstance(value, Decimal):
        yield str(value)
    elif isinstance(value, tuple):
        for item in value:
            yield from decimal_texts(item)
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from decimal_texts(getattr(value, field.name))


def assert_same(decoded: object, original: Entity) -> None:
    assert decoded == original
    assert type(decoded) is type(original)
    assert list(decimal_texts(decoded)) == list(decimal_texts(original))


def round_trip(entity: Entity) -> object:
    key = key_of(entity)
    parsed = CacheKeys.parse(key)
    fields = encode(entity)
    if isinstance(entity, BookSide):
        return decode_book(key, parsed, book_reply(fields))
    return decode_hash(key, parsed, hash_reply(fields))


def entities() -> st.SearchStrategy[Entity]:
    return st.one_of(prices(), positions(), book_sides(), risks(), orders(), strategy_configs())


T0 = 1_700_000_000_000_000_000
EXAMPLES: list[Entity] = [
    Price("BTCUSDT", Decimal("64000.10"), Decimal("64000.20"), Decimal("64000.15"), T0, 3),
    Position("BTCUSDT", Decimal("-0.500"), Decimal("63990.5"), Decimal("-12.25"), T0, 7),
    BookSide(
        "BTCUSDT",
        Side.BID,
        (BookLevel(Decimal("64000.10"), Decimal("1.5")), BookLevel(Decimal("1E+3"), Decimal("2"))),
        T0,
        4,
    ),
    BookSide("BTCUSDT", Side.ASK, (), T0, 5),
    AccountRisk(
        Decimal("1E+12"),
        Decimal("1E-18"),
        Decimal("0"),
        Decimal("1234567890123456789012345678.901"),
        Decimal("5E+4"),
        Decimal("-100.00"),
        T0,
        9,
    ),
    Order(
        "O-1",
        "s1",
        "BTCUSDT",
        OrderSide.BUY,
        OrderType.LIMIT,
        Decimal("0.010"),
        Decimal("64000.1"),
        Decimal("0"),
        OrderStatus.PARTIALLY_FILLED,
        T0,
        T0 + 1,
        2,
    ),
    Order(
        "O-2",
        "s1",
        "ETH/USDT é",
        OrderSide.SELL,
        OrderType.MARKET,
        Decimal("3"),
        None,
        Decimal("3"),
        OrderStatus.FILLED,
        T0,
        T0,
        1,
    ),
    StrategyConfig("s1", "mean reversion ☂", True, {"window": "20", "z": "1.5", "": "é"}, 6),
]


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("entity", EXAMPLES, ids=lambda e: type(e).__name__)
def test_example_of_every_family_round_trips(entity: Entity) -> None:
    assert_same(round_trip(entity), entity)


@given(prices())
def test_price_round_trips_exactly(entity: Price) -> None:
    assert_same(round_trip(entity), entity)


@given(positions())
def test_position_round_trips_exactly(entity: Position) -> None:
    assert_same(round_trip(entity), entity)


@given(book_sides())
def test_book_side_round_trips_exactly(entity: BookSide) -> None:
    assert_same(round_trip(entity), entity)


@given(risks())
def test_risk_round_trips_exactly(entity: AccountRisk) -> None:
    assert_same(round_trip(entity), entity)


@given(orders())
def test_order_round_trips_exactly(entity: Order) -> None:
    assert_same(round_trip(entity), entity)


@given(strategy_configs())
def test_strategy_round_trips_exactly(entity: StrategyConfig) -> None:
    assert_same(round_trip(entity), entity)


def test_strategy_parameters_with_lone_surrogates_round_trip() -> None:
    # JSON escapes them, so parameters accept any str (unlike the name field).
    entity = StrategyConfig("s1", "n", False, {"\ud800": "\udfff"}, 1)
    assert_same(round_trip(entity), entity)


@pytest.mark.parametrize("value", EXTREME_DECIMALS, ids=str)
def test_extreme_decimal_keeps_its_exact_text(value: Decimal) -> None:
    entity = Position("X", value, value, -value, 0, 0)
    decoded = round_trip(entity)
    assert isinstance(decoded, Position)
    assert str(decoded.quantity) == str(value)
    assert str(decoded.realized_pnl) == str(-value)


@given(decimals())
def test_any_finite_decimal_keeps_its_exact_text(value: Decimal) -> None:
    decoded = round_trip(Price("X", value, value, value, 0, 0))
    assert isinstance(decoded, Price)
    assert decoded.bid.as_tuple() == value.as_tuple()


def test_encode_gives_the_redis_command_arguments() -> None:
    fields = encode(Price("X", Decimal("1.10"), Decimal("2"), Decimal("1E+2"), 5, 1))
    assert fields == [b"b", "1.10", b"a", "2", b"l", "1E+2", b"t", 5, b"v", 1]
    book = encode(BookSide("X", Side.ASK, (BookLevel(Decimal("1"), Decimal("2")),), 5, 1))
    assert book == [-1, b"#1|5", 0, "1|2"]


@pytest.mark.parametrize("entity", EXAMPLES, ids=lambda e: type(e).__name__)
def test_family_of_names_the_family_of_every_entity(entity: Entity) -> None:
    assert family_of(entity) is CacheKeys.parse(key_of(entity)).family


def test_negative_entry_decodes_as_absent() -> None:
    key = CacheKeys.price("X")
    assert decode_hash(key, CacheKeys.parse(key), {NEGATIVE_FIELD: b"1"}) is ABSENT
    assert repr(ABSENT) == "ABSENT"


# ------------------------------------------------------------------ real Redis


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis_sync.Redis]:
    client = redis_sync.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def through_redis(client: redis_sync.Redis, entity: Entity) -> object:
    key = key_of(entity)
    parsed = CacheKeys.parse(key)
    fields = encode(entity)
    client.delete(key)
    if isinstance(entity, BookSide):
        client.execute_command("ZADD", key, *fields)  # type: ignore[no-untyped-call]
        members: list[bytes] = client.zrange(key, 0, -1)  # type: ignore[assignment]
        return decode_book(key, parsed, members)
    client.execute_command("HSET", key, *fields)  # type: ignore[no-untyped-call]
    reply: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    return decode_hash(key, parsed, reply)


@pytest.mark.parametrize("entity", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_family_round_trips_through_real_redis(
    redis_client: redis_sync.Redis, entity: Entity
) -> None:
    assert_same(through_redis(redis_client, entity), entity)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entity=book_sides(max_levels=12))
def test_book_side_round_trips_through_real_redis(
    redis_client: redis_sync.Redis, entity: BookSide
) -> None:
    assert_same(through_redis(redis_client, entity), entity)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entity=entities())
def test_any_entity_round_trips_through_real_redis(
    redis_client: redis_sync.Redis, entity: Entity
) -> None:
    assert_same(through_redis(redis_client, entity), entity)


# ------------------------------------------------------------------ untrusted bytes

HASH_KEYS: list[tuple[str, type]] = [
    (CacheKeys.price("X"), Price),
    (CacheKeys.position("X"), Position),
    (CacheKeys.risk(), AccountRisk),
    (CacheKeys.order("O-1"), Order),
    (CacheKeys.strategy("s1"), StrategyConfig),
]


def _check_decoded(decoded: object, kind: type) -> None:
    """A decode that succeeds must give a valid entity: right type, finite Decimals."""
    if decoded is ABSENT:
        return
    assert type(decoded) is kind
    for text in decimal_texts(decoded):
        assert Decimal(text).is_finite()


@pytest.mark.parametrize(("key", "kind"), HASH_KEYS, ids=lambda x: getattr(x, "__name__", x))
@given(raw=st.dictionaries(st.binary(max_size=12), st.binary(max_size=24), max_size=12))
def test_random_hash_bytes_raise_decode_error_only(
    key: str, kind: type, raw: dict[bytes, bytes]
) -> None:
    try:
        decoded = decode_hash(key, CacheKeys.parse(key), raw)
    except DecodeError as exc:
        decode_error: DecodeError | None = exc
    else:
        decode_error = None
        _check_decoded(decoded, kind)
    assert decode_error is None or decode_error.key == key


@given(members=st.lists(st.binary(max_size=24), max_size=12), side=st.sampled_from(Side))
def test_random_book_members_raise_decode_error_only(members: list[bytes], side: Side) -> None:
    key = CacheKeys.book("X", side)
    try:
        decoded = decode_book(key, CacheKeys.parse(key), members)
    except DecodeError as exc:
        decode_error: DecodeError | None = exc
    else:
        decode_error = None
        _check_decoded(decoded, BookSide)
    assert decode_error is None or decode_error.key == key


@given(
    entity=st.one_of(prices(), positions(), risks(), orders(), strategy_configs()), data=st.data()
)
def test_one_corrupted_hash_field_raises_decode_error_only(
    entity: Entity, data: st.DataObject
) -> None:
    # Random dictionaries rarely carry the right fields; corrupt one field of a
    # real entry instead, so every field's parser meets garbage.
    key = key_of(entity)
    raw = hash_reply(encode(entity))
    field = data.draw(st.sampled_from(sorted(raw)))
    raw[field] = data.draw(st.binary(max_size=40))
    try:
        decoded = decode_hash(key, CacheKeys.parse(key), raw)
    except DecodeError:
        pass
    else:
        _check_decoded(decoded, type(entity))


@given(entity=book_sides(max_levels=6), data=st.data())
def test_one_corrupted_book_member_raises_decode_error_only(
    entity: BookSide, data: st.DataObject
) -> None:
    key = key_of(entity)
    members = book_reply(encode(entity))
    index = data.draw(st.integers(0, len(members) - 1))
    members[index] = data.draw(st.binary(max_size=40))
    try:
        decoded = decode_book(key, CacheKeys.parse(key), members)
    except DecodeError:
        pass
    else:
        _check_decoded(decoded, BookSide)


def _price_raw(**changes: bytes) -> dict[bytes, bytes]:
    raw = {b"b": b"1", b"a": b"2", b"l": b"1.5", b"t": b"10", b"v": b"1"}
    raw.update({name.encode(): value for name, value in changes.items()})
    return raw


def _order_raw(**changes: bytes) -> dict[bytes, bytes]:
    raw = hash_reply(encode(EXAMPLES[5]))
    raw.update({name.encode(): value for name, value in changes.items()})
    return raw


def _strategy_raw(**changes: bytes) -> dict[bytes, bytes]:
    raw = hash_reply(encode(EXAMPLES[-1]))
    raw.update({name.encode(): value for name, value in changes.items()})
    return raw


PRICE_KEY = CacheKeys.price("X")
ORDER_KEY = CacheKeys.order("O-1")
STRAT_KEY = CacheKeys.strategy("s1")

GARBAGE_HASHES: list[tuple[str, str, Mapping[bytes, bytes]]] = [
    ("nan", PRICE_KEY, _price_raw(b=b"NaN")),
    ("snan", PRICE_KEY, _price_raw(b=b"sNaN")),
    ("nan-payload", PRICE_KEY, _price_raw(a=b"NaN123")),
    ("infinity", PRICE_KEY, _price_raw(a=b"Infinity")),
    ("minus-inf", PRICE_KEY, _price_raw(l=b"-inf")),
    ("empty-decimal", PRICE_KEY, _price_raw(b=b"")),
    ("non-ascii-decimal", PRICE_KEY, _price_raw(b="\uff11".encode())),  # FULLWIDTH DIGIT ONE
    ("invalid-utf8-decimal", PRICE_KEY, _price_raw(b=b"\xff")),
    ("float-timestamp", PRICE_KEY, _price_raw(t=b"1.5")),
    ("huge-int", PRICE_KEY, _price_raw(v=b"9" * 5000)),
    ("missing-field", PRICE_KEY, {b"b": b"1", b"a": b"2", b"l": b"1", b"t": b"1"}),
    ("empty-hash", PRICE_KEY, {}),
    ("negative-marker-beside-fields", PRICE_KEY, {NEGATIVE_FIELD: b"1", **_price_raw()}),
    ("invalid-utf8-strategy-id", ORDER_KEY, _order_raw(st=b"\xff\xfe")),
    ("invalid-utf8-symbol", ORDER_KEY, _order_raw(sy=b"BTC\xc3")),
    ("bad-order-side", ORDER_KEY, _order_raw(sd=b"hold")),
    ("enum-name-not-value", ORDER_KEY, _order_raw(s=b"FILLED")),
    ("bad-order-type", ORDER_KEY, _order_raw(ty=b"stop")),
    ("invalid-utf8-name", STRAT_KEY, _strategy_raw(n=b"\x80abc")),
    ("enabled-not-0-or-1", STRAT_KEY, _strategy_raw(e=b"true")),
    ("parameters-not-json", STRAT_KEY, _strategy_raw(p=b"{window")),
    ("parameters-not-object", STRAT_KEY, _strategy_raw(p=b'["a"]')),
    ("parameters-non-text-value", STRAT_KEY, _strategy_raw(p=b'{"a":1}')),
    ("parameters-nan", STRAT_KEY, _strategy_raw(p=b'{"a":NaN}')),
    ("parameters-invalid-utf8", STRAT_KEY, _strategy_raw(p=b'{"a":"\xff"}')),
    ("parameters-deeply-nested", STRAT_KEY, _strategy_raw(p=b"[" * 100_000)),
]


@pytest.mark.parametrize(
    ("key", "raw"), [g[1:] for g in GARBAGE_HASHES], ids=[g[0] for g in GARBAGE_HASHES]
)
def test_garbage_hash_raises_decode_error(key: str, raw: Mapping[bytes, bytes]) -> None:
    with pytest.raises(DecodeError) as info:
        decode_hash(key, CacheKeys.parse(key), raw)
    assert info.value.key == key
    assert isinstance(info.value.__cause__, Exception)


def test_hash_reply_for_a_book_key_raises_decode_error() -> None:
    key = CacheKeys.book("X", Side.BID)
    with pytest.raises(DecodeError):
        decode_hash(key, CacheKeys.parse(key), _price_raw())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"1_000", "1000"), (b" 12.50 ", "12.50"), (b"+1e3", "1E+3"), (b".5", "0.5")],
    ids=repr,
)
def test_python_decimal_syntax_that_the_encoder_never_writes_still_decodes(
    raw: bytes, expected: str
) -> None:
    # Decided: the decoder accepts what Decimal() accepts (underscores, spaces,
    # a '+', short forms). The encoder never writes these forms, and the result
    # is still a finite Decimal with the value the bytes spell, so no invalid
    # entity escapes; rejecting them would cost a check on every field of the
    # hot path for bytes that only a foreign writer could have put there.
    decoded = decode_hash(PRICE_KEY, CacheKeys.parse(PRICE_KEY), _price_raw(b=raw))
    assert isinstance(decoded, Price)
    assert str(decoded.bid) == expected


BID_KEY = CacheKeys.book("X", Side.BID)
ASK_KEY = CacheKeys.book("X", Side.ASK)
GARBAGE_BOOKS: list[tuple[str, str, list[bytes]]] = [
    ("empty", BID_KEY, []),
    ("no-metadata", BID_KEY, [b"2|1", b"1|1"]),
    ("metadata-without-timestamp", BID_KEY, [b"#1"]),
    ("metadata-not-int", BID_KEY, [b"#x|1"]),
    ("level-without-separator", BID_KEY, [b"#1|1", b"21"]),
    ("level-nan", BID_KEY, [b"#1|1", b"NaN|1"]),
    ("level-size-infinite", BID_KEY, [b"#1|1", b"1|Infinity"]),
    ("bids-ascending", BID_KEY, [b"#1|1", b"1|1", b"2|1"]),
    ("asks-descending", ASK_KEY, [b"#1|1", b"2|1", b"1|1"]),
    ("equal-prices-in-two-forms", ASK_KEY, [b"#1|1", b"1.1|1", b"1.10|2"]),
    ("second-metadata", ASK_KEY, [b"#1|1", b"#2|2"]),
    ("invalid-utf8", ASK_KEY, [b"#1|1", b"\xff|1"]),
]


@pytest.mark.parametrize(
    ("key", "members"), [g[1:] for g in GARBAGE_BOOKS], ids=[g[0] for g in GARBAGE_BOOKS]
)
def test_garbage_book_raises_decode_error(key: str, members: list[bytes]) -> None:
    with pytest.raises(DecodeError) as info:
        decode_book(key, CacheKeys.parse(key), members)
    assert info.value.key == key


def test_book_reply_for_a_hash_key_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_book(PRICE_KEY, CacheKeys.parse(PRICE_KEY), [b"#1|1"])


# ------------------------------------------------------------------ values refused


def _replace(entity: Any, **changes: Any) -> Any:
    return dataclasses.replace(entity, **changes)


PRICE, POSITION, BID_BOOK, _, RISK, ORDER, _, STRATEGY = EXAMPLES
BAD_VALUES: list[tuple[str, Any, str]] = [
    ("float-bid", _replace(PRICE, bid=64000.1), "bid"),
    ("int-ask", _replace(PRICE, ask=64000), "ask"),
    ("str-last", _replace(PRICE, last="1.5"), "last"),
    ("nan-bid", _replace(PRICE, bid=Decimal("NaN")), "bid"),
    ("snan-ask", _replace(PRICE, ask=Decimal("sNaN")), "ask"),
    ("infinite-quantity", _replace(POSITION, quantity=Decimal("Infinity")), "quantity"),
    ("float-average-price", _replace(POSITION, average_price=1.5), "average_price"),
    ("neg-infinite-pnl", _replace(POSITION, realized_pnl=Decimal("-Infinity")), "realized_pnl"),
    ("float-equity", _replace(RISK, equity=1e12), "equity"),
    ("nan-loss-limit", _replace(RISK, daily_loss_limit=Decimal("NaN")), "daily_loss_limit"),
    ("float-order-price", _replace(ORDER, price=64000.1), "price"),
    ("nan-filled", _replace(ORDER, filled_quantity=Decimal("NaN")), "filled_quantity"),
    ("float-level-price", _replace(BID_BOOK, levels=(BookLevel(1.5, Decimal(1)),)), "level price"),  # type: ignore[arg-type]
    (
        "nan-level-size",
        _replace(BID_BOOK, levels=(BookLevel(Decimal(1), Decimal("NaN")),)),
        "level size",
    ),
    ("float-timestamp", _replace(PRICE, timestamp_ns=1.5), "timestamp_ns"),
    ("bool-version", _replace(POSITION, version=True), "version"),
    ("str-created", _replace(ORDER, created_ns="1"), "created_ns"),
    ("float-book-version", _replace(BID_BOOK, version=1.0), "version"),
    ("str-order-side", _replace(ORDER, side="buy"), "side"),
    ("wrong-enum-type", _replace(ORDER, type=OrderSide.BUY), "type"),
    ("str-status", _replace(ORDER, status="new"), "status"),
    ("str-book-side", _replace(BID_BOOK, side="bid"), "side"),
    ("surrogate-symbol", _replace(ORDER, symbol="BTC\ud800"), "symbol"),
    ("int-strategy-id", _replace(ORDER, strategy_id=5), "strategy_id"),
    ("surrogate-name", _replace(STRATEGY, name="\udc80"), "name"),
    ("non-text-parameter", _replace(STRATEGY, parameters={"a": 1}), "parameters"),
    (
        "bids-not-best-first",
        _replace(
            BID_BOOK, levels=(BookLevel(Decimal(1), Decimal(1)), BookLevel(Decimal(2), Decimal(1)))
        ),
        "levels",
    ),
    (
        "repeated-price",
        _replace(
            BID_BOOK,
            levels=(BookLevel(Decimal("1.1"), Decimal(1)), BookLevel(Decimal("1.10"), Decimal(1))),
        ),
        "levels",
    ),
]


@pytest.mark.parametrize(
    ("entity", "field"), [b[1:] for b in BAD_VALUES], ids=[b[0] for b in BAD_VALUES]
)
def test_value_that_cannot_be_cached_is_refused_naming_the_field(entity: Any, field: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        encode(entity)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    "value", [5, None, "price", Decimal(1), BookLevel(Decimal(1), Decimal(1))], ids=repr
)
def test_non_entity_is_refused(value: Any) -> None:
    with pytest.raises(InvalidValueError) as info:
        encode(value)
    assert info.value.field == "value"
    with pytest.raises(InvalidValueError):
        family_of(value)


def test_parsed_key_of_every_hash_family_is_accepted_by_decode_hash() -> None:
    families = {CacheKeys.parse(key).family for key, _ in HASH_KEYS}
    assert families == set(Family) - {Family.BOOK}
    assert ParsedKey(Family.RISK).spec.family is Family.RISK
