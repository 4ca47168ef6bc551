"""``CacheManager``: one Redis connection pool, a bounded retry policy, health and status.

Contract:

- one shared redis-py ``BlockingConnectionPool`` of ``pool_size`` connections;
  :meth:`CacheManager.get_connection` returns the same ``redis.asyncio.Redis``
  bound to it on every call. The pool never opens more than ``pool_size``
  connections; a caller that cannot get one within ``pool_timeout`` gets
  redis-py's ``ConnectionError("No connection available.")``, which
  ``translate_redis_errors`` turns into ``PoolExhaustedError`` (C14).
- short, explicit timeouts and a bounded retry (redis-py's ``Retry`` with
  ``EqualJitterBackoff``); :attr:`CacheManager.max_call_duration` is the
  modelled worst case of one command, for the fallback layer's deadline.
  Every retry is counted in ``REDIS_RETRIES``.
- :meth:`CacheManager.health_check` pings on a dedicated connection (not from
  the request pool) within ``health_check_timeout``, never raises (except
  cancellation), logs one line and notifies listeners on each change of health.
- the password never appears in repr, status, logs or errors raised here.
- :meth:`CacheManager.close` (or leaving ``async with``) stops the monitor
  task and disconnects every connection; nothing outlives it (C15).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as redis_async
from redis.asyncio.connection import (
    BlockingConnectionPool,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff, EqualJitterBackoff, NoBackoff

from runtime.cache.clock import Clock, SystemClock
from runtime.cache.exceptions import CacheConnectionError, ConfigurationError
from runtime.cache.exceptions import translate_redis_errors as _translate_redis_errors
from runtime.cache.metrics import (
    REDIS_CONSECUTIVE_FAILURES,
    REDIS_HEALTHY,
    REDIS_PING_SECONDS,
    REDIS_POOL_CONNECTIONS,
    REDIS_RETRIES,
)

__all__ = [
    "MAX_CALL_DURATION_LIMIT",
    "CacheManager",
    "HealthListener",
    "ManagerStatus",
    "redact_url",
]

logger = logging.getLogger(__name__)

MAX_CALL_DURATION_LIMIT: Final = 10.0
"""Configurations whose ``max_call_duration`` exceeds this many seconds are rejected."""

_SCHEMES: Final = frozenset({"redis", "rediss", "unix"})
_CERT_REQS: Final = frozenset({"none", "optional", "required"})
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/]*)(:[^@/]*)?@")

_T = TypeVar("_T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ManagerStatus:
    """Pool and health at a glance (C13). ``healthy`` is False until a check succeeds."""

    name: str
    url: str
    healthy: bool
    last_ping_latency: float | None
    consecutive_failures: int
    last_error: str | None
    since: datetime
    pool_size: int
    connections_in_use: int
    connections_idle: int
    server_version: str | None
    role: str | None


HealthListener = Callable[[ManagerStatus], object]
"""Called synchronously with the new status on every change of health."""


def redact_url(url: str) -> str:
    """``url`` with the password replaced by ``***`` (``redis://user:***@host:port/db``)."""
    return _USERINFO.sub(
        lambda m: f"{m['scheme']}{m['user']}{':***' if m.group(3) else ''}@", url, count=1
    )


def _seconds(option: str, value: float | timedelta, *, allow_zero: bool = False) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ConfigurationError(f"{option} must be seconds or a timedelta, got {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{option} must be finite and {bound}, got {seconds!r}")
    return float(seconds)


def _int(option: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{option} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _url_kwargs(url: str) -> dict[str, Any]:
    """Connection kwargs from ``url``; ``ConfigurationError`` for anything we do not accept.

    Only ``db`` is allowed in the query string: redis-py lets query options
    override keyword ones, which would silently undo our short timeouts.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"redis_url must be a str, got {type(url).__name__}")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"redis_url is malformed ({exc}): {shown}") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(
            f"redis_url scheme must be redis://, rediss:// or unix://, got {shown}"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"db"})
    if unknown:
        raise ConfigurationError(f"redis_url query options not accepted: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    if parts.username:
        kwargs["username"] = unquote(parts.username)
    if parts.password:
        kwargs["password"] = unquote(parts.password)
    db_text = query["db"][0] if "db" in query else ""
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigurationError(f"redis_url unix:// needs a socket path: {shown}")
        kwargs["path"] = unquote(parts.path)
        kwargs["connection_class"] = UnixDomainSocketConnection
    else:
        if not parts.hostname:
            raise ConfigurationError(f"redis_url has no host: {shown}")
        kwargs["host"] = unquote(parts.hostname)
        kwargs["port"] = 6379 if port is None else port
        path = parts.path.strip("/")
        if path and db_text and path != db_text:
            raise ConfigurationError(f"redis_url gives two databases: {shown}")
        db_text = db_text or path
    if db_text:
        if not db_text.isdigit():
            raise ConfigurationError(f"redis_url db must be a non-negative integer: {shown}")
        kwargs["db"] = int(db_text)
    if parts.scheme == "rediss":
        kwargs["connection_class"] = SSLConnection
    return kwargs


class _CountingRetry(Retry):
    """redis-py's asyncio ``Retry`` that counts each retry in ``REDIS_RETRIES``.

    Holds only the manager name, so redis-py's per-connection deepcopy is cheap.
    """

    def __init__(self, backoff: AbstractBackoff, retries: int, *, manager: str) -> None:
        super().__init__(backoff, retries)
        self._manager = manager

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[_T]],
        fail: Callable[[Exception], Any] | Callable[[Exception, int], Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> _T:
        async def counted_fail(error: Exception, failures: int) -> None:
            if failures <= self._retries:  # a retry follows this failure
                REDIS_RETRIES.labels(manager=self._manager).inc()
            if with_failure_count:
                await cast(Callable[[Exception, int], Awaitable[object]], fail)(error, failures)
            else:
                await cast(Callable[[Exception], Awaitable[object]], fail)(error)

        return await super().call_with_retry(
            do, counted_fail, is_retryable, with_failure_count=True
        )


class CacheManager:
    """Owns the Redis pool, the retry policy and the health of one Redis (see module doc)."""

    def __init__(
        self,
        redis_url: str,
        pool_size: int = 10,
        *,
        socket_timeout: float | timedelta = 0.1,
        connect_timeout: float | timedelta = 0.1,
        pool_timeout: float | timedelta = 0.05,
        retries: int = 1,
        backoff_base: float | timedelta = 0.001,
        backoff_cap: float | timedelta = 0.01,
        health_check_timeout: float | timedelta = 0.1,
        monitor_interval: float | timedelta | None = None,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_cert_reqs: str = "required",
        client_name: str = "runtime-cache",
        name: str = "default",
        clock: Clock | None = None,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        url_kwargs = _url_kwargs(redis_url)
        self._password: str | None = url_kwargs.get("password")
        self._url = redact_url(redis_url)
        self._pool_size = _int("pool_size", pool_size, 1, 10_000)
        self._socket_timeout = _seconds("socket_timeout", socket_timeout)
        self._connect_timeout = _seconds("connect_timeout", connect_timeout)
        self._pool_timeout = _seconds("pool_timeout", pool_timeout)
        self._retries = _int("retries", retries, 0, 10)
        self._backoff_base = _seconds("backoff_base", backoff_base, allow_zero=True)
        self._backoff_cap = _seconds("backoff_cap", backoff_cap, allow_zero=True)
        if self._backoff_cap < self._backoff_base:
            raise ConfigurationError(
                f"backoff_cap ({self._backoff_cap}) must be >= backoff_base ({self._backoff_base})"
            )
        self._health_timeout = _seconds("health_check_timeout", health_check_timeout)
        self._monitor_interval = (
            None if monitor_interval is None else _seconds("monitor_interval", monitor_interval)
        )
        if ssl_cert_reqs not in _CERT_REQS:
            raise ConfigurationError(
                f"ssl_cert_reqs must be one of {sorted(_CERT_REQS)}, got {ssl_cert_reqs!r}"
            )
        tls = url_kwargs.get("connection_class") is SSLConnection
        ssl_files = {
            "ssl_ca_certs": ssl_ca_certs,
            "ssl_certfile": ssl_certfile,
            "ssl_keyfile": ssl_keyfile,
        }
        for option, value in ssl_files.items():
            if value is not None and (not tls or not isinstance(value, str) or not value):
                raise ConfigurationError(f"{option} needs a rediss:// URL and a non-empty path")
        if ssl_keyfile is not None and ssl_certfile is None:
            raise ConfigurationError("ssl_keyfile needs ssl_certfile")
        for option, text in (("client_name", client_name), ("name", name)):
            if not isinstance(text, str) or not text or any(c.isspace() for c in text):
                raise ConfigurationError(f"{option} must be a non-empty string without spaces")
        self._name = name
        self._client_name = client_name
        self._clock: Clock = SystemClock() if clock is None else clock  # latency
        self._wall_clock = wall_clock  # ``since`` only; never drives a timeout
        if self.max_call_duration > MAX_CALL_DURATION_LIMIT:
            raise ConfigurationError(
                f"max_call_duration would be {self.max_call_duration:.3f}s "
                f"(> {MAX_CALL_DURATION_LIMIT}s): lower socket_timeout, connect_timeout, "
                "pool_timeout, retries or backoff_cap"
            )

        common: dict[str, Any] = {
            **url_kwargs,
            "decode_responses": False,  # codecs decode bytes themselves
            "socket_connect_timeout": self._connect_timeout,
        }
        if tls:
            common |= {"ssl_cert_reqs": ssl_cert_reqs} | {
                k: v for k, v in ssl_files.items() if v is not None
            }
        self._pool = BlockingConnectionPool(
            max_connections=self._pool_size,
            timeout=self._pool_timeout,
            socket_timeout=self._socket_timeout,
            client_name=client_name,
            retry=_CountingRetry(
                EqualJitterBackoff(cap=self._backoff_cap, base=self._backoff_base),
                self._retries,
                manager=name,
            ),
            **common,
        )
        self._client: redis_async.Redis | None = redis_async.Redis(connection_pool=self._pool)
        # The health connection is private: a saturated request pool must not
        # make the server look dead, and checks must not take request connections.
        self._health_pool = ConnectionPool(
            max_connections=1,
            socket_timeout=self._health_timeout,
            client_name=f"{client_name}-health",
            retry=Retry(NoBackoff(), 0),
            **common,
        )
        self._health_client = redis_async.Redis(
            connection_pool=self._health_pool, single_connection_client=True
        )
        self._health_lock = asyncio.Lock()
        self._healthy: bool | None = None  # None: never checked
        self._healthy_event = asyncio.Event()
        self._since = self._wall_clock()
        self._latency: float | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._server_version: str | None = None
        self._role: str | None = None
        self._listeners: list[HealthListener] = []
        self._monitor: asyncio.Task[None] | None = None
        self._closed = False
        self._m_healthy = REDIS_HEALTHY.labels(manager=name)
        self._m_ping = REDIS_PING_SECONDS.labels(manager=name)
        self._m_failures = REDIS_CONSECUTIVE_FAILURES.labels(manager=name)
        self._m_in_use = REDIS_POOL_CONNECTIONS.labels(manager=name, state="in_use")
        self._m_idle = REDIS_POOL_CONNECTIONS.labels(manager=name, state="idle")
        self._m_healthy.set(0)
        self._m_failures.set(0)

    # -- configuration facts ------------------------------------------------

    @property
    def name(self) -> str:
        """The label of this manager in metrics and logs."""
        return self._name

    @property
    def url(self) -> str:
        """The Redis URL with the password redacted."""
        return self._url

    @property
    def pool_size(self) -> int:
        """The most connections the request pool ever opens."""
        return self._pool_size

    @property
    def max_call_duration(self) -> float:
        """Worst case, in seconds, of one command when Redis does not answer.

        ``pool_timeout + (retries + 1) * (connect_timeout + socket_timeout)
        + retries * backoff_cap``: a frozen, dead or refusing server ends each
        attempt at its first timeout (the TCP connect, or the reply to the
        handshake or the command), and redis-py either fails the pool's connect
        (then the command never runs) or retries the command. A server that
        answers slowly, each reply just inside ``socket_timeout``, can take
        longer: callers with a budget enforce it themselves (C11).
        """
        attempt = self._connect_timeout + self._socket_timeout
        return (
            self._pool_timeout + (self._retries + 1) * attempt + self._retries * self._backoff_cap
        )

    # -- the request path ---------------------------------------------------

    def get_connection(self) -> redis_async.Redis:
        """The one client bound to the shared pool (the same object every call).

        Raises ``CacheConnectionError`` after :meth:`close`.
        """
        client = self._client
        if client is None:
            raise CacheConnectionError(f"cache manager {self._name!r} is closed")
        return client

    # -- health -------------------------------------------------------------

    async def health_check(self) -> bool:
        """PING Redis on the dedicated health connection within ``health_check_timeout``.

        Returns whether Redis answered; never raises except ``CancelledError``.
        Records latency and outcome, updates the gauges, and on a change of
        health logs one line and calls the listeners. Server version and role
        are fetched (same deadline) on the first success and on each recovery.
        """
        if self._closed:
            return False
        started = self._clock.monotonic()
        latency = 0.0
        info: tuple[str | None, str | None] | None = None
        try:
            with _translate_redis_errors():
                async with asyncio.timeout(self._health_timeout):
                    async with self._health_lock:
                        await self._health_client.ping()
                        latency = self._clock.monotonic() - started
                        if self._healthy is not True:
                            info = await self._server_info()
        except Exception as exc:  # health_check never raises: the outcome is the answer
            await self._discard_health_connection()
            self._record_failure(exc)
            return False
        self._record_success(latency, info)
        return True

    async def _server_info(self) -> tuple[str | None, str | None]:
        server = await self._health_client.info("server")
        replication = await self._health_client.info("replication")
        version, role = server.get("redis_version"), replication.get("role")
        return (
            None if version is None else str(version),
            None if role is None else str(role),
        )

    async def _discard_health_connection(self) -> None:
        # A timed-out or broken connection may hold a late reply; reconnect next time.
        connection = self._health_client.connection
        if connection is not None:
            await connection.disconnect(nowait=True)

    def _record_success(self, latency: float, info: tuple[str | None, str | None] | None) -> None:
        self._latency = latency
        self._failures = 0
        self._m_ping.set(latency)
        self._m_failures.set(0)
        self._update_pool_gauges()
        if info is not None:
            self._server_version, self._role = info
        if self._healthy is not True:
            self._healthy = True
            self._last_error = None
            self._since = self._wall_clock()
            self._healthy_event.set()
            self._m_healthy.set(1)
            logger.info(
                "redis %s (%s) healthy: ping %.3f ms, version %s, role %s",
                self._name,
                self._url,
                latency * 1000,
                self._server_version,
                self._role,
            )
            self._notify()

    def _record_failure(self, exc: BaseException) -> None:
        self._failures += 1
        self._last_error = self._describe(exc)
        self._m_failures.set(self._failures)
        self._update_pool_gauges()
        if self._healthy is not False:
            self._healthy = False
            self._since = self._wall_clock()
            self._healthy_event.clear()
            self._m_healthy.set(0)
            logger.warning("redis %s (%s) unhealthy: %s", self._name, self._url, self._last_error)
            self._notify()

    def _describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return text.replace(self._password, "***") if self._password else text

    def _notify(self) -> None:
        status = self.status()
        for listener in tuple(self._listeners):
            try:
                listener(status)
            except Exception:
                logger.exception("health listener %r of redis %s failed", listener, self._name)

    def add_health_listener(self, listener: HealthListener) -> Callable[[], None]:
        """Call ``listener(status)`` on every change of health; returns the unsubscriber."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def wait_healthy(self) -> None:
        """Return once a health check has succeeded (now or later); bound it with a timeout.

        Does not ping by itself: the monitor or other callers run the checks.
        """
        await self._healthy_event.wait()

    # -- monitor ------------------------------------------------------------

    def start_monitor(self, interval: float | timedelta | None = None) -> None:
        """Run :meth:`health_check` now and then every ``interval`` (default ``monitor_interval``).

        Idempotent while running; stopped by :meth:`close`.
        """
        if self._closed:
            raise CacheConnectionError(f"cache manager {self._name!r} is closed")
        if interval is None and self._monitor_interval is None:
            raise ConfigurationError("monitor_interval is not set; pass interval")
        seconds = _seconds("interval", interval) if interval is not None else self._monitor_interval
        assert seconds is not None
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(
                self._run_monitor(seconds), name=f"redis-health-{self._name}"
            )

    async def _run_monitor(self, interval: float) -> None:
        while True:
            await self.health_check()
            await asyncio.sleep(interval)

    # -- status -------------------------------------------------------------

    def _pool_counts(self) -> tuple[int, int]:
        # redis-py keeps disconnected idle connections in its free list; count live ones.
        in_use = len(self._pool._in_use_connections)
        idle = sum(1 for c in self._pool._available_connections if c.is_connected)
        return in_use, idle

    def _update_pool_gauges(self) -> tuple[int, int]:
        in_use, idle = self._pool_counts()
        self._m_in_use.set(in_use)
        self._m_idle.set(idle)
        return in_use, idle

    def status(self) -> ManagerStatus:
        """A snapshot of pool and health; also refreshes the pool gauges."""
        in_use, idle = self._update_pool_gauges()
        return ManagerStatus(
            name=self._name,
            url=self._url,
            healthy=self._healthy is True,
            last_ping_latency=self._latency,
            consecutive_failures=self._failures,
            last_error=self._last_error,
            since=self._since,
            pool_size=self._pool_size,
            connections_in_use=in_use,
            connections_idle=idle,
            server_version=self._server_version,
            role=self._role,
        )

    def __repr__(self) -> str:
        in_use, idle = self._pool_counts()
        health = {None: "unchecked", True: "healthy", False: "unhealthy"}[self._healthy]
        state = "closed" if self._closed else health
        return (
            f"<CacheManager {self._name!r} {self._url} pool={in_use} in use/{idle} idle"
            f"/{self._pool_size} max {state} failures={self._failures}>"
        )

    # -- lifecycle ----------------------------------------------------------

    async def close(self) -> None:
        """Stop the monitor and disconnect every connection; idempotent (C15).

        A client obtained before ``close()`` cannot reconnect: its calls fail
        with ``PoolExhaustedError`` after ``pool_timeout``.
        """
        if self._closed:
            return
        self._closed = True
        self._client = None
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.cancel()
            try:
                await monitor
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        # No new connections from now on, even for clients kept past close():
        # with no free connection and a limit of 0, the pool can only time out.
        self._pool.max_connections = 0
        idle = list(self._pool._available_connections)
        self._pool._available_connections.clear()
        try:
            await asyncio.gather(*(c.disconnect() for c in idle))
            await self._pool.disconnect()  # the in-use ones
            await self._health_client.aclose()
            await self._health_pool.disconnect()
        finally:
            self._m_in_use.set(0)
            self._m_idle.set(0)

    async def __aenter__(self) -> CacheManager:
        if self._monitor_interval is not None:
            self.start_monitor()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
