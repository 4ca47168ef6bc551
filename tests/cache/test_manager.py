"""CacheManager against real Redis servers: pool bound, retries, health, redaction, close."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis_async
from prometheus_client import REGISTRY
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

from runtime.cache.clock import ManualClock
from runtime.cache.exceptions import (
    CacheConnectionError,
    CacheTimeoutError,
    CacheUnavailableError,
    ConfigurationError,
    PoolExhaustedError,
    translate_redis_errors,
)
from runtime.cache.manager import CacheManager, ManagerStatus, redact_url
from support.redis_server import (
    RedisServer,
    RedisServerFactory,
    free_port,
)

PASSWORD = "Sup3r-s3cret-pw"
HANG_GUARD = 10.0  # seconds; only catches a hang, never a speed assertion


class FakeClock(ManualClock):
    """The shared manual clock plus a wall clock that moves with it."""

    def __init__(self) -> None:
        super().__init__(1000.0)
        self.wall = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.wall

    def jump(self, seconds: float) -> None:
        self.advance(seconds)
        self.wall += timedelta(seconds=seconds)


def unique_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def retries_of(name: str) -> float:
    value = REGISTRY.get_sample_value("runtime_cache_redis_retries_total", {"manager": name})
    return value or 0.0


async def client_names(url: str) -> list[str]:
    """Names of the clients connected to the server at ``url`` (seen from a fresh client)."""
    admin = redis_async.Redis.from_url(url, socket_timeout=2)
    try:
        return [c.get("name", "") for c in await admin.client_list()]
    finally:
        await admin.aclose()


async def eventually(predicate: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``predicate`` until it holds; the deadline only guards against a hang."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            if await predicate():
                return
            await asyncio.sleep(0.005)


async def wait_for(predicate: Callable[[], object], what: str) -> None:
    async def holds() -> bool:
        return bool(predicate())

    await eventually(holds)
    assert predicate(), what


@pytest.fixture
async def manager_factory() -> AsyncIterator[Callable[..., CacheManager]]:
    made: list[CacheManager] = []

    def make(url: str, pool_size: int = 10, **options: object) -> CacheManager:
        options.setdefault("name", unique_name())
        manager = CacheManager(url, pool_size, **options)  # type: ignore[arg-type]
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.close()


# -- the request pool ---------------------------------------------------------


async def test_get_connection_returns_the_one_shared_client(
    redis_url: str, manager_factory: Callable[..., CacheManager]
) -> None:
    manager = manager_factory(redis_url)
    client = manager.get_connection()
    assert client is manager.get_connection()
    await client.set("manager:k", b"\x00\xff")
    assert await client.get("manager:k") == b"\x00\xff"  # bytes: decode_responses=False


async def test_pool_never_opens_more_than_pool_size_and_late_callers_get_pool_exhausted(
    redis_server: RedisServer, manager_factory: Callable[..., CacheManager]
) -> None:
    client_name = f"cap-{unique_name()}"
    manager = manager_factory(
        redis_server.url, 10, socket_timeout=2.0, pool_timeout=0.05, client_name=client_name
    )
    client = manager.get_connection()
    outcomes: list[str] = []
    seen: list[int] = []
    done = asyncio.Event()

    async def caller() -> None:
        try:
            with translate_redis_errors():
                await client.blpop(["never-filled"], 0.5)  # holds its connection 0.5 s
            outcomes.append("ok")
        except PoolExhaustedError:
            outcomes.append("exhausted")

    async def sample() -> None:
        while not done.is_set():
            names = await client_names(redis_server.url)
            seen.append(names.count(client_name))
            seen.append(manager.status().connections_in_use)
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    async with asyncio.timeout(HANG_GUARD):
        await asyncio.gather(*(caller() for _ in range(50)))
    done.set()
    await sampler

    assert max(seen) == 10, seen  # reached the bound, never passed it
    assert outcomes.count("ok") >= 10
    assert outcomes.count("exhausted") >= 1
    assert len(outcomes) == 50
    assert (await client_names(redis_server.url)).count(client_name) <= 10


async def test_pool_exhaustion_is_redis_pys_no_connection_available_error(
    redis_server: RedisServer, manager_factory: Callable[..., CacheManager]
) -> None:
    # Pins the redis-py behaviour that translate_redis_errors relies on.
    from redis.exceptions import ConnectionError as RedisConnectionError

    manager = manager_factory(redis_server.url, 1, socket_timeout=2.0, pool_timeout=0.02)
    client = manager.get_connection()
    holder = asyncio.ensure_future(client.blpop(["q"], 0.3))
    await wait_for(lambda: manager.status().connections_in_use == 1, "connection taken")
    with pytest.raises(RedisConnectionError, match="No connection available") as info:
        await client.ping()
    assert isinstance(info.value.__cause__, TimeoutError)
    with pytest.raises(PoolExhaustedError), translate_redis_errors():
        await client.ping()
    assert await holder is None


@pytest.mark.fault
async def test_killed_connections_are_retried_and_counted(
    redis_server: RedisServer, manager_factory: Callable[..., CacheManager]
) -> None:
    client_name = f"kill-{unique_name()}"
    manager = manager_factory(redis_server.url, 2, socket_timeout=2.0, client_name=client_name)
    client = manager.get_connection()
    admin = redis_async.Redis.from_url(redis_server.url)
    try:
        before = retries_of(manager.name)
        # Kill our connection while a command waits on it: redis-py's Retry
        # reconnects and re-sends, the caller sees the answer.
        waiting = asyncio.ensure_future(client.blpop(["jobs"], 1.5))

        async def blocked() -> bool:
            clients = await admin.client_list()
            return any(c["name"] == client_name and c["cmd"] == "blpop" for c in clients)

        await eventually(blocked)
        for c in await admin.client_list():
            if c["name"] == client_name:
                await admin.client_kill_filter(_id=c["id"])
        await eventually(blocked)  # the retried BLPOP is waiting again
        await admin.rpush("jobs", "job-1")
        assert await waiting == (b"jobs", b"job-1")
        assert retries_of(manager.name) >= before + 1

        # Idle connections killed between calls: the next call still succeeds.
        for c in await admin.client_list():
            if c["name"] == client_name:
                await admin.client_kill_filter(_id=c["id"])
        assert await client.ping() is True
    finally:
        await admin.aclose()


@pytest.mark.fault
async def test_a_frozen_server_fails_a_command_with_a_timeout_not_a_hang(
    redis_server: RedisServer, manager_factory: Callable[..., CacheManager]
) -> None:
    manager = manager_factory(redis_server.url)
    client = manager.get_connection()
    await client.ping()
    redis_server.stop()
    try:
        async with asyncio.timeout(HANG_GUARD):
            with pytest.raises(CacheTimeoutError), translate_redis_errors():
                await client.get("k")
    finally:
        redis_server.cont()
    assert await client.ping() is True


# -- health -------------------------------------------------------------------


async def test_health_check_is_true_on_a_live_server_and_reports_the_server(
    redis_url: str, manager_factory: Callable[..., CacheManager]
) -> None:
    clock = FakeClock()
    manager = manager_factory(redis_url, clock=clock, wall_clock=clock.now)
    assert manager.status().healthy is False  # not checked yet
    assert await manager.health_check() is True
    status = manager.status()
    assert status.healthy is True
    assert status.consecutive_failures == 0
    assert status.last_error is None
    assert status.last_ping_latency == 0.0  # the fake clock did not move
    assert status.since == clock.wall
    assert status.server_version is not None
    assert status.server_version[0].isdigit()
    assert status.role == "master"


async def test_health_check_is_false_on_a_closed_port_without_raising(
    manager_factory: Callable[..., CacheManager],
) -> None:
    manager = manager_factory(f"redis://127.0.0.1:{free_port()}/0")
    async with asyncio.timeout(HANG_GUARD):
        assert await manager.health_check() is False
        assert await manager.health_check() is False
    status = manager.status()
    assert status.healthy is False
    assert status.consecutive_failures == 2
    assert status.last_error is not None
    assert status.last_error.startswith("CacheConnectionError")


@pytest.mark.fault
async def test_health_follows_a_killed_then_restarted_server(
    redis_server: RedisServer,
    manager_factory: Callable[..., CacheManager],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    manager = manager_factory(redis_server.url, clock=clock, wall_clock=clock.now)
    changes: list[ManagerStatus] = []
    manager.add_health_listener(changes.append)
    caplog.set_level(logging.INFO, logger="runtime.cache.manager")
    assert await manager.health_check() is True

    await redis_server.kill()
    clock.jump(5)
    async with asyncio.timeout(HANG_GUARD):
        assert await manager.health_check() is False
        assert await manager.health_check() is False
    down = manager.status()
    assert down.consecutive_failures == 2
    assert down.last_error is not None
    assert down.last_error.startswith("CacheConnectionError")
    assert down.since == clock.wall

    await redis_server.restart()
    clock.jump(5)
    assert await manager.health_check() is True
    up = manager.status()
    assert (up.healthy, up.consecutive_failures, up.last_error) == (True, 0, None)
    assert up.since == clock.wall
    assert [s.healthy for s in changes] == [True, False, True]
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.endswith("manager")]
    assert [level for level, _ in lines] == [logging.INFO, logging.WARNING, logging.INFO]
    assert "unhealthy" in lines[1][1]


@pytest.mark.fault
async def test_health_check_on_a_frozen_server_times_out_then_recovers(
    redis_server: RedisServer, manager_factory: Callable[..., CacheManager]
) -> None:
    manager = manager_factory(redis_server.url, health_check_timeout=0.05)
    assert await manager.health_check() is True
    redis_server.stop()
    try:
        async with asyncio.timeout(HANG_GUARD):
            assert await manager.health_check() is False  # live connection, no reply
            assert await manager.health_check() is False  # fresh connection, no handshake
        status = manager.status()
        assert status.consecutive_failures == 2
        assert status.last_error is not None
        assert status.last_error.startswith("CacheTimeoutError")
    finally:
        redis_server.cont()
    # The timed-out connection was discarded: no late PONG is mistaken for an answer.
    assert await manager.health_check() is True
    assert manager.status().consecutive_failures == 0


async def test_health_check_uses_its_own_connection_not_the_saturated_pool(
    redis_server: RedisServer, manager_factory: Callable[..., CacheManager]
) -> None:
    manager = manager_factory(redis_server.url, 2, socket_timeout=2.0, pool_timeout=0.02)
    client = manager.get_connection()
    holders = [asyncio.ensure_future(client.blpop(["q"], 0.5)) for _ in range(2)]
    await wait_for(lambda: manager.status().connections_in_use == 2, "pool saturated")
    assert await manager.health_check() is True
    assert manager.status().connections_in_use == 2  # it took none of them
    assert await asyncio.gather(*holders) == [None, None]


@pytest.mark.fault
async def test_monitor_detects_failure_and_recovery_and_stops_on_close(
    redis_server: RedisServer, manager_factory: Callable[..., CacheManager]
) -> None:
    changes: list[bool] = []
    manager = manager_factory(redis_server.url, monitor_interval=0.01)
    manager.add_health_listener(lambda status: changes.append(status.healthy))
    async with manager:
        async with asyncio.timeout(HANG_GUARD):
            await manager.wait_healthy()
        await redis_server.kill()
        await wait_for(lambda: changes[-1:] == [False], "monitor saw the failure")
        await redis_server.restart()
        async with asyncio.timeout(HANG_GUARD):
            await manager.wait_healthy()
    assert changes == [True, False, True]
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_failing_listener_is_logged_and_others_still_run(
    redis_url: str,
    manager_factory: Callable[..., CacheManager],
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = manager_factory(redis_url)
    told: list[bool] = []

    def broken(status: ManagerStatus) -> None:
        raise RuntimeError("listener bug")

    manager.add_health_listener(broken)
    remove = manager.add_health_listener(lambda s: told.append(s.healthy))
    assert await manager.health_check() is True
    assert told == [True]
    assert any("listener" in r.getMessage() and r.exc_info for r in caplog.records)
    remove()
    assert told == [True]


# -- the password -------------------------------------------------------------


async def test_password_appears_nowhere(
    redis_server_factory: RedisServerFactory,
    manager_factory: Callable[..., CacheManager],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await redis_server_factory(password=PASSWORD)
    url = f"redis://default:{PASSWORD}@127.0.0.1:{server.port}/0"
    manager = manager_factory(url)
    assert await manager.health_check() is True
    assert await manager.get_connection().ping() is True
    wrong = manager_factory(f"redis://default:{PASSWORD}-wrong@127.0.0.1:{server.port}/0")
    closed = manager_factory(f"redis://default:{PASSWORD}@127.0.0.1:{free_port()}/0")
    texts = [repr(manager), str(manager.status()), manager.url]
    for other in (wrong, closed):
        assert await other.health_check() is False
        texts += [repr(other), str(other.status())]
        with pytest.raises(CacheUnavailableError) as info, translate_redis_errors():
            await other.get_connection().ping()
        texts += [str(info.value), repr(info.value), str(info.value.__cause__)]
    with pytest.raises(ConfigurationError) as bad:
        CacheManager(f"http://default:{PASSWORD}@127.0.0.1:1/0")
    texts.append(str(bad.value))
    texts += [r.getMessage() for r in caplog.records]
    assert "***" in manager.url
    assert any("unhealthy" in t for t in texts)  # the failures were logged
    assert not [t for t in texts if PASSWORD in t]


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("redis://user:pw@h:1/2") == "redis://user:***@h:1/2"
    assert redact_url("rediss://:pw@h:1/0") == "rediss://:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    assert redact_url("unix://u:pw@/tmp/r.sock?db=1") == "unix://u:***@/tmp/r.sock?db=1"


# -- URL forms and options ----------------------------------------------------


async def test_unix_socket_url_works(
    redis_server_factory: RedisServerFactory, manager_factory: Callable[..., CacheManager]
) -> None:
    server = await redis_server_factory(unix_socket=True)
    assert server.url.startswith("unix://")
    manager = manager_factory(server.url)
    client = manager.get_connection()
    assert client.connection_pool.connection_class is UnixDomainSocketConnection
    await client.set("k", "v")
    assert await client.get("k") == b"v"
    assert await manager.health_check() is True


def test_rediss_url_takes_tls_options() -> None:
    manager = CacheManager(
        "rediss://user:pw@127.0.0.1:6380/2",
        ssl_ca_certs="/etc/ssl/ca.pem",
        ssl_certfile="/etc/ssl/client.pem",
        ssl_keyfile="/etc/ssl/client.key",
        ssl_cert_reqs="required",
    )
    pool = manager.get_connection().connection_pool
    assert pool.connection_class is SSLConnection
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/ssl/ca.pem"
    assert pool.connection_kwargs["db"] == 2
    assert manager.url == "rediss://user:***@127.0.0.1:6380/2"


def test_options_take_timedelta_and_bound_the_call_duration() -> None:
    manager = CacheManager(
        "redis://127.0.0.1:6379/0",
        socket_timeout=timedelta(milliseconds=200),
        connect_timeout=0.1,
        pool_timeout=timedelta(milliseconds=50),
        retries=2,
        backoff_cap=0.01,
    )
    assert manager.max_call_duration == pytest.approx(0.05 + 3 * 0.3 + 2 * 0.01)
    pool = manager.get_connection().connection_pool
    assert pool.connection_kwargs["socket_timeout"] == pytest.approx(0.2)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/0",
        "redis://127.0.0.1:99999/0",
        "redis://127.0.0.1:6379/zero",
        "redis:///0",
        "unix://",
        "redis://127.0.0.1:6379/0?socket_timeout=30",
        "not a url",
    ],
)
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError, match="redis_url"):
        CacheManager(url)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": True}, "pool_size"),
        ({"socket_timeout": -1}, "socket_timeout"),
        ({"connect_timeout": float("nan")}, "connect_timeout"),
        ({"pool_timeout": 0}, "pool_timeout"),
        ({"retries": -1}, "retries"),
        ({"backoff_base": 0.1, "backoff_cap": 0.01}, "backoff_cap"),
        ({"health_check_timeout": "1"}, "health_check_timeout"),
        ({"monitor_interval": 0}, "monitor_interval"),
        ({"ssl_cert_reqs": "maybe"}, "ssl_cert_reqs"),
        ({"ssl_ca_certs": "/ca.pem"}, "ssl_ca_certs"),  # on a redis:// URL
        ({"client_name": "two words"}, "client_name"),
        ({"socket_timeout": 4.0, "retries": 3}, "max_call_duration"),
    ],
)
def test_bad_options_are_configuration_errors_naming_them(
    options: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        CacheManager("redis://127.0.0.1:6379/0", **options)  # type: ignore[arg-type]


# -- close --------------------------------------------------------------------


async def test_close_is_idempotent_and_leaves_no_task_or_connection(
    redis_server: RedisServer,
) -> None:
    client_name = f"close-{unique_name()}"
    manager = CacheManager(
        redis_server.url, 4, client_name=client_name, monitor_interval=0.01, name=unique_name()
    )
    async with manager:
        client = manager.get_connection()
        await asyncio.gather(*(client.ping() for _ in range(4)))
        await manager.wait_healthy()
        assert len(asyncio.all_tasks()) == 2  # this test and the monitor
        assert "healthy" in repr(manager)
    await manager.close()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    status = manager.status()
    assert (status.connections_in_use, status.connections_idle) == (0, 0)
    assert "closed" in repr(manager)
    with pytest.raises(CacheConnectionError):
        manager.get_connection()
    assert await manager.health_check() is False

    async def ours() -> int:
        names = await client_names(redis_server.url)
        return sum(n in (client_name, f"{client_name}-health") for n in names)

    async def none_left() -> bool:
        return await ours() == 0

    await eventually(none_left)  # the server notices closed sockets asynchronously
    # A client kept past close() cannot open a connection again.
    with pytest.raises(PoolExhaustedError), translate_redis_errors():
        await client.ping()
    assert await ours() == 0
