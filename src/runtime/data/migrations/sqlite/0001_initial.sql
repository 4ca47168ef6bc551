-- runtime.data schema v1 (SQLite). Money and quantities are TEXT holding the
-- Decimal's str() so they survive exactly (never REAL); timestamps are INTEGER
-- nanoseconds; every row has a version >= 1.

CREATE TABLE prices (
    symbol        TEXT PRIMARY KEY NOT NULL,
    bid           TEXT    NOT NULL,
    ask           TEXT    NOT NULL,
    last_price    TEXT    NOT NULL,
    timestamp_ns  INTEGER NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1)
) STRICT;

CREATE TABLE book_sides (
    symbol        TEXT    NOT NULL,
    side          TEXT    NOT NULL CHECK (side IN ('bid', 'ask')),
    timestamp_ns  INTEGER NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 1),
    PRIMARY KEY (symbol, side)
) STRICT, WITHOUT ROWID;

CREATE TABLE book_levels (
    symbol  TEXT    NOT NULL,
    side    TEXT    NOT NULL,
    rank    INTEGER NOT NULL CHECK (rank >= 0),
    price   TEXT    NOT NULL,
    size    TEXT    NOT NULL,
    PRIMARY KEY (symbol, side, rank),
    FOREIGN KEY (symbol, side) REFERENCES book_sides (symbol, side) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE positions (
    symbol         TEXT PRIMARY KEY NOT NULL,
    quantity       TEXT    NOT NULL,
    average_price  TEXT    NOT NULL,
    realized_pnl   TEXT    NOT NULL,
    timestamp_ns   INTEGER NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1)
) STRICT;

CREATE TABLE account_risk (
    account_id          INTEGER PRIMARY KEY CHECK (account_id = 1),
    equity              TEXT    NOT NULL,
    margin_used         TEXT    NOT NULL,
    exposure            TEXT    NOT NULL,
    max_exposure        TEXT    NOT NULL,
    max_order_notional  TEXT    NOT NULL,
    daily_loss_limit    TEXT    NOT NULL,
    timestamp_ns        INTEGER NOT NULL,
    version             INTEGER NOT NULL CHECK (version >= 1)
) STRICT;

CREATE TABLE orders (
    order_id         TEXT PRIMARY KEY NOT NULL,
    strategy_id      TEXT    NOT NULL,
    symbol           TEXT    NOT NULL,
    side             TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type       TEXT    NOT NULL CHECK (order_type IN ('limit', 'market')),
    quantity         TEXT    NOT NULL,
    price            TEXT,
    filled_quantity  TEXT    NOT NULL,
    status           TEXT    NOT NULL
        CHECK (status IN ('new', 'partially_filled', 'filled', 'cancelled', 'rejected')),
    created_ns       INTEGER NOT NULL,
    updated_ns       INTEGER NOT NULL,
    version          INTEGER NOT NULL CHECK (version >= 1)
) STRICT;

CREATE INDEX orders_strategy_idx ON orders (strategy_id);

CREATE TABLE strategies (
    strategy_id  TEXT PRIMARY KEY NOT NULL,
    name         TEXT    NOT NULL,
    enabled      INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    parameters   TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1)
) STRICT;
