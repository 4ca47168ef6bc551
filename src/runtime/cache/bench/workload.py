"""The actors of the standard workload and one timed phase of them.

:func:`run_phase` runs the feed (``feed_rate`` updates per second in total, Zipf
symbols, price and both book sides per update) and ``tasks`` strategy loops
(snapshot of a Zipf symbol; place an order with ``order_probability``; fill one
of its open orders with ``fill_probability``; read its config every
``strategy_read_every`` loops and one of its open orders every
``order_read_every`` loops) against one :class:`~.backends.Backend`. After
``warmup`` seconds it calls ``on_measure`` and starts recording; after
``duration`` more it stops the actors and returns the :class:`PhaseResult`.

Every exception that reaches an actor is counted (an error raised to a
strategy or the feed) and the actor carries on; none is swallowed unseen.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runtime.cache.bench.backends import Backend, VersionTracker, capture_versions, snapshot_keys
from runtime.cache.bench.market import MarketSimulator, Zipf, lot_size
from runtime.cache.bench.params import WorkloadParams
from runtime.cache.facade import Snapshot
from runtime.cache.models import CacheKeys
from runtime.data import SeededUniverse
from runtime.domain import Order, OrderSide, OrderStatus, OrderType

__all__ = ["FEED_WORKERS", "PhaseResult", "Recorder", "run_phase"]

logger = logging.getLogger(__name__)

FEED_WORKERS = 4
"""The feed's updates are issued by this many tasks sharing one schedule, so one
slow store transaction does not hold the whole feed back."""

_run_ids = itertools.count(1)
_RUN_TAG = secrets.token_hex(3)  # order ids stay unique across runs on one store


class Recorder:
    """Latency samples (ns) and start offsets per operation, while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self.started_ns = 0
        self.latencies: dict[str, array[int]] = {}
        self.starts: dict[str, array[int]] = {}
        self.errors: dict[str, int] = {}
        self.error_examples: list[str] = []

    def start(self) -> None:
        self.latencies.clear()
        self.starts.clear()
        self.started_ns = time.perf_counter_ns()
        self.active = True

    def add(self, operation: str, started_ns: int, ended_ns: int) -> None:
        if self.active:
            latencies = self.latencies.get(operation)
            if latencies is None:
                latencies = self.latencies[operation] = array("q")
                self.starts[operation] = array("q")
            latencies.append(ended_ns - started_ns)
            self.starts[operation].append(started_ns - self.started_ns)

    def error(self, actor: str, operation: str, exc: BaseException) -> None:
        name = f"{actor}.{operation}: {type(exc).__name__}"
        self.errors[name] = self.errors.get(name, 0) + 1
        if len(self.error_examples) < 5:
            self.error_examples.append(f"{name}: {exc}")
        logger.warning("error raised to %s during %s: %r", actor, operation, exc)


@dataclass(slots=True)
class PhaseResult:
    """What one phase measured."""

    name: str
    tasks: int
    seconds: float
    recorder: Recorder
    feed_updates: int
    tracker: VersionTracker
    extra: dict[str, Any] = field(default_factory=dict)


