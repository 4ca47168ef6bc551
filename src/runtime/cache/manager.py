"""``CacheManager``: one Redis connection pool, a bounded retry policy, health and status.

Three topologies, chosen by the URL (or the :meth:`CacheManager.sentinel` and
:meth:`CacheManager.cluster` builders); redis-py's own clients do the topology
work, never a home-made layer:

- standalone: ``redis://[user:password@]host:port/db``, ``rediss://...``,
  ``unix://path?db=N``; :meth:`~CacheManager.get_connection` gives a
  ``redis.asyncio.Redis``.
- Sentinel: ``redis+sentinel://[user:password@]host:port,host:port/service[/db]``
  (sentinel addresses, default port 26379; the password is the data nodes').
  The client is redis-py's ``Sentinel.master_for`` ``Redis``: every new
  connection asks the sentinels for the current primary, so the layer follows
  a failover without a restart; a demoted primary's ``READONLY`` drops the
  connection. While no primary is known, commands fail fast with a connection
  error, which the fallback turns into a store read (C11).
- Cluster: ``redis+cluster://[user:password@]host:port,host:port`` (startup
  nodes); the client is ``redis.asyncio.RedisCluster``, which follows
  ``MOVED``/``ASK`` and retries ``TRYAGAIN``; ``CLUSTERDOWN`` and lost
  primaries become cache faults. ``pool_size`` bounds the connections *per
  node*; a command waits up to ``pool_timeout`` for one of its node's
  connections, as on the other topologies, then fails
  (``MaxConnectionsError`` -> ``PoolExhaustedError``).

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
  the request pool; in Cluster, every primary) within ``health_check_timeout``,
  never raises (except cancellation), logs one line and notifies listeners on
  each change of health.
- the password never appears in repr, status, logs or errors raised here.
- :meth:`CacheManager.close` (or leaving ``async with``) stops the monitor
  task and disconnects every connection; nothing outlives it (C15).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, TypeAlias, TypeVar, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis.asyncio as redis_async
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    BlockingConnectionPool,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import AbstractBackoff, EqualJitterBackoff, NoBackoff
from redis.exceptions import MaxConnectionsError

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
    "RedisClient",
    "redact_url",
]

logger = logging.getLogger(__name__)

MAX_CALL_DURATION_LIMIT: Final = 10.0
"""Configurations whose ``max_call_duration`` exceeds this many seconds are rejected."""

_SCHEMES: Final = frozenset({"redis", "rediss", "unix"})
_SENTINEL: Final = "redis+sentinel"
_CLUSTER: Final = "redis+cluster"
_CERT_REQS: Final = frozenset({"none", "optional", "required"})
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/]*)(:[^@/]*)?@")

_T = TypeVar("_T")

RedisClient: TypeAlias = redis_async.Redis | RedisCluster
"""What :meth:`CacheManager.get_connection` returns: ``Redis`` (standalone and
Sentinel) or ``RedisCluster``. Code that needs one of them checks with
``isinstance``."""


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
    topology: str = "standalone"
    """``standalone``, ``sentinel`` or ``cluster``."""
    primaries: tuple[str, ...] = ()
    """``host:port`` of the primary (primaries, in Cluster) last known to the client."""


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


@dataclass(frozen=True, slots=True)
class _Topology:
    """A parsed ``redis+sentinel://`` or ``redis+cluster://`` URL."""

    kind: str  # "sentinel" or "cluster"
    nodes: tuple[tuple[str, int], ...]
    service: str | None
    kwargs: dict[str, Any]  # username, password, db


