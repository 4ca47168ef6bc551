"""Injected time for the caching layer.

Everything that waits or measures (the circuit breaker, refresh-ahead) reads a
:class:`Clock` passed to its constructor instead of calling ``time`` itself, so
tests replace it with a :class:`ManualClock` and jump over a 30 s wait without
sleeping (the idea of trio's ``MockClock``).

Only ``monotonic()`` is part of the contract: wall-clock time never drives a
timeout.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic seconds: never goes back, arbitrary origin."""

    def monotonic(self) -> float:
        """Seconds since an arbitrary fixed point; never decreases."""
        ...


class SystemClock:
    """The process clock: :func:`time.monotonic`."""

    __slots__ = ()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to, for tests.

    ``advance()`` refuses negative or non-finite steps, so the clock stays
    monotonic whatever a test does.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        if not math.isfinite(start):
            raise ValueError(f"start must be finite, got {start!r}")
        self._now = float(start)

    def monotonic(self) -> float:
        """The current manual time in seconds."""
        return self._now

    def advance(self, seconds: float | timedelta) -> None:
        """Move the clock forward by ``seconds``.

        Raises ``ValueError`` for a negative or non-finite step: time never
        goes back.
        """
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if not math.isfinite(step) or step < 0:
            raise ValueError(f"a clock only moves forward; cannot advance by {seconds!r}")
        self._now += step

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now:.6f})"
