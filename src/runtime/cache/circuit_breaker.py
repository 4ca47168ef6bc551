"""The circuit breaker in front of Redis (C12, C13): pure state, injected clock.

Contract:

- CLOSED: every call is admitted. ``failure_threshold`` consecutive cache
  faults (see :func:`is_cache_fault`) open the breaker; a success resets the
  count.
- OPEN: every call is rejected at once with ``CircuitOpenError(retry_after)``
  and never touches the network. After ``recovery_timeout`` the next caller is
  admitted as the single probe and the breaker goes HALF_OPEN.
- HALF_OPEN: while the probe is in flight everyone else gets
  ``CircuitOpenError(retry_after=0.0)``. Probe success closes the breaker,
  probe fault reopens it with a fresh wait.
- A hung probe cannot wedge the breaker: admitting a probe sets the next
  permitted probe one ``recovery_timeout`` later. A probe that is released
  (cancelled, or it raised an application error) counts as neither success nor
  failure and the next caller may probe at once.
- Only the current probe, and only permits issued in the current CLOSED period,
  move the state; a late report from an older permit counts in the statistics
  only.

The breaker does no I/O and never sleeps: states are frozen dataclasses and the
transitions are pure functions of (state, event, now). It is meant for one
event loop (no locks: every method is synchronous). Each transition is logged
(WARNING when opening, INFO otherwise), counted in Prometheus and told once to
every listener; a listener that raises is logged and ignored.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final, TypeAlias, TypeVar

from redis import exceptions as redis_exc

from runtime.cache import metrics
from runtime.cache.clock import Clock, SystemClock

# The one redis-py -> CacheError table lives in exceptions.py; classification
# reuses it rather than keeping a second copy.
from runtime.cache.exceptions import (
    CacheError,
    CircuitOpenError,
    ConfigurationError,
    translate_redis_error,
)

__all__ = [
    "BreakerListener",
    "BreakerState",
    "BreakerStatistics",
    "BreakerTransition",
    "CircuitBreaker",
    "Permit",
    "is_cache_fault",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SYSTEM_CLOCK: Final = SystemClock()


class BreakerState(enum.Enum):
    """The three breaker states; ``gauge_value`` is what BREAKER_STATE shows."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def gauge_value(self) -> int:
        """0 closed, 1 open, 2 half-open."""
        return _GAUGE[self]


_GAUGE: Final = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.HALF_OPEN: 2}


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """One state change, told once to every listener.

    ``at`` is the breaker clock's ``monotonic()`` reading; ``reason`` is a short
    human-readable cause (``"5 consecutive cache faults; last: ..."``).
    """

    name: str
    from_state: BreakerState
    to_state: BreakerState
    at: float
    reason: str


BreakerListener: TypeAlias = Callable[[BreakerTransition], None]


@dataclass(frozen=True, slots=True)
class BreakerStatistics:
    """A snapshot of the breaker.

    ``opened_at`` is the clock reading when the breaker last opened (None while
    CLOSED); ``retry_after`` the seconds until a probe may run (0.0 unless OPEN).
    ``total_failures`` counts every cache fault reported, slow calls included.
    """

    state: BreakerState
    consecutive_failures: int
    total_failures: int
    total_successes: int
    rejections: int
    transitions: int
    opened_at: float | None
    retry_after: float


# --------------------------------------------------------------------------
# Classification


def is_cache_fault(exc: BaseException) -> bool:
    """True iff ``exc`` says Redis did not serve the call (it counts for the breaker).

    Counted: ``CacheError`` subclasses with ``counts_as_fault`` (the
    ``CacheUnavailableError`` tree), raw redis-py/socket errors that
    ``translate_redis_errors`` maps to such a class, and ``TimeoutError`` (an
    operation deadline). Not counted: everything else, notably application
    errors, pool exhaustion, OOM, error replies and ``CircuitOpenError``.
    """
    if isinstance(exc, CacheError):
        return exc.counts_as_fault
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError on 3.11
        return True
    if isinstance(exc, redis_exc.RedisError | redis_exc.RedisClusterException | OSError):
        translated = translate_redis_error(exc)
        return translated is not None and translated.counts_as_fault
    return False


