"""The standard-workload benchmark behind ``runtime-cache bench`` and ``chaos``.

One job per module: :mod:`.params` (workload parameters and chaos schedule),
:mod:`.market` (Zipf popularity, market moves), :mod:`.backends` (cache, store-only
and raw redis-py targets; version tracking for stale reads), :mod:`.workload`
(the actors and one timed phase), :mod:`.embedded` (a private redis-server),
:mod:`.environment` (Redis and store setup, facts), :mod:`.runner` (``bench``),
:mod:`.chaos` (``chaos``), :mod:`.report` (figures and rendering).
"""

from runtime.cache.bench.params import ChaosSchedule, WorkloadParams

__all__ = ["ChaosSchedule", "WorkloadParams"]
