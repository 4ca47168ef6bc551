"""The key schema: builders, validation (C2), hash tags and fences (C3, C7), TTLs (C1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from runtime.cache.exceptions import ConfigurationError, InvalidKeyError
from runtime.cache.models import (
    MAX_IDENTIFIER_LENGTH,
    CacheKeys,
    Family,
    KeySchema,
    ParsedKey,
    RedisType,
    fence_key,
    to_milliseconds,
    validate_identifier,
)
from runtime.domain import Side
from support.strategies import identifiers


def test_keys_follow_the_schema() -> None:
    assert CacheKeys.price("BTCUSDT") == "price:{BTCUSDT}"
    assert CacheKeys.position("BTCUSDT") == "pos:{BTCUSDT}"
    assert CacheKeys.book("BTCUSDT", "bid") == "book:{BTCUSDT}:bid"
    assert CacheKeys.book("BTCUSDT", Side.ASK) == "book:{BTCUSDT}:ask"
    assert CacheKeys.order("O-1") == "ord:{O-1}"
    assert CacheKeys.strategy("s1") == "strat:{s1}"
    assert CacheKeys.risk() == "risk:account"


def test_identifier_of_maximum_length_is_accepted() -> None:
    longest = "X" * MAX_IDENTIFIER_LENGTH
    assert CacheKeys.price(longest) == f"price:{{{longest}}}"


BAD_IDENTIFIERS: list[Any] = [
    "",
    "A" * (MAX_IDENTIFIER_LENGTH + 1),
    "BTC USDT",
    "BTC\tUSDT",
    "BTC\nUSDT",
    "BTC\x00",
    "BTC\x7f",
    "BTC\x85",  # NEL: Unicode whitespace
    "BTC\x9b",  # C1 control character
    "BTC\u00a0",  # no-break space
    "BTC*",
    "BTC?",
    "BTC[",
    "BTC]",
    "BTC\\",
    "BTC{",
    "BTC}",
    "BTC:USDT",
    5,
    None,
    b"x",
    ["BTC"],  # unhashable: must not escape as TypeError from the memo
]


def _builders() -> list[tuple[str, Any]]:
    return [
        ("symbol", CacheKeys.price),
        ("symbol", CacheKeys.position),
        ("symbol", lambda value: CacheKeys.book(value, Side.BID)),
        ("order_id", CacheKeys.order),
        ("strategy_id", CacheKeys.strategy),
    ]


@pytest.mark.parametrize("bad", BAD_IDENTIFIERS, ids=repr)
@pytest.mark.parametrize(("field", "builder"), _builders(), ids=lambda x: getattr(x, "__name__", x))
def test_bad_identifier_is_rejected_naming_the_field(field: str, builder: Any, bad: Any) -> None:
    with pytest.raises(InvalidKeyError) as info:
        builder(bad)
    assert info.value.field == field
    assert info.value.value is bad
    assert field in str(info.value)
    assert repr(bad)[:20] in str(info.value)


@pytest.mark.parametrize("side", ["mid", "BID", "", " bid", 1, None, ["bid"]], ids=repr)
def test_unknown_book_side_is_rejected_naming_side(side: Any) -> None:
    with pytest.raises(InvalidKeyError) as info:
        CacheKeys.book("BTCUSDT", side)
    assert info.value.field == "side"
    assert repr(side) in str(info.value)


def test_long_bad_value_is_truncated_in_the_message() -> None:
    bad = "x" * 500 + " "
    with pytest.raises(InvalidKeyError) as info:
        CacheKeys.price(bad)
    message = str(info.value)
    assert "..." in message
    assert len(message) < 150
    assert "'xxxxxxxx" in message
    assert info.value.value == bad


def test_validate_identifier_returns_a_valid_value() -> None:
    assert validate_identifier("symbol", "ETH-PERP") == "ETH-PERP"


@given(identifiers(), st.sampled_from(Side))
def test_every_valid_identifier_builds_a_key_that_parses_back(ident: str, side: Side) -> None:
    assert CacheKeys.parse(CacheKeys.price(ident)) == ParsedKey(Family.PRICE, symbol=ident)
    assert CacheKeys.parse(CacheKeys.position(ident)) == ParsedKey(Family.POSITION, symbol=ident)
    assert CacheKeys.parse(CacheKeys.book(ident, side)) == ParsedKey(
        Family.BOOK, symbol=ident, side=side
    )
    assert CacheKeys.parse(CacheKeys.order(ident)) == ParsedKey(Family.ORDER, identifier=ident)
    assert CacheKeys.parse(CacheKeys.strategy(ident)) == ParsedKey(
        Family.STRATEGY, identifier=ident
    )


def test_risk_key_parses() -> None:
    parsed = CacheKeys.parse(CacheKeys.risk())
    assert parsed == ParsedKey(Family.RISK)
    assert parsed.spec.redis_type is RedisType.HASH


@pytest.mark.parametrize(
    "key",
    [
        "foo",
        "",
        "price:BTC",
        "price:{a}x",
        "price:{}",
        "price:{a b}",
        "price:{a}}",
        "xprice:{a}",
        "book:{A}",
        "book:{A}:mid",
        "book:{A}:bid:x",
        "book:{}:bid",
        "risk:{account}",
        "risk:account:x",
        "ord:O-1",
        "strat:{s1}:x",
        5,
        b"price:{a}",
        None,
        ["price:{a}"],
    ],
    ids=repr,
)
def test_parse_rejects_keys_outside_the_schema(key: Any) -> None:
    with pytest.raises(InvalidKeyError) as info:
        CacheKeys.parse(key)
    assert info.value.field == "key"
    assert info.value.value is key


def _slot(key: str) -> int:
    return key_slot(key.encode())


@given(identifiers(), st.sampled_from(Side))
def test_fence_key_keeps_the_slot_of_its_key(ident: str, side: Side) -> None:
    keys = [
        CacheKeys.price(ident),
        CacheKeys.position(ident),
        CacheKeys.book(ident, side),
        CacheKeys.order(ident),
        CacheKeys.strategy(ident),
        CacheKeys.risk(),
    ]
    for key in keys:
        fence = fence_key(key)
        assert fence != key
        assert _slot(fence) == _slot(key), key


@given(identifiers())
def test_one_symbols_keys_share_a_slot(symbol: str) -> None:
    slots = {
        _slot(CacheKeys.price(symbol)),
        _slot(CacheKeys.position(symbol)),
        _slot(CacheKeys.book(symbol, Side.BID)),
        _slot(CacheKeys.book(symbol, Side.ASK)),
    }
    assert len(slots) == 1


def test_default_ttls_are_milliseconds() -> None:
    schema = KeySchema()
    assert {family: schema.ttl_ms(family) for family in Family} == {
        Family.PRICE: 100,
        Family.POSITION: 1_000,
        Family.BOOK: 50,
        Family.RISK: 5_000,
        Family.ORDER: 60_000,
        Family.STRATEGY: 60_000,
    }
    assert schema.fence_ttl_ms(Family.PRICE) == 100 + 10_000
    assert {spec.redis_type for spec in schema.families()} == {RedisType.HASH, RedisType.ZSET}
    assert schema.spec(Family.BOOK).redis_type is RedisType.ZSET


def test_ttl_overrides_take_seconds_or_timedelta() -> None:
    schema = KeySchema(
        ttl={Family.PRICE: 0.25, "book": timedelta(milliseconds=20), "ord": 2},
        fence_margin=timedelta(seconds=1),
    )
    assert schema.ttl_ms(Family.PRICE) == 250
    assert schema.ttl_ms(Family.BOOK) == 20
    assert schema.ttl_ms(Family.ORDER) == 2_000
    assert schema.ttl_ms(Family.RISK) == 5_000
    assert schema.fence_ttl_ms(Family.BOOK) == 1_020
    assert "price=250ms" in repr(schema)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"ttl": {"prices": 1.0}}, "ttl"),
        ({"ttl": {5: 1.0}}, "ttl"),
        ({"ttl": {"price": 0}}, "ttl[price]"),
        ({"ttl": {"price": 0.0001}}, "ttl[price]"),
        ({"ttl": {"book": -1.0}}, "ttl[book]"),
        ({"ttl": {"risk": timedelta(0)}}, "ttl[risk]"),
        ({"ttl": {"risk": timedelta(seconds=-5)}}, "ttl[risk]"),
        ({"ttl": {"pos": "1"}}, "ttl[pos]"),
        ({"ttl": {"pos": None}}, "ttl[pos]"),
        ({"ttl": {"pos": True}}, "ttl[pos]"),
        ({"ttl": {"ord": float("nan")}}, "ttl[ord]"),
        ({"ttl": {"ord": float("inf")}}, "ttl[ord]"),
        ({"fence_margin": 0}, "fence_margin"),
        ({"fence_margin": float("-inf")}, "fence_margin"),
        ({"fence_margin": "10"}, "fence_margin"),
    ],
    ids=repr,
)
def test_bad_ttl_configuration_is_rejected_naming_the_option(
    kwargs: dict[str, Any], option: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        KeySchema(**kwargs)
    assert option in str(info.value)


def test_to_milliseconds_rounds_to_whole_milliseconds() -> None:
    assert to_milliseconds("x", 0.0015) == 2
    assert to_milliseconds("x", timedelta(microseconds=1_400)) == 1
    assert to_milliseconds("x", 3) == 3_000
