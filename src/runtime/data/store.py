"""The contract of a source-of-truth store: :class:`Store` and :class:`StoreTransaction`.

Both engines (:class:`~runtime.data.postgres.PostgresStore`,
:class:`~runtime.data.sqlite.SqliteStore`) implement it with identical behaviour.

Versions: every row has an integer version. A new row gets ``1``; every write of
the row adds exactly ``1``, atomically in SQL. The ``version`` field of a value
passed to ``put_*`` is ignored; ``put_*`` returns the committed version and the
entities returned by ``get_*`` carry the stored one.

``expected_version`` on ``put_*``:

- ``None``: unconditional write (insert or update);
- ``0``: the row must not exist yet (insert only);
- ``n > 0``: the row must exist at version ``n``.

Anything else raises :class:`~runtime.data.errors.ConflictError` and writes nothing.

Errors: :class:`~runtime.data.errors.ValidationError` for bad input (before any
SQL), ``ConflictError``, ``NotFoundError``, ``StoreUnavailableError``; never a raw
driver error.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Protocol, runtime_checkable

from runtime.domain import (
    AccountRisk,
    BookSide,
    FillResult,
    Order,
    Position,
    Price,
    Side,
    StrategyConfig,
)

__all__ = ["Store", "StoreTransaction"]


@runtime_checkable
class StoreTransaction(Protocol):
    """Reads and writes inside one database transaction (see :meth:`Store.transaction`).

    Reads see the transaction's own writes; ``put_*`` returns the new version at
    once. Nothing is visible to others before the transaction commits.
    """

    async def get_price(self, symbol: str) -> Price | None: ...

    async def get_book(
        self, symbol: str, side: Side, depth: int | None = None
    ) -> BookSide | None: ...

    async def get_position(self, symbol: str) -> Position | None: ...

    async def get_risk(self) -> AccountRisk | None: ...

    async def get_order(self, order_id: str) -> Order | None: ...

    async def get_strategy(self, strategy_id: str) -> StrategyConfig | None: ...

    async def get_position_and_risk(
        self, symbol: str
    ) -> tuple[Position | None, AccountRisk | None]: ...

    async def put_price(self, price: Price, *, expected_version: int | None = None) -> int: ...

    async def put_book(self, book: BookSide, *, expected_version: int | None = None) -> int: ...

    async def put_position(
        self, position: Position, *, expected_version: int | None = None
    ) -> int: ...

    async def put_risk(self, risk: AccountRisk, *, expected_version: int | None = None) -> int: ...

    async def put_order(self, order: Order, *, expected_version: int | None = None) -> int: ...

    async def put_strategy(
        self, config: StrategyConfig, *, expected_version: int | None = None
    ) -> int: ...

    async def apply_fill(
        self, order_id: str, quantity: Decimal, price: Decimal, timestamp_ns: int
    ) -> FillResult: ...


@runtime_checkable
class Store(StoreTransaction, Protocol):
    """An async source of truth for the runtime's entities.

    Single calls are atomic on their own: ``get_book`` and ``get_position_and_risk``
    each read one consistent snapshot; ``put_book`` replaces the whole side;
    ``apply_fill`` updates order, position and account risk in one transaction
    holding row locks (see :mod:`runtime.data.fills` for the arithmetic).
    """

    async def migrate(self) -> None:
        """Apply the missing schema migrations; a second run changes nothing."""
        ...

    async def close(self) -> None:
        """Release every connection; idempotent. Later calls raise ``StoreUnavailableError``."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """A unit of work: commits on normal exit, rolls back and re-raises on an exception."""
        ...
