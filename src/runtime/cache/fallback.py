"""The fallback: every Redis operation through the breaker, the store when Redis fails.

:class:`FallbackHandler` is where "Redis failed, read the source of truth" is
decided, explicitly and counted (C11, C13):

- :meth:`~FallbackHandler.execute` runs one Redis operation under a circuit
  breaker permit and an operation deadline that wraps the whole call (pool wait,
  retries and all), so no read outlives its budget. redis-py drops a connection
  whose read was abandoned mid-reply instead of pooling it, so the next command
  never reads someone else's reply. Errors come out as ``CacheError``.
- :meth:`~FallbackHandler.load` runs a loader under a bound on concurrent
  source-of-truth loads (callers past the bound wait within ``load_wait``);
  :meth:`~FallbackHandler.record_fallback` counts a read served from the store.
- Keys whose cache update failed, or was skipped while Redis was unreachable,
  are remembered (:meth:`~FallbackHandler.remember_invalidation`): reads of them
  bypass the cache, and they are invalidated before the cache serves them
  again (C10). Past ``max_pending`` keys, whole families are marked and, on
  recovery, cleared with ``SCAN`` + ``UNLINK``.
- A background task notices recovery without traffic: while the breaker is
  not closed it runs the manager's health check, and once Redis answers and the
  breaker admits a probe, the probe flushes the pending invalidations and
  pings; its outcome decides the breaker's state.

While the breaker is OPEN nothing is written to Redis: writes skip the cache
and are remembered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

from redis import exceptions as redis_exc

from runtime.cache import metrics
from runtime.cache.circuit_breaker import BreakerState, CircuitBreaker, Permit
from runtime.cache.exceptions import (
    CacheClientError,
    CacheClusterDownError,
    CacheConnectionError,
    CacheError,
    CacheLoadingError,
    CacheOutOfMemoryError,
    CacheReadOnlyError,
    CacheTimeoutError,
    CircuitOpenError,
    ConfigurationError,
    LoadBusyError,
    PoolExhaustedError,
    translate_redis_error,
    translate_redis_errors,
)
from runtime.cache.models import Family, KeySchema, to_milliseconds
from runtime.cache.scripts import INVALIDATE, UNKNOWN_VERSION
from runtime.cache.singleflight import SingleFlight
from runtime.cache.topology import clear_matching, invalidate_grouped

if TYPE_CHECKING:
    from runtime.cache.manager import CacheManager, RedisClient

__all__ = ["FallbackHandler", "FallbackStatistics", "fallback_reason"]

_log = logging.getLogger(__name__)

R = TypeVar("R")
T = TypeVar("T")

_SCAN_BATCH: Final = 500
_REDIS_ERRORS: Final = (
    redis_exc.RedisError,
    redis_exc.RedisClusterException,
    OSError,
)

_REASONS: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (CircuitOpenError, "open"),
    (CacheTimeoutError, "timeout"),
    (CacheConnectionError, "connection"),
    (CacheLoadingError, "loading"),
    (CacheReadOnlyError, "readonly"),
    (CacheClusterDownError, "cluster_down"),
    (PoolExhaustedError, "pool_exhausted"),
    (CacheOutOfMemoryError, "oom"),
)


def fallback_reason(exc: BaseException) -> str:
    """The ``reason`` label of a fallback caused by ``exc``."""
    for error_type, reason in _REASONS:
        if isinstance(exc, error_type):
            return reason
    return "error"


@dataclass(frozen=True, slots=True)
class FallbackStatistics:
    """Counters of one handler since it was created."""

    fallbacks: int
    fallbacks_by_reason: dict[str, int]
    pending_invalidations: int
    dirty_families: tuple[str, ...]
    loads_in_flight: int
    load_bound: int
    recoveries: int
    invalidations_flushed: int
    local_timeouts: int


class FallbackHandler:
    """Runs Redis operations through the breaker and serves the store when they fail.

    ``operation_timeout`` bounds every Redis operation end to end (default
    50 ms: loopback Redis answers in well under a millisecond, and the store
    must still answer within the caller's 100 ms floor). ``max_concurrent_loads``
    bounds concurrent loader calls; a caller waits up to ``load_wait`` for a slot.
    ``max_pending`` bounds the remembered keys before whole families are marked.
    ``recovery_interval`` is how often the background task checks on a Redis that
    is not serving.
    """

    def __init__(
        self,
        manager: CacheManager,
        *,
        breaker: CircuitBreaker | None = None,
        schema: KeySchema | None = None,
        operation_timeout: float | timedelta = 0.05,
        recovery_budget: float | timedelta = 5.0,
        max_concurrent_loads: int = 32,
        load_wait: float | timedelta = 1.0,
        max_pending: int = 10_000,
        recovery_interval: float | timedelta = 0.5,
    ) -> None:
        if max_concurrent_loads < 1:
            raise ConfigurationError(
                f"max_concurrent_loads must be >= 1, got {max_concurrent_loads}"
            )
        if max_pending < 1:
            raise ConfigurationError(f"max_pending must be >= 1, got {max_pending}")
        self._manager = manager
        self._breaker = breaker if breaker is not None else CircuitBreaker()
        self._schema = schema if schema is not None else KeySchema()
        self._timeout = to_milliseconds("operation_timeout", operation_timeout) / 1000
        self._recovery_budget = to_milliseconds("recovery_budget", recovery_budget) / 1000
        self._load_wait = to_milliseconds("load_wait", load_wait) / 1000
        self._recovery_interval = to_milliseconds("recovery_interval", recovery_interval) / 1000
        self._load_bound = max_concurrent_loads
        self._load_slots = asyncio.Semaphore(max_concurrent_loads)
        self._loads_in_flight = 0
        self._max_pending = max_pending
        self._pending: dict[str, tuple[Family, int]] = {}
        self._dirty_families: set[Family] = set()
        self._fallbacks: dict[str, int] = {}
        self._recoveries = 0
        self._flushed = 0
        self._invalidate: Any = None
        self.loads: SingleFlight[Hashable, Any] = SingleFlight("store loads")
        self._recovery_task: asyncio.Task[None] | None = None
        self._confirm_task: asyncio.Task[None] | None = None
        self._unconfirmed: list[Permit] = []
        self._local_timeouts = 0
        self._wake = asyncio.Event()
        self._closed = False
        self._breaker.add_listener(self._on_transition)

    # ------------------------------------------------------------ properties

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def manager(self) -> CacheManager:
        return self._manager

    @property
    def schema(self) -> KeySchema:
        return self._schema

    @property
    def operation_timeout(self) -> float:
        """Seconds one Redis operation may take, end to end."""
        return self._timeout

    # ------------------------------------------------------------ Redis operations

    async def execute(self, operation: Callable[[RedisClient], Awaitable[R]]) -> R:
        """Run ``operation`` on the shared client under a breaker permit and the deadline.

        Raises :class:`CircuitOpenError` without I/O while the breaker rejects (or
        while recovery work is pending), and the translated ``CacheError`` when
        the operation fails; the breaker counts the failure if it is a cache
        fault. Never retries past the deadline.
        """
        if (self._dirty_families or self._pending) and (
            self._breaker.state is not BreakerState.CLOSED
        ):
            # Recovery (invalidating what the outage left stale) is the
            # background task's job; readers do not carry it.
            self._wake.set()
            raise CircuitOpenError(self._breaker.statistics().retry_after)
        permit = self._breaker.acquire()
        started = time.perf_counter()
        slots = self._manager.operation_slots
        queued = slots is not None and slots.locked()
        holding = False
        try:
            async with asyncio.timeout(self._timeout):
                if slots is not None:
                    await slots.acquire()
                    holding = True
                try:
                    result = await operation(self._manager.get_connection())
                except _REDIS_ERRORS as exc:
                    # translate_redis_errors() inlined: a with-block costs ~1 us here
                    translated = translate_redis_error(exc)
                    if translated is None:  # pragma: no cover - every redis error maps
                        raise
                    raise translated from exc
                except (CacheError, asyncio.CancelledError, TimeoutError):
                    raise
                except Exception as exc:
                    # Not a Redis error: a bug in the client (seen: redis-py's cluster
                    # client writing to a connection closed under it). The reader
                    # must still get the store's value (C11), so it becomes ours.
                    _log.error("unexpected error from the Redis client: %r", exc, exc_info=exc)
                    raise CacheClientError(f"{type(exc).__name__}: {exc}") from exc
        except asyncio.CancelledError:
            permit.release()
            raise
        except TimeoutError as exc:
            if queued:
                # It queued for a connection and the queue ate its budget: our
                # saturation, not Redis' fault (calls that found a free slot
                # still tell a frozen Redis apart, below).
                permit.release()
                raise PoolExhaustedError(
                    f"no answer within the {self._timeout * 1000:.0f} ms deadline after "
                    "queueing for a pooled connection"
                ) from exc
            error = CacheTimeoutError(
                f"no answer within the {self._timeout * 1000:.0f} ms deadline"
            )
            # A deadline can also pass because this process is saturated (a busy
            # event loop, a full pool): that is not Redis failing, and opening the
            # breaker would move the whole load onto the database. The timeout
            # counts only once a health check on its own connection confirms it.
            self._note_timeout(permit)
            raise error from exc
        except BaseException as exc:
            permit.record_failure(exc)
            if isinstance(exc, CacheError) and exc.counts_as_fault:
                self._wake.set()
            raise
        finally:
            if holding and slots is not None:
                slots.release()
        permit.record_success(time.perf_counter() - started)
        return result

    def _note_timeout(self, permit: Permit) -> None:
        """Hand a timed-out call's permit to the confirmation task."""
        if self._closed:
            permit.release()
            return
        self._unconfirmed.append(permit)
        if self._confirm_task is None and not self._closed:
            self._confirm_task = asyncio.create_task(
                self._confirm_timeouts(), name="runtime-cache-confirm-timeouts"
            )

    async def _confirm_timeouts(self) -> None:
        """Count deadline timeouts as cache faults only if Redis fails a health check.

        The permits stay out until then: a timed-out half-open probe keeps the
        breaker half-open (everyone else falls back) until its outcome is known.
        """
        try:
            while self._unconfirmed:
                permits, self._unconfirmed = self._unconfirmed, []
                try:
                    healthy = await self._manager.health_check()
                except BaseException:
                    for permit in permits:  # cancelled: decide nothing
                        permit.release()
                    raise
                if healthy:
                    for permit in permits:
                        permit.release()
                    self._local_timeouts += len(permits)
                    _log.info(
                        "%d operation deadline(s) passed while Redis answers its health check: "
                        "local saturation, not counted as cache faults",
                        len(permits),
                    )
                    continue
                confirmed = CacheTimeoutError("Redis failed its health check after a deadline")
                for permit in permits:
                    permit.record_failure(confirmed)
                self._wake.set()
        finally:
            for permit in self._unconfirmed:  # cancelled: decide nothing
                permit.release()
            self._unconfirmed = []
            self._confirm_task = None

    # ------------------------------------------------------------ store loads

    async def load(self, loader: Callable[[], Awaitable[T]]) -> T:
        """Call ``loader`` within the bound on concurrent source-of-truth loads.

        Raises :class:`LoadBusyError` if no slot frees up within ``load_wait``;
        the loader's own errors propagate unchanged.
        """
        try:
            async with asyncio.timeout(self._load_wait):
                await self._load_slots.acquire()
        except TimeoutError:
            raise LoadBusyError(
                f"{self._load_bound} loads in flight; none finished within "
                f"{self._load_wait * 1000:.0f} ms"
            ) from None
        self._loads_in_flight += 1
        try:
            return await loader()
        finally:
            self._loads_in_flight -= 1
            self._load_slots.release()

    def record_fallback(self, family: Family, reason: str, seconds: float) -> None:
        """Count one read served from the source of truth instead of the cache."""
        metrics.FALLBACK_TOTAL.labels(family.value, reason).inc()
        metrics.FALLBACK_LATENCY.labels(family.value).observe(seconds)
        self._fallbacks[reason] = self._fallbacks.get(reason, 0) + 1
        _log.debug("fallback family=%s reason=%s seconds=%.6f", family.value, reason, seconds)

    # ------------------------------------------------------------ pending invalidations

    def must_bypass(self, key: str, family: Family) -> bool:
        """True if ``key`` may hold a stale value until its invalidation has run (C10)."""
        return (key in self._pending) or (family in self._dirty_families)

    def bypass_reason(self) -> str:
        """Why a read bypasses the cache: ``open`` in an outage, else ``pending_invalidation``."""
        if self._breaker.state is BreakerState.CLOSED:
            return "pending_invalidation"
        return "open"

    def has_pending(self) -> bool:
        return bool(self._pending or self._dirty_families)

    def remember_invalidation(self, key: str, family: Family, version: int | None) -> None:
        """Remember that ``key`` must be invalidated before the cache serves it again."""
        known = UNKNOWN_VERSION if version is None else version
        previous = self._pending.get(key)
        if previous is not None:
            self._pending[key] = (family, max(previous[1], known))
        elif len(self._pending) < self._max_pending:
            self._pending[key] = (family, known)
        elif family not in self._dirty_families:
            self._dirty_families.add(family)
            _log.warning(
                "more than %d keys await invalidation: family %s will be cleared whole "
                "(SCAN + UNLINK) when Redis is back",
                self._max_pending,
                family.value,
            )
        metrics.CACHE_PENDING_INVALIDATIONS.set(len(self._pending))
        self._wake.set()

    def forget_invalidation(self, key: str, version: int) -> None:
        """Drop ``key`` from the pending set if ``version`` covers what was remembered."""
        pending = self._pending.get(key)
        if pending is not None and pending[1] <= version:
            del self._pending[key]
            metrics.CACHE_PENDING_INVALIDATIONS.set(len(self._pending))

    async def invalidate(
        self, client: RedisClient, entries: Iterable[tuple[str, Family, int]]
    ) -> None:
        """Delete entries and raise their fences: one script call per slot."""
        items = [
            (key, version, self._schema.fence_ttl_ms(family)) for key, family, version in entries
        ]
        await invalidate_grouped(client, self._script(client), items)

    def _script(self, client: RedisClient) -> Any:
        if self._invalidate is None:
            self._invalidate = client.register_script(INVALIDATE)
        return self._invalidate

    async def _flush_pending(self, client: RedisClient) -> None:
        with translate_redis_errors():
            pending = list(self._pending.items())
            for start in range(0, len(pending), _SCAN_BATCH):
                batch = pending[start : start + _SCAN_BATCH]
                await invalidate_grouped(
                    client,
                    self._script(client),
                    [(key, version, self._schema.fence_ttl_ms(f)) for key, (f, version) in batch],
                )
                for key, (family, version) in batch:
                    metrics.CACHE_INVALIDATIONS.labels(family.value, "recovery").inc()
                    self.forget_invalidation(key, version)
                    self._flushed += 1
            for family in sorted(self._dirty_families):
                await self._clear_family(client, family)
                self._dirty_families.discard(family)

    async def _clear_family(self, client: RedisClient, family: Family) -> None:
        removed = await clear_matching(client, f"{family.value}:*", _SCAN_BATCH)
        metrics.CACHE_INVALIDATIONS.labels(family.value, "recovery_family").inc(removed)
        _log.warning("recovery cleared family %s: %d keys unlinked", family.value, removed)

    # ------------------------------------------------------------ recovery

    def start(self) -> None:
        """Start the background recovery task (idempotent)."""
        if self._recovery_task is None and not self._closed:
            self._recovery_task = asyncio.create_task(
                self._recovery_loop(), name="runtime-cache-recovery"
            )

    async def close(self) -> None:
        """Stop the background task; idempotent (C15)."""
        self._closed = True
        confirm, self._confirm_task = self._confirm_task, None
        if confirm is not None:
            # Let a health check in flight finish (it is bounded by its own
            # timeout) rather than cancel it mid-reply.
            done, _ = await asyncio.wait([confirm], timeout=self._recovery_budget)
            if not done:
                confirm.cancel()
            await asyncio.gather(confirm, return_exceptions=True)
        task, self._recovery_task = self._recovery_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> FallbackHandler:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _on_transition(self, transition: Any) -> None:
        self._wake.set()
        if transition.to_state is BreakerState.CLOSED:
            self._recoveries += 1

    def _needs_attention(self) -> bool:
        return self._breaker.state is not BreakerState.CLOSED or self.has_pending()

    async def _recovery_loop(self) -> None:
        while True:
            if not self._needs_attention():
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(self._recovery_interval)
            if self._needs_attention():
                await self._try_recover()

    async def _try_recover(self) -> None:
        if self._breaker.state is BreakerState.OPEN and self._breaker.statistics().retry_after > 0:
            return
        if not await self._manager.health_check():
            return
        try:
            permit = self._breaker.acquire()
        except CircuitOpenError:
            return
        try:
            async with asyncio.timeout(self._recovery_budget):
                client = self._manager.get_connection()
                await self._flush_pending(client)
                with translate_redis_errors():
                    await client.ping()
        except asyncio.CancelledError:
            permit.release()
            raise
        except Exception as exc:
            permit.record_failure(exc)
            _log.warning("recovery attempt failed: %r", exc)
            return
        permit.record_success()
        _log.info("recovery: pending invalidations flushed, Redis serving again")

    # ------------------------------------------------------------ introspection

    def statistics(self) -> FallbackStatistics:
        return FallbackStatistics(
            fallbacks=sum(self._fallbacks.values()),
            fallbacks_by_reason=dict(self._fallbacks),
            pending_invalidations=len(self._pending),
            dirty_families=tuple(sorted(f.value for f in self._dirty_families)),
            loads_in_flight=self._loads_in_flight,
            load_bound=self._load_bound,
            recoveries=self._recoveries,
            invalidations_flushed=self._flushed,
            local_timeouts=self._local_timeouts,
        )

    def __repr__(self) -> str:
        return (
            f"<FallbackHandler timeout={self._timeout * 1000:.0f}ms "
            f"breaker={self._breaker.state.name} pending={len(self._pending)} "
            f"fallbacks={sum(self._fallbacks.values())}>"
        )
