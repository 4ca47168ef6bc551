-- runtime.data schema v1 (PostgreSQL). Money and quantities are NUMERIC (exact,
-- unbounded scale); timestamps are BIGINT nanoseconds; every row has a version >= 1.

CREATE TABLE prices (
    symbol        TEXT PRIMARY KEY,
    bid           NUMERIC NOT NULL CHECK (bid >= 0),
    ask           NUMERIC NOT NULL CHECK (ask >= 0),
    last_price    NUMERIC NOT NULL CHECK (last_price >= 0),
    timestamp_ns  BIGINT  NOT NULL,
    version       BIGINT  NOT NULL CHECK (version >= 1)
);

CREATE TABLE book_sides (
    symbol        TEXT   NOT NULL,
    side          TEXT   NOT NULL CHECK (side IN ('bid', 'ask')),
    timestamp_ns  BIGINT NOT NULL,
    version       BIGINT NOT NULL CHECK (version >= 1),
    PRIMARY KEY (symbol, side)
);

CREATE TABLE book_levels (
    symbol  TEXT    NOT NULL,
    side    TEXT    NOT NULL,
    rank    INTEGER NOT NULL CHECK (rank >= 0),
    price   NUMERIC NOT NULL CHECK (price >= 0),
    size    NUMERIC NOT NULL CHECK (size >= 0),
    PRIMARY KEY (symbol, side, rank),
    FOREIGN KEY (symbol, side) REFERENCES book_sides (symbol, side) ON DELETE CASCADE
);

CREATE TABLE positions (
    symbol         TEXT PRIMARY KEY,
    quantity       NUMERIC NOT NULL,
    average_price  NUMERIC NOT NULL CHECK (average_price >= 0),
    realized_pnl   NUMERIC NOT NULL,
    timestamp_ns   BIGINT  NOT NULL,
    version        BIGINT  NOT NULL CHECK (version >= 1)
);

CREATE TABLE account_risk (
    account_id          SMALLINT PRIMARY KEY CHECK (account_id = 1),
    equity              NUMERIC NOT NULL,
    margin_used         NUMERIC NOT NULL,
    exposure            NUMERIC NOT NULL,
    max_exposure        NUMERIC NOT NULL,
    max_order_notional  NUMERIC NOT NULL,
    daily_loss_limit    NUMERIC NOT NULL,
    timestamp_ns        BIGINT  NOT NULL,
    version             BIGINT  NOT NULL CHECK (version >= 1)
);

CREATE TABLE orders (
    order_id         TEXT PRIMARY KEY,
    strategy_id      TEXT    NOT NULL,
    symbol           TEXT    NOT NULL,
    side             TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type       TEXT    NOT NULL CHECK (order_type IN ('limit', 'market')),
    quantity         NUMERIC NOT NULL CHECK (quantity > 0),
    price            NUMERIC CHECK (price >= 0),
    filled_quantity  NUMERIC NOT NULL CHECK (filled_quantity >= 0 AND filled_quantity <= quantity),
    status           TEXT    NOT NULL
        CHECK (status IN ('new', 'partially_filled', 'filled', 'cancelled', 'rejected')),
    created_ns       BIGINT  NOT NULL,
    updated_ns       BIGINT  NOT NULL,
    version          BIGINT  NOT NULL CHECK (version >= 1)
);

CREATE INDEX orders_strategy_idx ON orders (strategy_id);

CREATE TABLE strategies (
    strategy_id  TEXT PRIMARY KEY,
    name         TEXT    NOT NULL,
    enabled      BOOLEAN NOT NULL,
    parameters   JSONB   NOT NULL,
    version      BIGINT  NOT NULL CHECK (version >= 1)
);
