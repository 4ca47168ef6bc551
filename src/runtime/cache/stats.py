"""In-process statistics of the read and write patterns, mirrored to Prometheus.

One :class:`StatsRecorder` is shared by the patterns of one cache; it counts per
key family and feeds the Prometheus counters of :mod:`runtime.cache.metrics`
(children bound once, so counting costs a few hundred nanoseconds).
:meth:`StatsRecorder.statistics` returns frozen figures a benchmark can read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from runtime.cache import metrics
from runtime.cache.models import Family

__all__ = ["CacheStatistics", "FamilyStatistics", "StatsRecorder"]


@dataclass(frozen=True, slots=True)
class FamilyStatistics:
    """Counts of one key family. ``hit_rate`` is hits / (hits + misses)."""

    hits: int = 0
    negative_hits: int = 0
    misses: int = 0
    loads: int = 0
    load_errors: int = 0
    refreshes: int = 0
    stale_sets_rejected: int = 0
    decode_failures: int = 0
    fallbacks: int = 0
    writes: int = 0
    write_failures: int = 0

    @property
    def hit_rate(self) -> float | None:
        reads = self.hits + self.negative_hits + self.misses
        return None if reads == 0 else (self.hits + self.negative_hits) / reads

    def __add__(self, other: FamilyStatistics) -> FamilyStatistics:
        return FamilyStatistics(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(FamilyStatistics))
        )


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """Per-family statistics and their total."""

    families: Mapping[Family, FamilyStatistics]

    @property
    def total(self) -> FamilyStatistics:
        total = FamilyStatistics()
        for family_stats in self.families.values():
            total = total + family_stats
        return total


class _Counts:
    __slots__ = tuple(f.name for f in fields(FamilyStatistics))

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)


_PROMETHEUS_RESULT = {"hits": "hit", "negative_hits": "negative_hit", "misses": "miss"}


class StatsRecorder:
    """Counts reads, loads and writes per family (in process and in Prometheus)."""

    __slots__ = ("_counts", "_prom")

    def __init__(self) -> None:
        self._counts = {family: _Counts() for family in Family}
        self._prom = {
            (family, name): metrics.CACHE_REQUESTS.labels(family.value, result)
            for family in Family
            for name, result in _PROMETHEUS_RESULT.items()
        }
        for family in Family:
            self._prom[(family, "loads")] = metrics.CACHE_LOADS.labels(family.value, "ok")
            self._prom[(family, "load_errors")] = metrics.CACHE_LOADS.labels(family.value, "error")
            self._prom[(family, "stale_sets_rejected")] = metrics.CACHE_STALE_SETS_REJECTED.labels(
                family.value
            )
            self._prom[(family, "decode_failures")] = metrics.CACHE_DECODE_FAILURES.labels(
                family.value
            )

    def add(self, family: Family, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name`` (a field of :class:`FamilyStatistics`)."""
        counts = self._counts[family]
        setattr(counts, name, getattr(counts, name) + amount)
        child = self._prom.get((family, name))
        if child is not None:
            child.inc(amount)

    def statistics(self) -> CacheStatistics:
        return CacheStatistics(
            MappingProxyType(
                {
                    family: FamilyStatistics(*(getattr(c, n) for n in _Counts.__slots__))
                    for family, c in self._counts.items()
                }
            )
        )

    def reset(self) -> None:
        """Zero the in-process counts (Prometheus counters keep counting)."""
        self._counts = {family: _Counts() for family in Family}