class _Actors:
    def __init__(
        self,
        backend: Backend,
        universe: SeededUniverse,
        params: WorkloadParams,
        recorder: Recorder,
        tracker: VersionTracker,
        *,
        seed: int,
        check_versions: bool,
        after_read: Callable[[], None] | None,
    ) -> None:
        self.backend = backend
        self.universe = universe
        self.params = params
        self.recorder = recorder
        self.tracker = tracker
        self.check_versions = check_versions
        self.after_read = after_read
        self.stopping = False
        self.feed_updates = 0
        self.seed = seed
        self.run_id = next(_run_ids)
        rng = random.Random(seed)
        self.market = MarketSimulator(universe, random.Random(rng.random()))
        self.feed_zipf = Zipf(len(universe.symbols), params.zipf_exponent, random.Random(seed + 1))

    async def feed(self, worker: int, workers: int, rate: float) -> None:
        if rate <= 0:
            return
        symbols = self.universe.symbols
        interval = workers / rate
        clock = time.perf_counter
        next_at = clock() + interval * worker / workers
        while not self.stopping:
            delay = next_at - clock()
            if delay > 0:
                await asyncio.sleep(delay)
                if self.stopping:
                    return
            next_at = max(next_at + interval, clock() - 1.0)  # never burst more than 1 s of backlog
            symbol = symbols[self.feed_zipf.draw()]
            price, bids, asks = self.market.update(symbol, time.time_ns())
            started = time.perf_counter_ns()
            try:
                async with capture_versions() as captured:
                    await self.backend.update_market(price, bids, asks)
            except Exception as exc:
                self.recorder.error("feed", "update_market", exc)
                continue
            self.recorder.add("update_market", started, time.perf_counter_ns())
            self.tracker.returned(captured)
            self.feed_updates += 1

    async def strategy(self, index: int) -> None:
        universe, params, backend = self.universe, self.params, self.backend
        recorder, tracker = self.recorder, self.tracker
        strategy_id = universe.strategy_ids[index % len(universe.strategy_ids)]
        rng = random.Random(self.seed * 1_000 + index)
        zipf = Zipf(len(universe.symbols), params.zipf_exponent, rng)
        symbols = universe.symbols
        open_orders: dict[str, Order] = {}
        order_numbers = itertools.count(1)
        check = self.check_versions
        clock = time.perf_counter_ns
        for loop in itertools.count():
            if self.stopping:
                return
            symbol = symbols[zipf.draw()]
            keys = snapshot_keys(symbol)
            floors = tracker.floors(keys) if check else []
            started = clock()
            try:
                snap = await backend.snapshot(symbol, params.depth)
            except Exception as exc:
                recorder.error(strategy_id, "snapshot", exc)
                snap = None
            else:
                recorder.add("snapshot", started, clock())
                if check and isinstance(snap, Snapshot):
                    tracker.check_snapshot(keys, floors, snap)
                if self.after_read is not None:
                    self.after_read()
            if rng.random() < params.order_probability:
                number = f"t{index}-{next(order_numbers)}"
                order = self._new_order(strategy_id, symbol, snap, rng, number)
                await self._put_order(strategy_id, order, open_orders)
            if open_orders and rng.random() < params.fill_probability:
                await self._fill(strategy_id, rng, open_orders)
            if loop % params.strategy_read_every == 0:
                started = clock()
                try:
                    await backend.strategy(strategy_id)
                except Exception as exc:
                    recorder.error(strategy_id, "strategy", exc)
                else:
                    recorder.add("strategy", started, clock())
            if open_orders and loop % params.order_read_every == 0:
                await self._read_order(strategy_id, rng, open_orders)

    def _new_order(
        self, strategy_id: str, symbol: str, snap: object, rng: random.Random, number: str
    ) -> Order:
        tick = self.market.tick(symbol)
        lot = lot_size(tick)
        side = OrderSide.BUY if rng.random() < 0.5 else OrderSide.SELL
        price = snap.price if isinstance(snap, Snapshot) else None
        if price is not None:
            limit = price.bid if side is OrderSide.BUY else price.ask
        else:
            limit = self.universe.prices[symbol].bid
        now = time.time_ns()
        return Order(
            order_id=f"b{_RUN_TAG}r{self.run_id}-{strategy_id}-{number}",  # unique per task,
            strategy_id=strategy_id,
            symbol=symbol,
            side=side,
            type=OrderType.LIMIT,
            quantity=Decimal(rng.randint(1, 5) * lot),
            price=limit,
            filled_quantity=Decimal(0),
            status=OrderStatus.NEW,
            created_ns=now,
            updated_ns=now,
        )

    async def _put_order(
        self, strategy_id: str, order: Order, open_orders: dict[str, Order]
    ) -> None:
        started = time.perf_counter_ns()
        try:
            async with capture_versions() as captured:
                await self.backend.put_order(order)
        except Exception as exc:
            self.recorder.error(strategy_id, "put_order", exc)
            return
        self.recorder.add("put_order", started, time.perf_counter_ns())
        self.tracker.returned(captured)
        open_orders[order.order_id] = order

    async def _fill(
        self, strategy_id: str, rng: random.Random, open_orders: dict[str, Order]
    ) -> None:
        order = open_orders[rng.choice(list(open_orders))]
        remaining = order.quantity - order.filled_quantity
        lot = Decimal(lot_size(self.market.tick(order.symbol)))
        quantity = lot if remaining > lot and rng.random() < 0.5 else remaining
        assert order.price is not None
        started = time.perf_counter_ns()
        try:
            async with capture_versions() as captured:
                result = await self.backend.fill(
                    order.order_id, quantity, order.price, time.time_ns()
                )
        except Exception as exc:
            self.recorder.error(strategy_id, "fill", exc)
            return
        self.recorder.add("fill", started, time.perf_counter_ns())
        self.tracker.returned(captured)
        if result.order.status.is_open:
            open_orders[order.order_id] = result.order
        else:
            del open_orders[order.order_id]

    async def _read_order(
        self, strategy_id: str, rng: random.Random, open_orders: dict[str, Order]
    ) -> None:
        order_id = rng.choice(list(open_orders))
        keys = (CacheKeys.order(order_id),)
        floors = self.tracker.floors(keys) if self.check_versions else []
        started = time.perf_counter_ns()
        try:
            order = await self.backend.order(order_id)
        except Exception as exc:
            self.recorder.error(strategy_id, "order", exc)
            return
        self.recorder.add("order", started, time.perf_counter_ns())
        if self.check_versions:
            self.tracker.check(keys, floors, [None if order is None else order.version])


