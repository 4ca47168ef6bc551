"""The injected clocks: SystemClock follows time.monotonic, ManualClock only moves forward."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest

from runtime.cache import clock as clock_module
from runtime.cache.clock import Clock, ManualClock, SystemClock


def test_all_names_exist() -> None:
    assert all(hasattr(clock_module, name) for name in clock_module.__all__)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(), Clock)


def test_system_clock_reads_time_monotonic() -> None:
    before = time.monotonic()
    reading = SystemClock().monotonic()
    after = time.monotonic()
    assert before <= reading <= after


def test_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(start=100.0)
    assert clock.monotonic() == 100.0
    assert clock.monotonic() == 100.0


def test_manual_clock_advances_by_seconds_and_timedelta() -> None:
    clock = ManualClock()
    clock.advance(29.999)
    assert clock.monotonic() == pytest.approx(29.999)
    clock.advance(timedelta(milliseconds=1))
    assert clock.monotonic() == pytest.approx(30.0)
    clock.advance(0)
    assert clock.monotonic() == pytest.approx(30.0)


@pytest.mark.parametrize("step", [-1, -0.001, timedelta(seconds=-1), math.nan, math.inf])
def test_manual_clock_refuses_to_go_back_or_jump_to_infinity(step: float | timedelta) -> None:
    clock = ManualClock(start=5.0)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(step)
    assert clock.monotonic() == 5.0


def test_manual_clock_refuses_a_non_finite_start() -> None:
    with pytest.raises(ValueError, match="start"):
        ManualClock(start=math.nan)


def test_manual_clock_repr_shows_the_time() -> None:
    assert repr(ManualClock(start=1.5)) == "ManualClock(now=1.500000)"
