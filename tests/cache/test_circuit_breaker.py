"""The circuit breaker (C12, C13) on a manual clock: no Redis, no sleeping."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from redis import exceptions as redis_exc

from runtime.cache import circuit_breaker as breaker_module
from runtime.cache.circuit_breaker import (
    BreakerState,
    BreakerStatistics,
    BreakerTransition,
    CircuitBreaker,
    is_cache_fault,
)
from runtime.cache.clock import ManualClock
from runtime.cache.exceptions import (
    CacheClusterDownError,
    CacheConnectionError,
    CacheLoadingError,
    CacheOutOfMemoryError,
    CacheReadOnlyError,
    CacheResponseError,
    CacheTimeoutError,
    CacheUnavailableError,
    CircuitOpenError,
    ConfigurationError,
    DecodeError,
    InvalidKeyError,
    PoolExhaustedError,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
_names = itertools.count()


def unique_name() -> str:
    """A fresh breaker name, so the process-wide metrics of one test are its own."""
    return f"test-breaker-{next(_names)}"


def make_breaker(clock: ManualClock, **options: object) -> CircuitBreaker:
    options.setdefault("name", unique_name())
    return CircuitBreaker(clock=clock, **options)  # type: ignore[arg-type]


def fault() -> CacheConnectionError:
    return CacheConnectionError("connection refused")


def record_faults(breaker: CircuitBreaker, count: int) -> None:
    for _ in range(count):
        breaker.acquire().record_failure(fault())


def open_breaker(breaker: CircuitBreaker) -> None:
    record_faults(breaker, breaker.failure_threshold)
    assert breaker.state is OPEN


def returning(value: object) -> Callable[[], Awaitable[object]]:
    async def fn() -> object:
        return value

    return fn


def raising(exc: BaseException) -> Callable[[], Awaitable[object]]:
    async def fn() -> object:
        raise exc

    return fn


def sample(metric: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(metric, labels)
    return 0.0 if value is None else value


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1000.0)


# -- module surface ---------------------------------------------------------


def test_all_names_exist() -> None:
    assert all(hasattr(breaker_module, name) for name in breaker_module.__all__)


# -- CLOSED -> OPEN ---------------------------------------------------------


def test_a_success_resets_the_consecutive_fault_count(clock: ManualClock) -> None:
    breaker = make_breaker(clock)
    record_faults(breaker, 4)
    breaker.acquire().record_success()
    record_faults(breaker, 4)
    assert breaker.state is CLOSED
    assert breaker.statistics().consecutive_failures == 4


def test_five_consecutive_faults_open_the_breaker(clock: ManualClock) -> None:
    breaker = make_breaker(clock)
    record_faults(breaker, 4)
    assert breaker.state is CLOSED
    record_faults(breaker, 1)
    assert breaker.state is OPEN


async def test_open_breaker_rejects_without_calling_fn(clock: ManualClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    called = False

    async def fn() -> None:
        nonlocal called
        called = True

    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(fn)
    assert not called
    assert info.value.retry_after == pytest.approx(30.0)


def test_open_breaker_still_rejects_a_millisecond_before_the_wait_ends(
    clock: ManualClock,
) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(29.999)
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    assert info.value.retry_after == pytest.approx(0.001, abs=1e-6)
    assert breaker.state is OPEN


def test_recovery_timeout_accepts_a_timedelta(clock: ManualClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1, recovery_timeout=timedelta(seconds=2))
    open_breaker(breaker)
    clock.advance(1.5)
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    clock.advance(0.5)
    assert breaker.acquire().is_probe


# -- HALF_OPEN: exactly one probe ------------------------------------------


async def test_half_open_admits_one_probe_among_a_hundred_concurrent_calls(
    clock: ManualClock,
) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(30.0)
    release_probe = asyncio.Event()
    runs = 0

    async def fn() -> str:
        nonlocal runs
        runs += 1
        await release_probe.wait()
        return "probed"

    tasks = [asyncio.create_task(breaker.call(fn)) for _ in range(100)]
    for _ in range(1000):  # yield until the 99 rejections have happened
        if sum(task.done() for task in tasks) == 99:
            break
        await asyncio.sleep(0)
    rejected = [task for task in tasks if task.done()]
    assert len(rejected) == 99
    assert runs == 1
    assert breaker.state is HALF_OPEN
    for task in rejected:
        error = task.exception()
        assert isinstance(error, CircuitOpenError)
        assert error.retry_after == 0.0
    (probe,) = [task for task in tasks if not task.done()]

    release_probe.set()
    assert await probe == "probed"
    assert breaker.state is CLOSED
    assert breaker.statistics().rejections == 99


def test_probe_failure_reopens_with_a_fresh_full_wait(clock: ManualClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(30.0)
    probe = breaker.acquire()
    assert probe.is_probe
    clock.advance(2.0)
    probe.record_failure(CacheTimeoutError("timed out"))
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    assert info.value.retry_after == pytest.approx(30.0)
    clock.advance(29.9)
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    clock.advance(0.1)
    assert breaker.acquire().is_probe


def test_probe_success_closes_and_listeners_hear_each_transition_once(
    clock: ManualClock,
) -> None:
    heard: list[BreakerTransition] = []
    name = unique_name()
    breaker = make_breaker(clock, name=name, listeners=[heard.append])
    open_breaker(breaker)
    clock.advance(30.0)
    breaker.acquire().record_failure(fault())
    clock.advance(30.0)
    breaker.acquire().record_success()
    breaker.acquire().record_success()  # CLOSED -> CLOSED is no transition

    assert [(t.from_state, t.to_state) for t in heard] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
    assert all(t.name == name for t in heard)
    assert [t.at for t in heard] == [1000.0, 1030.0, 1030.0, 1060.0, 1060.0]
    assert heard[0].reason.startswith("5 consecutive cache faults; last: CacheConnectionError")
    assert heard[2].reason == "probe failed: CacheConnectionError: connection refused"
    assert heard[4].reason == "probe succeeded"


def test_cancelled_probe_frees_its_permit_for_the_next_caller(clock: ManualClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(30.0)
    first = breaker.acquire()
    first.release()
    second = breaker.acquire()
    assert second.is_probe
    assert breaker.state is HALF_OPEN
    stats = breaker.statistics()
    assert (stats.total_failures, stats.total_successes) == (5, 0)


async def test_call_releases_the_probe_when_cancelled(clock: ManualClock) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(30.0)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(breaker.call(hang))
    await started.wait()
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is HALF_OPEN
    assert breaker.acquire().is_probe


def test_hung_probe_is_replaced_after_another_recovery_timeout(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make_breaker(clock)
    open_breaker(breaker)
    clock.advance(30.0)
    hung = breaker.acquire()
    assert hung.is_probe
    clock.advance(29.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    assert info.value.retry_after == 0.0
    clock.advance(1.0)
    with caplog.at_level(logging.WARNING, logger=breaker_module.__name__):
        second = breaker.acquire()
    assert second.is_probe
    assert "probe did not report" in caplog.text
    # The hung probe reporting late decides nothing; the current one does.
    hung.record_success()
    assert breaker.state is HALF_OPEN
    second.record_success()
    assert breaker.state is CLOSED


def test_a_permit_reports_at_most_once(clock: ManualClock) -> None:
    breaker = make_breaker(clock, failure_threshold=2)
    permit = breaker.acquire()
    permit.record_failure(fault())
    permit.record_failure(fault())
    permit.record_success()
    permit.release()
    assert permit.reported
    stats = breaker.statistics()
    assert (stats.state, stats.consecutive_failures, stats.total_failures) == (CLOSED, 1, 1)
    assert stats.total_successes == 0


def test_faults_from_calls_started_before_a_reset_do_not_count(clock: ManualClock) -> None:
    breaker = make_breaker(clock, failure_threshold=2)
    old = [breaker.acquire() for _ in range(2)]
    breaker.force_open()
    breaker.reset()
    for permit in old:
        permit.record_failure(fault())
    assert breaker.state is CLOSED
    assert breaker.statistics().consecutive_failures == 0


# -- classification ---------------------------------------------------------


def pool_exhausted() -> redis_exc.ConnectionError:
    """What redis-py's BlockingConnectionPool raises when its wait runs out."""
    exc = redis_exc.ConnectionError("No connection available.")
    exc.__cause__ = TimeoutError()
    return exc