# --------------------------------------------------------------------------
# Pure state machine


@dataclass(frozen=True, slots=True)
class _Config:
    failure_threshold: int
    recovery_timeout: float
    slow_call_threshold: float | None


@dataclass(frozen=True, slots=True)
class _Closed:
    epoch: int  # identifies this CLOSED period; older permits are stale
    failures: int = 0


@dataclass(frozen=True, slots=True)
class _Open:
    opened_at: float
    probe_at: float
    forced: bool = False


@dataclass(frozen=True, slots=True)
class _HalfOpen:
    opened_at: float
    probe: int | None  # ticket of the probe in flight; None once it was released
    next_probe_at: float  # from here on a new probe is admitted even if one is in flight


_State: TypeAlias = _Closed | _Open | _HalfOpen


class _Outcome(enum.Enum):
    SUCCESS = "success"
    FAULT = "fault"
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class _Admit:
    is_probe: bool
    ticket: int


@dataclass(frozen=True, slots=True)
class _Reject:
    retry_after: float


@dataclass(frozen=True, slots=True)
class _Step:
    state: _State
    reason: str = ""


def _kind(state: _State) -> BreakerState:
    match state:
        case _Closed():
            return BreakerState.CLOSED
        case _Open():
            return BreakerState.OPEN
        case _HalfOpen():
            return BreakerState.HALF_OPEN


def _on_acquire(
    state: _State, now: float, cfg: _Config, ticket: int
) -> tuple[_Step, _Admit | _Reject]:
    """Admit or reject one caller; ``ticket`` is a fresh id should a probe be admitted."""
    match state:
        case _Closed(epoch=epoch):
            return _Step(state), _Admit(is_probe=False, ticket=epoch)
        case _Open(forced=True):
            return _Step(state), _Reject(cfg.recovery_timeout)
        case _Open(probe_at=probe_at) if now < probe_at:
            return _Step(state), _Reject(probe_at - now)
        case _Open(opened_at=opened_at):
            half = _HalfOpen(opened_at, ticket, now + cfg.recovery_timeout)
            return _Step(half, "recovery timeout elapsed; admitting a probe"), _Admit(True, ticket)
        case _HalfOpen(probe=probe, next_probe_at=next_at) if probe is not None and now < next_at:
            return _Step(state), _Reject(0.0)
        case _HalfOpen():
            # The last probe was released, or it has not reported for a whole
            # recovery_timeout: admit a new one.
            half = replace(state, probe=ticket, next_probe_at=now + cfg.recovery_timeout)
            return _Step(half), _Admit(True, ticket)


def _on_report(
    state: _State,
    permit: _Admit,
    outcome: _Outcome,
    now: float,
    cfg: _Config,
    *,
    cause: str,
    fresh_epoch: int,
) -> _Step:
    """The state after ``permit`` reported ``outcome``; stale permits change nothing."""
    match state:
        case _Closed(epoch=epoch, failures=failures) if (
            not permit.is_probe and permit.ticket == epoch
        ):
            if outcome is _Outcome.SUCCESS:
                return _Step(replace(state, failures=0))
            if outcome is _Outcome.FAULT:
                failures += 1
                if failures >= cfg.failure_threshold:
                    reason = f"{failures} consecutive cache faults; last: {cause}"
                    return _Step(_Open(now, now + cfg.recovery_timeout), reason)
                return _Step(replace(state, failures=failures))
        case _HalfOpen(probe=probe) if permit.is_probe and permit.ticket == probe:
            if outcome is _Outcome.SUCCESS:
                return _Step(_Closed(fresh_epoch), "probe succeeded")
            if outcome is _Outcome.FAULT:
                return _Step(_Open(now, now + cfg.recovery_timeout), f"probe failed: {cause}")
            return _Step(replace(state, probe=None))
    return _Step(state)