def _topology_of(url: str) -> _Topology | None:
    """The topology of a Sentinel or Cluster URL; None for a standalone URL.

    Only ``db`` is accepted in the query string (Sentinel; Cluster has db 0 only).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"redis_url must be a str, got {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in (_SENTINEL, _CLUSTER):
        return None
    kind = "sentinel" if scheme.lower() == _SENTINEL else "cluster"
    shown = redact_url(url)
    rest, _, query_text = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    kwargs: dict[str, Any] = {}
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            kwargs["username"] = unquote(user)
        if colon and password:
            kwargs["password"] = unquote(password)
    default_port = 26379 if kind == "sentinel" else 6379
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        try:
            parts = urlsplit(f"//{item}")
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"redis_url is malformed ({exc}): {shown}") from None
        if not parts.hostname or parts.username is not None or parts.path:
            raise ConfigurationError(f"redis_url has an empty or bad address {item!r}: {shown}")
        nodes.append((parts.hostname, default_port if port is None else port))
    query = parse_qs(query_text, keep_blank_values=True)
    allowed = {"db"} if kind == "sentinel" else set()
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise ConfigurationError(f"redis_url query options not accepted: {', '.join(unknown)}")
    segments = [unquote(part) for part in path.split("/") if part]
    service: str | None = None
    if kind == "sentinel":
        if not segments or len(segments) > 2:
            raise ConfigurationError(
                f"redis+sentinel:// needs /service_name[/db] after the addresses: {shown}"
            )
        service = segments[0]
        if any(c.isspace() for c in service):
            raise ConfigurationError(f"redis_url service name has spaces: {shown}")
        db_text = segments[1] if len(segments) == 2 else ""
        if db_text and "db" in query and query["db"][0] != db_text:
            raise ConfigurationError(f"redis_url gives two databases: {shown}")
        db_text = db_text or (query["db"][0] if "db" in query else "")
        if db_text:
            if not db_text.isdigit():
                raise ConfigurationError(f"redis_url db must be a non-negative integer: {shown}")
            kwargs["db"] = int(db_text)
    elif segments and segments != ["0"]:
        raise ConfigurationError(f"redis+cluster:// has database 0 only: {shown}")
    return _Topology(kind, tuple(nodes), service, kwargs)


def _node_list(option: str, nodes: Sequence[tuple[str, int]]) -> str:
    if isinstance(nodes, str) or not nodes:
        raise ConfigurationError(f"{option} must be a non-empty sequence of (host, port)")
    items = []
    for node in nodes:
        host, port = node
        if not isinstance(host, str) or not host or isinstance(port, bool):
            raise ConfigurationError(f"{option}: bad address {node!r}")
        _int(f"{option} port", port, 1, 65535)
        items.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return ",".join(items)


def _userinfo(username: str | None, password: str | None) -> str:
    if username is None and password is None:
        return ""
    user = quote(username or "", safe="")
    return f"{user}:{quote(password, safe='')}@" if password is not None else f"{user}@"


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """redis-py's Sentinel pool with the blocking, bounded checkout of ``BlockingConnectionPool``.

    The MRO puts the Sentinel address logic over the blocking checkout: the
    pool never opens more than ``max_connections`` and a caller waits at most
    ``timeout`` for one (C14).
    """


class _BlockingRedisCluster(RedisCluster):
    """redis-py's ``RedisCluster`` whose commands wait for a free connection of their node.

    redis-py's ``ClusterNode`` raises ``MaxConnectionsError`` at once when all its
    ``max_connections`` are in use, so a burst of more concurrent commands than
    ``pool_size`` sent the excess to the store as ``pool_exhausted`` fallbacks
    although a connection frees up within a round trip (standalone and Sentinel
    wait in ``BlockingConnectionPool``). Here a command first takes one of its
    target node's ``max_connections`` permits, waiting at most ``pool_timeout``
    (C14), then runs as usual. Pipelines and the extra hop of a MOVED/ASK
    redirect take connections without a permit and keep redis-py's fail-fast.
    """

    def __init__(self, *, pool_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._permit_timeout = pool_timeout
        self._permits: dict[str, asyncio.Semaphore] = {}

    async def _execute_command(self, target_node: ClusterNode, *args: Any, **kwargs: Any) -> Any:
        permits = self._permits.get(target_node.name)
        if permits is None:
            permits = asyncio.Semaphore(target_node.max_connections)
            self._permits[target_node.name] = permits
        if permits.locked():
            try:
                async with asyncio.timeout(self._permit_timeout):
                    await permits.acquire()
            except TimeoutError:
                raise MaxConnectionsError(
                    f"no connection to {target_node.name} freed up within "
                    f"{self._permit_timeout * 1000:.0f} ms"
                ) from None
        else:
            await permits.acquire()  # free: returns without suspending
        try:
            return await super()._execute_command(target_node, *args, **kwargs)
        finally:
            permits.release()


def _one_info(reply: Any) -> dict[str, Any]:
    """An ``INFO`` reply of one cluster node: redis-py may key it by node name."""
    if isinstance(reply, dict) and reply and "redis_version" not in reply:
        first = next(iter(reply.values()))
        if isinstance(first, dict) and ("redis_version" in first or "role" in first):
            return first
    return reply if isinstance(reply, dict) else {}


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
        topology = _topology_of(redis_url)
        url_kwargs = _url_kwargs(redis_url) if topology is None else dict(topology.kwargs)
        self._password: str | None = url_kwargs.get("password")
        self._url = redact_url(redis_url)
        self._pool_size = _int("pool_size", pool_size, 1, 10_000)
        self._slots: asyncio.Semaphore | None = None
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
        retry = _CountingRetry(
            EqualJitterBackoff(cap=self._backoff_cap, base=self._backoff_base),
            self._retries,
            manager=name,
        )
        self._topology = "standalone" if topology is None else topology.kind
        self._sentinel: Sentinel | None = None
        self._cluster: RedisCluster | None = None
        self._health_cluster: RedisCluster | None = None
        self._client: RedisClient | None
        if topology is None:
            self._pool: ConnectionPool = BlockingConnectionPool(
                max_connections=self._pool_size,
                timeout=self._pool_timeout,
                socket_timeout=self._socket_timeout,
                client_name=client_name,
                retry=retry,
                **common,
            )
            self._client = redis_async.Redis(connection_pool=self._pool)
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
        elif topology.kind == "sentinel":
            assert topology.service is not None
            # Sentinel queries fail fast: a dead sentinel must not stall discovery.
            self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(topology.nodes),
                sentinel_kwargs={
                    "socket_timeout": self._socket_timeout,
                    "socket_connect_timeout": self._connect_timeout,
                    "retry": Retry(NoBackoff(), 0),
                },
            )
            sentinel_client: redis_async.Redis = self._sentinel.master_for(
                topology.service,
                connection_pool_class=_BlockingSentinelPool,
                max_connections=self._pool_size,
                timeout=self._pool_timeout,
                socket_timeout=self._socket_timeout,
                client_name=client_name,
                retry=retry,
                **common,
            )
            self._client = sentinel_client
            self._pool = sentinel_client.connection_pool
            self._health_client = self._sentinel.master_for(
                topology.service,
                max_connections=1,
                socket_timeout=self._health_timeout,
                client_name=f"{client_name}-health",
                retry=Retry(NoBackoff(), 0),
                **common,
            )
            self._health_pool = self._health_client.connection_pool
        else:
            cluster_common = {k: v for k, v in common.items() if k != "db"}
            self._cluster = _BlockingRedisCluster(
                pool_timeout=self._pool_timeout,
                startup_nodes=[ClusterNode(host, port) for host, port in topology.nodes],
                max_connections=self._pool_size,
                socket_timeout=self._socket_timeout,
                client_name=client_name,
                retry=retry,
                **cluster_common,
            )
            self._client = self._cluster
            self._health_cluster = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in topology.nodes],
                max_connections=1,
                socket_timeout=self._health_timeout,
                client_name=f"{client_name}-health",
                retry=Retry(NoBackoff(), 0),
                **cluster_common,
            )
            # Unused placeholders keep the standalone attributes typed as non-optional.
            self._pool = ConnectionPool(max_connections=1)
            self._health_pool = ConnectionPool(max_connections=1)
            self._health_client = redis_async.Redis(connection_pool=self._health_pool)
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

    # -- other topologies ---------------------------------------------------

    @classmethod
    def sentinel(
        cls,
        sentinels: Sequence[tuple[str, int]],
        service_name: str,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        **options: Any,
    ) -> CacheManager:
        """A manager of the primary that ``sentinels`` know as ``service_name``.

        Same as ``CacheManager("redis+sentinel://host:port,.../service_name/db")``;
        ``options`` are the constructor's keyword options.
        """
        if not isinstance(service_name, str) or not service_name or "/" in service_name:
            raise ConfigurationError("service_name must be a non-empty string without '/'")
        _int("db", db, 0, 1_000_000)
        url = (
            f"{_SENTINEL}://{_userinfo(username, password)}{_node_list('sentinels', sentinels)}"
            f"/{quote(service_name, safe='')}/{db}"
        )
        return cls(url, **options)

    @classmethod
    def cluster(
        cls,
        startup_nodes: Sequence[tuple[str, int]],
        *,
        username: str | None = None,
        password: str | None = None,
        **options: Any,
    ) -> CacheManager:
        """A manager of the Redis Cluster reachable through ``startup_nodes``.

        Same as ``CacheManager("redis+cluster://host:port,host:port")``.
        """
        nodes = _node_list("startup_nodes", startup_nodes)
        return cls(f"{_CLUSTER}://{_userinfo(username, password)}{nodes}", **options)

    # -- configuration facts ------------------------------------------------

    @property
    def topology(self) -> str:
        """``standalone``, ``sentinel`` or ``cluster``."""
        return self._topology

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

    def get_connection(self) -> RedisClient:
        """The one client bound to the shared pool (the same object every call).

        ``redis.asyncio.Redis`` for standalone and Sentinel, ``RedisCluster`` for Cluster.

        Raises ``CacheConnectionError`` after :meth:`close`.
        """
        client = self._client
        if client is None:
            raise CacheConnectionError(f"cache manager {self._name!r} is closed")
        return client

    @property
    def operation_slots(self) -> asyncio.Semaphore | None:
        """A FIFO gate of ``pool_size`` slots for callers that bound their own deadlines.

        redis-py's ``BlockingConnectionPool`` wakes waiters through an
        ``asyncio.Condition``: newcomers can overtake old waiters, and a waiter
        cancelled by its deadline swallows a wake-up, so under contention a few
        callers starve for tens of milliseconds. Taking a slot here first keeps
        at most ``pool_size`` commands inside redis-py, so its pool never makes
        anyone wait, and the waiting happens in a fair queue. None on Cluster
        (its connections are per node and already gated there).
        """
        if self._cluster is not None:
            return None
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._pool_size)
        return self._slots

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
                        if self._health_cluster is not None:
                            await self._health_cluster.ping(target_nodes=RedisCluster.PRIMARIES)
                        else:
                            await self._health_client.ping()
                        latency = self._clock.monotonic() - started
        except asyncio.CancelledError:
            # Cancelled mid-PING: the connection may still get the reply; drop it.
            await self._discard_health_connection()
            raise
        except Exception as exc:  # health_check never raises: the outcome is the answer
            await self._discard_health_connection()
            self._record_failure(exc)
            return False
        if self._healthy is not True:
            info = await self._fetch_server_info()
        self._record_success(latency, info)
        return True

    async def _fetch_server_info(self) -> tuple[str | None, str | None] | None:
        """Version and role, best effort: the PING alone decides health."""
        try:
            with _translate_redis_errors():
                async with asyncio.timeout(self._health_timeout), self._health_lock:
                    return await self._server_info()
        except Exception as exc:
            logger.debug("manager %s: server info unavailable: %r", self._name, exc)
            return None

    async def _server_info(self) -> tuple[str | None, str | None]:
        if self._health_cluster is not None:
            # One primary speaks for the cluster (all run the same version).
            node = self._health_cluster.get_primaries()[0]
            server = _one_info(await self._health_cluster.info("server", target_nodes=node))
            replication = _one_info(
                await self._health_cluster.info("replication", target_nodes=node)
            )
        else:
            server = await self._health_client.info("server")
            replication = await self._health_client.info("replication")
        version, role = server.get("redis_version"), replication.get("role")
        return (
            None if version is None else str(version),
            None if role is None else str(role),
        )

    async def _discard_health_connection(self) -> None:
        # A timed-out or broken connection may hold a late reply; reconnect next time.
        if self._health_cluster is not None:
            await self._health_cluster.aclose()  # also re-reads the topology next time
            return
        connection = self._health_client.connection
        if connection is not None:
            await connection.disconnect(nowait=True)
        elif self._topology == "sentinel":
            await self._health_pool.disconnect()

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
        if self._cluster is not None:
            in_use = idle = 0
            for node in self._cluster.get_nodes():
                in_use += len(node._connections) - len(node._free)
                idle += sum(1 for c in node._free if c.is_connected)
            return in_use, idle
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
            topology=self._topology,
            primaries=self._primaries(),
        )

    def _primaries(self) -> tuple[str, ...]:
        if self._cluster is not None:
            return tuple(sorted(node.name for node in self._cluster.get_primaries()))
        if isinstance(self._pool, SentinelConnectionPool):
            address = self._pool.master_address
            return () if address is None else (f"{address[0]}:{address[1]}",)
        kwargs = self._pool.connection_kwargs
        if "path" in kwargs:
            return (str(kwargs["path"]),)
        return (f"{kwargs.get('host')}:{kwargs.get('port')}",)

    def __repr__(self) -> str:
        in_use, idle = self._pool_counts()
        health = {None: "unchecked", True: "healthy", False: "unhealthy"}[self._healthy]
        state = "closed" if self._closed else health
        return (
            f"<CacheManager {self._name!r} {self._url} {self._topology}"
            f" pool={in_use} in use/{idle} idle"
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
        # Every step runs even if an earlier one fails: redis-py raises TimeoutError
        # when a socket takes longer than connect_timeout to finish closing (a busy
        # loop), and stopping there would leave the other connections open (C15).
        steps: list[Callable[[], Awaitable[object]]]
        if self._cluster is not None and self._health_cluster is not None:
            steps = [self._cluster.aclose, self._health_cluster.aclose, self._health_client.aclose]
        else:
            # No new connections from now on, even for clients kept past close():
            # with no free connection and a limit of 0, the pool can only time out.
            self._pool.max_connections = 0
            idle = list(self._pool._available_connections)
            self._pool._available_connections.clear()
            steps = [
                lambda: asyncio.gather(*(c.disconnect() for c in idle)),
                self._pool.disconnect,  # the in-use ones
                self._health_client.aclose,
                self._health_pool.disconnect,
            ]
            if self._sentinel is not None:
                steps.append(self._sentinel.aclose)
        try:
            for step in steps:
                try:
                    await step()
                except Exception as exc:  # logged; the remaining steps still run
                    logger.warning("redis %s: closing: %s", self._name, self._describe(exc))
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