class LoaderFailed(Exception):
    """An application error raised by a loader."""


@pytest.mark.parametrize(
    ("exc", "counted"),
    [
        # our tree: only CacheUnavailableError and its children count
        (CacheUnavailableError("down"), True),
        (CacheConnectionError("refused"), True),
        (CacheTimeoutError("timed out"), True),
        (CacheLoadingError("LOADING"), True),
        (CacheReadOnlyError("READONLY"), True),
        (CacheClusterDownError("CLUSTERDOWN"), True),
        (PoolExhaustedError("no connection"), False),
        (CacheOutOfMemoryError("OOM"), False),
        (CacheResponseError("WRONGTYPE"), False),
        (CircuitOpenError(retry_after=1.0), False),
        (DecodeError("px:{BTCUSDT}", "bad bytes"), False),
        (InvalidKeyError("symbol", "a b", "whitespace"), False),
        # operation deadlines
        (TimeoutError(), True),  # asyncio.TimeoutError is the same class on 3.11
        # raw redis-py and socket errors, through the translation table
        (redis_exc.ConnectionError("Connection refused"), True),
        (redis_exc.TimeoutError("Timeout reading from socket"), True),
        (redis_exc.BusyLoadingError("LOADING Redis is loading"), True),
        (redis_exc.ReadOnlyError("READONLY You can't write against a replica"), True),
        (redis_exc.ClusterDownError("CLUSTERDOWN The cluster is down"), True),
        (redis_exc.ResponseError("MASTERDOWN Link with MASTER is down"), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (redis_exc.OutOfMemoryError("OOM command not allowed"), False),
        (redis_exc.ResponseError("WRONGTYPE Operation against a key"), False),
        (pool_exhausted(), False),
        # application errors
        (ValueError("bad input"), False),
        (LoaderFailed("database said no"), False),
        (KeyError("missing"), False),
        (asyncio.CancelledError(), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_is_cache_fault_classifies(exc: BaseException, counted: bool) -> None:
    assert is_cache_fault(exc) is counted


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad"), LoaderFailed("no"), PoolExhaustedError("full"), CircuitOpenError(0.0)],
    ids=lambda exc: type(exc).__name__,
)
async def test_non_fault_errors_propagate_and_count_as_nothing(
    clock: ManualClock, exc: BaseException
) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    with pytest.raises(type(exc)):
        await breaker.call(raising(exc))
    stats = breaker.statistics()
    assert (stats.state, stats.total_failures, stats.total_successes) == (CLOSED, 0, 0)


async def test_application_error_of_a_probe_frees_the_probe(clock: ManualClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    open_breaker(breaker)
    clock.advance(30.0)
    with pytest.raises(LoaderFailed):
        await breaker.call(raising(LoaderFailed("db")))
    assert breaker.state is HALF_OPEN
    assert breaker.acquire().is_probe


async def test_call_counts_raw_redis_faults_and_reraises_them(clock: ManualClock) -> None:
    breaker = make_breaker(clock, failure_threshold=2)
    for _ in range(2):
        with pytest.raises(redis_exc.ConnectionError):
            await breaker.call(raising(redis_exc.ConnectionError("refused")))
    assert breaker.state is OPEN


# -- slow calls -------------------------------------------------------------


async def test_a_slow_success_counts_as_a_fault(clock: ManualClock) -> None:
    breaker = make_breaker(clock, failure_threshold=2, slow_call_threshold=0.1)

    async def slow() -> str:
        clock.advance(0.25)
        return "late"

    async def quick() -> str:
        clock.advance(0.05)
        return "on time"

    assert await breaker.call(slow) == "late"
    assert breaker.statistics().consecutive_failures == 1
    assert await breaker.call(quick) == "on time"
    assert breaker.statistics().consecutive_failures == 0
    await breaker.call(slow)
    await breaker.call(slow)
    assert breaker.state is OPEN
    assert breaker.statistics().total_failures == 3


def test_an_explicit_duration_overrides_the_clock(clock: ManualClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1, slow_call_threshold=timedelta(seconds=1))
    breaker.acquire().record_success(duration=0.5)
    assert breaker.state is CLOSED
    breaker.acquire().record_success(duration=1.5)
    assert breaker.state is OPEN


def test_a_slow_probe_reopens(clock: ManualClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1, slow_call_threshold=0.1)
    open_breaker(breaker)
    clock.advance(30.0)
    breaker.acquire().record_success(duration=0.2)
    assert breaker.state is OPEN


# -- operators --------------------------------------------------------------


def test_force_open_holds_until_reset(clock: ManualClock) -> None:
    heard: list[BreakerTransition] = []
    breaker = make_breaker(clock, listeners=[heard.append])
    breaker.force_open()
    clock.advance(3600.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.acquire()
    assert info.value.retry_after == pytest.approx(30.0)
    assert breaker.state is OPEN
    breaker.reset()
    assert breaker.state is CLOSED
    assert not breaker.acquire().is_probe
    assert [(t.from_state, t.to_state, t.reason) for t in heard] == [
        (CLOSED, OPEN, "forced open by operator"),
        (OPEN, CLOSED, "reset by operator"),
    ]


def test_reset_clears_the_fault_count_without_a_transition(clock: ManualClock) -> None:
    heard: list[BreakerTransition] = []
    breaker = make_breaker(clock, listeners=[heard.append])
    record_faults(breaker, 4)
    breaker.reset()
    record_faults(breaker, 4)
    assert breaker.state is CLOSED
    assert heard == []


def test_a_raising_listener_is_logged_and_ignored(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[BreakerTransition] = []

    def broken(transition: BreakerTransition) -> None:
        raise RuntimeError("listener bug")

    name = unique_name()
    breaker = make_breaker(clock, name=name, failure_threshold=1, listeners=[broken])
    breaker.add_listener(heard.append)
    with caplog.at_level(logging.ERROR, logger=breaker_module.__name__):
        breaker.acquire().record_failure(fault())
    assert breaker.state is OPEN
    assert [(t.from_state, t.to_state) for t in heard] == [(CLOSED, OPEN)]
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert name in record.getMessage()
    assert "closed -> open" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_removed_listener_hears_nothing(clock: ManualClock) -> None:
    heard: list[BreakerTransition] = []
    breaker = make_breaker(clock, failure_threshold=1, listeners=[heard.append])
    breaker.remove_listener(heard.append)
    open_breaker(breaker)
    assert heard == []


# -- visibility -------------------------------------------------------------


def test_transitions_are_logged_warning_on_open_info_on_close(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    with caplog.at_level(logging.INFO, logger=breaker_module.__name__):
        open_breaker(breaker)
        clock.advance(30.0)
        breaker.acquire().record_success()
    levels = [(r.levelno, r.getMessage().split(": ", 1)[1]) for r in caplog.records]
    assert [level for level, _ in levels] == [logging.WARNING, logging.INFO, logging.INFO]
    assert levels[0][1].startswith("closed -> open (1 consecutive cache faults")
    assert levels[1][1] == "open -> half_open (recovery timeout elapsed; admitting a probe)"
    assert levels[2][1] == "half_open -> closed (probe succeeded)"


def test_prometheus_metrics_follow_the_breaker(clock: ManualClock) -> None:
    name = unique_name()
    breaker = make_breaker(clock, name=name, failure_threshold=1)
    state = "runtime_cache_breaker_state"
    assert sample(state, breaker=name) == 0
    open_breaker(breaker)
    assert sample(state, breaker=name) == 1
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            breaker.acquire()
    assert sample("runtime_cache_breaker_rejections_total", breaker=name) == 3
    clock.advance(30.0)
    probe = breaker.acquire()
    assert sample(state, breaker=name) == 2
    probe.record_success()
    assert sample(state, breaker=name) == 0
    transitions = "runtime_cache_breaker_transitions_total"
    for from_state, to_state in [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]:
        labels = {"breaker": name, "from_state": from_state, "to_state": to_state}
        assert sample(transitions, **labels) == 1


def test_statistics_report_the_counters(clock: ManualClock) -> None:
    breaker = make_breaker(clock, failure_threshold=3)
    breaker.acquire().record_success()
    breaker.acquire().record_success()
    record_faults(breaker, 2)
    assert breaker.statistics() == BreakerStatistics(
        state=CLOSED,
        consecutive_failures=2,
        total_failures=2,
        total_successes=2,
        rejections=0,
        transitions=0,
        opened_at=None,
        retry_after=0.0,
    )
    record_faults(breaker, 1)
    clock.advance(10.0)
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    assert breaker.statistics() == BreakerStatistics(
        state=OPEN,
        consecutive_failures=0,
        total_failures=3,
        total_successes=2,
        rejections=1,
        transitions=1,
        opened_at=1000.0,
        retry_after=20.0,
    )
    clock.advance(20.0)
    breaker.acquire()
    stats = breaker.statistics()
    assert (stats.state, stats.transitions, stats.opened_at, stats.retry_after) == (
        HALF_OPEN,
        2,
        1000.0,
        0.0,
    )


def test_repr_shows_name_state_and_wait(clock: ManualClock) -> None:
    breaker = make_breaker(clock, name="redis-main", failure_threshold=1)
    assert repr(breaker) == (
        "<CircuitBreaker 'redis-main' state=closed consecutive_failures=0/1"
        " retry_after=0.000s rejections=0>"
    )
    open_breaker(breaker)
    clock.advance(12.5)
    assert "state=open" in repr(breaker)
    assert "retry_after=17.500s" in repr(breaker)
    clock.advance(17.5)
    permit = breaker.acquire()
    assert repr(permit) == "<Permit probe of 'redis-main' pending>"


def test_defaults() -> None:
    breaker = CircuitBreaker()
    assert breaker.name == "redis"
    assert breaker.failure_threshold == 5
    assert breaker.recovery_timeout == 30.0
    assert breaker.slow_call_threshold is None
    assert breaker.state is CLOSED


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("failure_threshold", 0),
        ("failure_threshold", True),
        ("failure_threshold", 2.5),
        ("recovery_timeout", 0),
        ("recovery_timeout", -1.0),
        ("recovery_timeout", float("inf")),
        ("recovery_timeout", timedelta(0)),
        ("recovery_timeout", "30"),
        ("slow_call_threshold", 0.0),
        ("slow_call_threshold", float("nan")),
        ("name", ""),
        ("name", " redis"),
        ("clock", object()),
        ("listeners", [42]),
    ],
)
def test_bad_options_raise_configuration_error_naming_the_option(
    option: str, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=option):
        CircuitBreaker(**{option: value})  # type: ignore[arg-type]