# --------------------------------------------------------------------------
# Public objects


class Permit:
    """Leave to make one call, returned by :meth:`CircuitBreaker.acquire`.

    Report the outcome exactly once with :meth:`record_success`,
    :meth:`record_failure` or :meth:`release`; later reports are no-ops.
    """

    __slots__ = ("_admit", "_breaker", "_reported", "_started_at")

    def __init__(self, breaker: CircuitBreaker, admit: _Admit, started_at: float) -> None:
        self._breaker = breaker
        self._admit = admit
        self._started_at = started_at
        self._reported = False

    @property
    def is_probe(self) -> bool:
        """True for the single HALF_OPEN probe whose outcome decides the state."""
        return self._admit.is_probe

    @property
    def reported(self) -> bool:
        """True once the permit has reported (further reports are ignored)."""
        return self._reported

    def record_success(self, duration: float | None = None) -> None:
        """The call succeeded.

        ``duration`` defaults to the clock time since ``acquire()``; a success
        slower than ``slow_call_threshold`` counts as a fault.
        """
        if self._claim():
            self._breaker._record_success(self._admit, duration, self._started_at)

    def record_failure(self, exc: BaseException) -> None:
        """The call raised ``exc``: a fault if :func:`is_cache_fault`, else a release."""
        if self._claim():
            if is_cache_fault(exc):
                self._breaker._report(self._admit, _Outcome.FAULT, _describe(exc))
            else:
                self._breaker._report(self._admit, _Outcome.RELEASE, _describe(exc))

    def release(self) -> None:
        """Neither success nor failure (cancelled, application error): frees a probe."""
        if self._claim():
            self._breaker._report(self._admit, _Outcome.RELEASE, "released")

    def _claim(self) -> bool:
        if self._reported:
            return False
        self._reported = True
        return True

    def __repr__(self) -> str:
        kind = "probe" if self.is_probe else "call"
        done = "reported" if self._reported else "pending"
        return f"<Permit {kind} of {self._breaker.name!r} {done}>"


