"""Single-flight: concurrent calls for one key share one execution (C5).

The first caller for a key starts the work in a task of its own; later callers
await the same result. The result or the error reaches every waiter; nothing is
remembered once the work ends (errors are never cached). A waiter that is
cancelled does not cancel the work for the others; the work is cancelled only
when every waiter has gone, or by :meth:`SingleFlight.close`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

_log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def _retrieve(task: asyncio.Task[T]) -> None:
    # Mark the outcome as seen: the waiters that wanted it may all have gone.
    if not task.cancelled():
        task.exception()


class _Flight(Generic[T]):
    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.waiters = 0


class SingleFlight(Generic[K, T]):
    """Deduplicates concurrent work per key within one process."""

    __slots__ = ("_flights", "_name", "_tasks")

    def __init__(self, name: str = "singleflight") -> None:
        self._name = name
        self._flights: dict[K, _Flight[T]] = {}
        # Every task started, detached or not, so close() reaches them all.
        self._tasks: set[asyncio.Task[T]] = set()

    def in_flight(self, key: K) -> bool:
        """True while work for ``key`` runs."""
        return key in self._flights

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        """Return the result of ``work()``, shared with every concurrent caller for ``key``."""
        flight = self._flights.get(key)
        if flight is None:
            task = self._track(asyncio.ensure_future(work()))
            flight = _Flight(task)
            self._flights[key] = flight
            task.add_done_callback(lambda _: self._forget(key, flight))
            task.add_done_callback(_retrieve)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.task.cancelled() or flight.task.done():
                raise
            if flight.waiters == 1:  # the last waiter leaves: nobody wants the result
                flight.task.cancel()
                # Forget it now, not when it finishes unwinding: a caller arriving
                # meanwhile must start fresh work, not join a cancelled one.
                self._forget(key, flight)
            raise
        finally:
            flight.waiters -= 1

    def start(self, key: K, work: Callable[[], Awaitable[T]]) -> bool:
        """Start ``work`` for ``key`` in the background unless it already runs.

        Returns True if it was started. Its outcome is not awaited by anyone;
        an error is logged.
        """
        if key in self._flights:
            return False
        task = self._track(asyncio.ensure_future(work()))
        flight: _Flight[T] = _Flight(task)
        self._flights[key] = flight
        task.add_done_callback(lambda _: self._forget(key, flight))
        task.add_done_callback(self._log_background_error)
        return True

    def _track(self, task: asyncio.Task[T]) -> asyncio.Task[T]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def detach(self, key: K) -> None:
        """Let later callers for ``key`` start new work instead of joining the running one.

        Callers already waiting keep the running work's result. A write calls
        this once it has committed, so no reader that starts after the write
        returns can be handed a value loaded before it.
        """
        self._flights.pop(key, None)

    def detach_where(self, predicate: Callable[[K], bool]) -> None:
        """:meth:`detach` every key in flight for which ``predicate(key)`` holds."""
        for key in [key for key in self._flights if predicate(key)]:
            del self._flights[key]

    def _forget(self, key: K, flight: _Flight[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    def _log_background_error(self, task: asyncio.Task[T]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            _log.warning("%s: background work failed: %r", self._name, exc, exc_info=exc)

    async def close(self) -> None:
        """Cancel all work in flight and wait for it to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._flights.clear()

    def __repr__(self) -> str:
        return f"<SingleFlight {self._name!r} in_flight={len(self._flights)}>"
