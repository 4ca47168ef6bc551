"""The parameters of the standard workload (``shared/workload.md``) and the chaos schedule.

Defaults are the spec's; :meth:`WorkloadParams.check` raises ``ValueError``
naming the first bad parameter.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ChaosSchedule", "WorkloadParams"]


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"--{name.replace('_', '-')} must be {'>= 0' if allow_zero else '> 0'}")


@dataclass(frozen=True, slots=True)
class WorkloadParams:
    """Universe, actors and durations of one benchmark run."""

    symbols: int = 200
    levels: int = 20
    zipf_exponent: float = 1.1
    feed_rate: float = 500.0
    strategies: int = 8
    order_probability: float = 0.02
    fill_probability: float = 0.01
    strategy_read_every: int = 100
    order_read_every: int = 50
    depth: int = 10
    warmup: float = 3.0
    duration: float = 30.0
    seed: int = 7

    def check(self) -> WorkloadParams:
        for name in ("symbols", "strategies", "strategy_read_every", "order_read_every", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.levels < self.depth:
            raise ValueError("--levels must be >= --depth")
        _positive("zipf_exponent", self.zipf_exponent, allow_zero=True)
        _positive("feed_rate", self.feed_rate, allow_zero=True)
        _positive("warmup", self.warmup, allow_zero=True)
        _positive("duration", self.duration)
        for name in ("order_probability", "fill_probability"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1]")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ChaosSchedule:
    """When, in seconds from the start of the measured window, Redis is broken.

    ``kill_at``: SIGKILL; ``restart_at``: a new, empty server on the same socket;
    ``pause_at``: SIGSTOP; ``resume_at``: SIGCONT. ``breaker_wait`` is the
    breaker's recovery timeout for the run (the library default is 30 s).
    """

    kill_at: float = 3.0
    restart_at: float = 6.0
    pause_at: float = 10.0
    resume_at: float = 13.0
    breaker_wait: float = 2.0

    def check(self, duration: float) -> ChaosSchedule:
        _positive("breaker_wait", self.breaker_wait)
        order = (self.kill_at, self.restart_at, self.pause_at, self.resume_at)
        if order[0] < 0 or any(b <= a for a, b in itertools.pairwise(order)):
            raise ValueError(
                "chaos times must satisfy 0 <= --kill-at < --restart-at < --pause-at < --resume-at"
            )
        if self.resume_at >= duration:
            raise ValueError("--resume-at must be before the end of --duration")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