class CircuitBreaker:
    """CLOSED / OPEN / HALF_OPEN breaker for cache calls (C12); see the module doc.

    Options are keyword-only and validated once; a bad one raises
    ``ConfigurationError`` naming it. Durations take seconds or ``timedelta``.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        recovery_timeout: float | timedelta = 30.0,
        slow_call_threshold: float | timedelta | None = None,
        name: str = "redis",
        clock: Clock = _SYSTEM_CLOCK,
        listeners: Iterable[BreakerListener] = (),
    ) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int):
            raise ConfigurationError(
                f"failure_threshold must be an int >= 1, got {failure_threshold!r}"
            )
        if failure_threshold < 1:
            raise ConfigurationError(
                f"failure_threshold must be an int >= 1, got {failure_threshold!r}"
            )
        if not isinstance(name, str) or not name or name != name.strip():
            raise ConfigurationError(f"name must be a non-empty string, got {name!r}")
        if not callable(getattr(clock, "monotonic", None)):
            raise ConfigurationError(f"clock must have a monotonic() method, got {clock!r}")
        listener_list = list(listeners)
        for listener in listener_list:
            if not callable(listener):
                raise ConfigurationError(f"listeners must be callables, got {listener!r}")
        self._cfg = _Config(
            failure_threshold=failure_threshold,
            recovery_timeout=_seconds("recovery_timeout", recovery_timeout),
            slow_call_threshold=(
                None
                if slow_call_threshold is None
                else _seconds("slow_call_threshold", slow_call_threshold)
            ),
        )
        self._name = name
        self._clock = clock
        self._listeners = listener_list
        self._tickets = itertools.count(1)
        self._state: _State = _Closed(next(self._tickets))
        self._closed_admit: _Admit | None = None
        self._total_failures = 0
        self._total_successes = 0
        self._rejections = 0
        self._transitions = 0
        metrics.BREAKER_STATE.labels(breaker=name).set(BreakerState.CLOSED.gauge_value)

    # -- reading -------------------------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name, the ``breaker`` label of its metrics."""
        return self._name

    @property
    def state(self) -> BreakerState:
        """The current state. OPEN lasts until a caller is admitted as the probe."""
        return _kind(self._state)

    @property
    def failure_threshold(self) -> int:
        """Consecutive faults that open the breaker."""
        return self._cfg.failure_threshold

    @property
    def recovery_timeout(self) -> float:
        """Seconds OPEN waits before admitting a probe."""
        return self._cfg.recovery_timeout

    @property
    def slow_call_threshold(self) -> float | None:
        """Seconds above which a success counts as a fault, or None."""
        return self._cfg.slow_call_threshold

    def statistics(self) -> BreakerStatistics:
        """A frozen snapshot of the counters and the state."""
        state = self._state
        now = self._clock.monotonic()
        match state:
            case _Closed(failures=failures):
                return self._stats(BreakerState.CLOSED, failures, None, 0.0)
            case _Open(forced=True, opened_at=opened_at):
                return self._stats(BreakerState.OPEN, 0, opened_at, self._cfg.recovery_timeout)
            case _Open(opened_at=opened_at, probe_at=probe_at):
                return self._stats(BreakerState.OPEN, 0, opened_at, max(0.0, probe_at - now))
            case _HalfOpen(opened_at=opened_at):
                return self._stats(BreakerState.HALF_OPEN, 0, opened_at, 0.0)

    # -- calling -------------------------------------------------------------

    def acquire(self) -> Permit:
        """Leave for one call, or ``CircuitOpenError`` at once (no I/O).

        While OPEN, ``retry_after`` is the time left before a probe (the
        ``recovery_timeout`` after ``force_open()``); while a probe is in flight
        it is 0.0.
        """
        now = self._clock.monotonic()
        previous = self._state
        if type(previous) is _Closed:
            # The hot path: a closed breaker admits every call with the same
            # decision; skip building a step (what _on_acquire would return).
            admit = self._closed_admit
            if admit is None or admit.ticket != previous.epoch:
                admit = self._closed_admit = _Admit(is_probe=False, ticket=previous.epoch)
            return Permit(self, admit, now)
        step, decision = _on_acquire(previous, now, self._cfg, next(self._tickets))
        if isinstance(decision, _Reject):
            self._rejections += 1
            metrics.BREAKER_REJECTIONS.labels(breaker=self._name).inc()
            raise CircuitOpenError(retry_after=decision.retry_after)
        if isinstance(previous, _HalfOpen) and previous.probe is not None:
            logger.warning(
                "circuit breaker %r: probe did not report within %.3fs; admitting a new probe",
                self._name,
                self._cfg.recovery_timeout,
            )
        self._apply(step, now)
        return Permit(self, decision, now)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` under the breaker and record its outcome.

        Raises ``CircuitOpenError`` without calling ``fn`` when rejected; any
        error of ``fn`` is re-raised after classification (:func:`is_cache_fault`).
        Cancellation releases the permit, so put an operation deadline inside
        ``fn`` (``asyncio.timeout`` there raises ``TimeoutError``, a fault), not
        around ``call`` (a cancellation, which counts as nothing).
        """
        permit = self.acquire()
        try:
            result = await fn()
        except asyncio.CancelledError:
            permit.release()
            raise
        except BaseException as exc:
            permit.record_failure(exc)
            raise
        permit.record_success()
        return result

    # -- operating -----------------------------------------------------------

    def force_open(self) -> None:
        """Open now and stay open, probes included, until :meth:`reset`."""
        now = self._clock.monotonic()
        opened = _Open(now, now + self._cfg.recovery_timeout, forced=True)
        self._apply(_Step(opened, "forced open by operator"), now)

    def reset(self) -> None:
        """Close now with a zero fault count; permits issued before are stale."""
        now = self._clock.monotonic()
        self._apply(_Step(_Closed(next(self._tickets)), "reset by operator"), now)

    def add_listener(self, listener: BreakerListener) -> None:
        """Tell ``listener`` every later transition (once each)."""
        if not callable(listener):
            raise ConfigurationError(f"listeners must be callables, got {listener!r}")
        self._listeners.append(listener)

    def remove_listener(self, listener: BreakerListener) -> None:
        """Stop telling ``listener``; ``ValueError`` if it was not added."""
        self._listeners.remove(listener)

    def __repr__(self) -> str:
        stats = self.statistics()
        return (
            f"<CircuitBreaker {self._name!r} state={stats.state.value}"
            f" consecutive_failures={stats.consecutive_failures}/{self._cfg.failure_threshold}"
            f" retry_after={stats.retry_after:.3f}s rejections={stats.rejections}>"
        )

    # -- internals -----------------------------------------------------------

    def _stats(
        self, state: BreakerState, failures: int, opened_at: float | None, retry_after: float
    ) -> BreakerStatistics:
        return BreakerStatistics(
            state=state,
            consecutive_failures=failures,
            total_failures=self._total_failures,
            total_successes=self._total_successes,
            rejections=self._rejections,
            transitions=self._transitions,
            opened_at=opened_at,
            retry_after=retry_after,
        )

    def _record_success(self, admit: _Admit, duration: float | None, started_at: float) -> None:
        state = self._state
        if (
            type(state) is _Closed
            and state.failures == 0
            and admit.ticket == state.epoch
            and not admit.is_probe
            and self._cfg.slow_call_threshold is None
        ):
            # The hot path: a success on a healthy closed breaker changes no
            # state (what _on_report would return); count it and leave.
            self._total_successes += 1
            return
        now = self._clock.monotonic()
        took = now - started_at if duration is None else duration
        limit = self._cfg.slow_call_threshold
        if limit is not None and took > limit:
            self._report(admit, _Outcome.FAULT, f"slow call: {took:.3f}s > {limit:.3f}s")
        else:
            self._report(admit, _Outcome.SUCCESS, "success")

    def _report(self, admit: _Admit, outcome: _Outcome, cause: str) -> None:
        if outcome is _Outcome.FAULT:
            self._total_failures += 1
        elif outcome is _Outcome.SUCCESS:
            self._total_successes += 1
        now = self._clock.monotonic()
        step = _on_report(
            self._state,
            admit,
            outcome,
            now,
            self._cfg,
            cause=cause,
            fresh_epoch=next(self._tickets),
        )
        self._apply(step, now)

    def _apply(self, step: _Step, now: float) -> None:
        before = _kind(self._state)
        self._state = step.state
        after = _kind(step.state)
        if before is not after:
            self._announce(BreakerTransition(self._name, before, after, now, step.reason))

    def _announce(self, transition: BreakerTransition) -> None:
        self._transitions += 1
        name = self._name
        metrics.BREAKER_STATE.labels(breaker=name).set(transition.to_state.gauge_value)
        metrics.BREAKER_TRANSITIONS.labels(
            breaker=name,
            from_state=transition.from_state.value,
            to_state=transition.to_state.value,
        ).inc()
        level = logging.WARNING if transition.to_state is BreakerState.OPEN else logging.INFO
        logger.log(
            level,
            "circuit breaker %r: %s -> %s (%s)",
            name,
            transition.from_state.value,
            transition.to_state.value,
            transition.reason,
        )
        for listener in tuple(self._listeners):
            try:
                listener(transition)
            except Exception:
                logger.exception(
                    "circuit breaker %r: listener %r failed on %s -> %s; ignored",
                    name,
                    listener,
                    transition.from_state.value,
                    transition.to_state.value,
                )


def _seconds(option: str, value: float | timedelta) -> float:
    """``value`` as positive finite seconds, else ``ConfigurationError`` naming ``option``."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigurationError(f"{option} must be seconds or a timedelta, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(f"{option} must be a positive finite duration, got {value!r}")
    return seconds


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
