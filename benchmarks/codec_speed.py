"""Microseconds per encode and decode of each family, and of a full snapshot.

Replies are built as a real Redis returns them to redis-py (a hash as a dict of
bytes, a book side as its members best-first). A snapshot is a price, two book
sides of 10 levels, a position and the account risk.

Run: ``python benchmarks/codec_speed.py [--number N] [--repeat R]``.
Prints the best and the median of R timeit runs of N calls each.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from decimal import Decimal

from runtime.cache.codecs import HashFields, decode_book, decode_hash, encode
from runtime.cache.models import CacheKeys
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

__all__ = ["main"]

T0 = 1_700_000_000_000_000_000


def _wire(value: bytes | str | int) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode() if isinstance(value, int) else value.encode()


def _hash(fields: HashFields) -> dict[bytes, bytes]:
    return dict(zip(map(_wire, fields[::2]), map(_wire, fields[1::2]), strict=True))


def _members(fields: HashFields) -> list[bytes]:
    pairs = sorted(zip(fields[::2], fields[1::2], strict=True), key=lambda pair: pair[0])
    return [_wire(member) for _, member in pairs]


def _book(side: Side) -> BookSide:
    step = Decimal("-0.10") if side is Side.BID else Decimal("0.10")
    start = Decimal("64000.00") if side is Side.BID else Decimal("64000.10")
    levels = tuple(BookLevel(start + i * step, Decimal("1.2345") + i) for i in range(10))
    return BookSide("BTCUSDT", side, levels, T0, 7)


def _cases() -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    price = Price("BTCUSDT", Decimal("64000.00"), Decimal("64000.10"), Decimal("64000.05"), T0, 3)
    position = Position("BTCUSDT", Decimal("-0.500"), Decimal("63990.5"), Decimal("12.25"), T0, 4)
    risk = AccountRisk(
        Decimal("1000000.00"),
        Decimal("25000.50"),
        Decimal("32000.00"),
        Decimal("500000"),
        Decimal("50000"),
        Decimal("-20000"),
        T0,
        9,
    )
    order = Order(
        "O-1",
        "s1",
        "BTCUSDT",
        OrderSide.BUY,
        OrderType.LIMIT,
        Decimal("0.010"),
        Decimal("64000.1"),
        Decimal("0"),
        OrderStatus.NEW,
        T0,
        T0,
        2,
    )
    strategy = StrategyConfig("s1", "mean reversion", True, {"window": "20", "z": "1.5"}, 6)
    bid, ask = _book(Side.BID), _book(Side.ASK)

    keys = {
        "price": CacheKeys.price("BTCUSDT"),
        "position": CacheKeys.position("BTCUSDT"),
        "risk": CacheKeys.risk(),
        "order": CacheKeys.order("O-1"),
        "strategy": CacheKeys.strategy("s1"),
        "book_bid": CacheKeys.book("BTCUSDT", Side.BID),
        "book_ask": CacheKeys.book("BTCUSDT", Side.ASK),
    }
    parsed = {name: CacheKeys.parse(key) for name, key in keys.items()}
    hashes = {
        "price": _hash(encode(price)),
        "position": _hash(encode(position)),
        "risk": _hash(encode(risk)),
        "order": _hash(encode(order)),
        "strategy": _hash(encode(strategy)),
    }
    books = {"book_bid": _members(encode(bid)), "book_ask": _members(encode(ask))}

    def decoder(name: str) -> Callable[[], object]:
        key, p = keys[name], parsed[name]
        if name in books:
            members = books[name]
            return lambda: decode_book(key, p, members)
        raw = hashes[name]
        return lambda: decode_hash(key, p, raw)

    decoders = {name: decoder(name) for name in keys}

    def snapshot_decode() -> object:
        return (
            decoders["price"](),
            decoders["book_bid"](),
            decoders["book_ask"](),
            decoders["position"](),
            decoders["risk"](),
        )

    def snapshot_encode() -> object:
        return encode(price), encode(bid), encode(ask), encode(position), encode(risk)

    entities: dict[str, object] = {
        "price": price,
        "position": position,
        "risk": risk,
        "order": order,
        "strategy": strategy,
        "book_bid": bid,
        "book_ask": ask,
    }
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {}
    for name, entity in entities.items():
        cases[name] = (lambda e=entity: encode(e), decoders[name])  # type: ignore[misc]
    cases["snapshot (price+2x10 book+pos+risk)"] = (snapshot_encode, snapshot_decode)
    return cases


def _measure(func: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    runs = timeit.repeat(func, number=number, repeat=repeat)
    per_call = [run / number * 1e6 for run in runs]
    return min(per_call), statistics.median(per_call)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{'case':38} {'encode us (best/median)':>24} {'decode us (best/median)':>24}")
    for name, (enc, dec) in _cases().items():
        number = args.number // 10 if name.startswith("snapshot") else args.number
        e_best, e_med = _measure(enc, number, args.repeat)
        d_best, d_med = _measure(dec, number, args.repeat)
        print(f"{name:38} {e_best:11.2f} / {e_med:9.2f} {d_best:13.2f} / {d_med:9.2f}")


if __name__ == "__main__":
    main()