async def run_phase(
    name: str,
    backend: Backend,
    universe: SeededUniverse,
    params: WorkloadParams,
    *,
    tasks: int,
    warmup: float,
    duration: float,
    seed: int,
    check_versions: bool = True,
    on_measure: Callable[[], None] | None = None,
    after_read: Callable[[], None] | None = None,
    progress: Callable[[str, float], None] | None = None,
    tracker: VersionTracker | None = None,
) -> PhaseResult:
    """Run the actors for ``warmup`` + ``duration`` seconds; see the module doc."""
    recorder = Recorder()
    tracker = tracker if tracker is not None else VersionTracker()
    actors = _Actors(
        backend,
        universe,
        params,
        recorder,
        tracker,
        seed=seed,
        check_versions=check_versions,
        after_read=after_read,
    )
    running = [
        asyncio.create_task(actors.feed(w, FEED_WORKERS, params.feed_rate), name=f"feed-{w}")
        for w in range(FEED_WORKERS)
    ] + [asyncio.create_task(actors.strategy(i), name=f"strategy-{i}") for i in range(tasks)]
    try:
        await _tick(f"{name} (warm-up)", warmup, progress)
        if on_measure is not None:
            on_measure()
        recorder.start()
        feed_before = actors.feed_updates
        started = time.perf_counter()
        await _tick(name, duration, progress)
        recorder.active = False
        seconds = time.perf_counter() - started
        feed_updates = actors.feed_updates - feed_before
    finally:
        actors.stopping = True
        done, pending = await asyncio.wait(running, timeout=10.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise RuntimeError(f"workload actor {task.get_name()} crashed") from task.exception()
    return PhaseResult(name, tasks, seconds, recorder, feed_updates, tracker)


async def _tick(label: str, seconds: float, progress: Callable[[str, float], None] | None) -> None:
    if seconds <= 0:
        return
    end = time.perf_counter() + seconds
    while True:
        left = end - time.perf_counter()
        if progress is not None:
            progress(label, min(1.0, 1.0 - left / seconds))
        if left <= 0:
            return
        await asyncio.sleep(min(0.25, left))
