"""The fault-injection proxy against the shared Redis (db 15): each fault does what it says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis_async
from redis import exceptions as redis_exc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from support import fault_proxy
from support.fault_proxy import Direction, FaultProxy

VALUE = b"x" * 10_000  # larger than the reset cut, one or a few chunks


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[FaultProxy]:
    upstream = urlsplit(redis_url)
    assert upstream.hostname is not None
    assert upstream.port is not None
    async with FaultProxy(upstream.hostname, upstream.port) as running:
        yield running


@pytest.fixture
async def direct(redis_url: str) -> AsyncIterator[redis_async.Redis]:
    client = redis_async.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def proxied(proxy: FaultProxy) -> AsyncIterator[redis_async.Redis]:
    """A client through the proxy: short socket timeout, no retries, one connection."""
    client = redis_async.Redis.from_url(
        proxy.url(15),
        socket_timeout=0.5,
        socket_connect_timeout=2.0,
        retry=Retry(NoBackoff(), 0),
        max_connections=1,
    )
    assert await client.ping() is True  # connected while the proxy passes through
    yield client
    await client.aclose()


async def wait_until(condition: Callable[[], bool], *, deadline: float = 10.0) -> None:
    """Yield to the loop until ``condition()`` holds; fail after ``deadline`` seconds."""
    async with asyncio.timeout(deadline):
        # The conditions are counters of another object: polling is the simple honest wait.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def test_all_names_exist() -> None:
    assert all(hasattr(fault_proxy, name) for name in fault_proxy.__all__)


async def test_port_needs_a_started_proxy() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = FaultProxy("127.0.0.1", 6379).port


async def test_url_points_at_the_loopback_port(proxy: FaultProxy) -> None:
    assert proxy.url(15) == f"redis://127.0.0.1:{proxy.port}/15"


async def test_pass_through_round_trips(
    proxied: redis_async.Redis, direct: redis_async.Redis, proxy: FaultProxy
) -> None:
    assert await proxied.set("proxy:k", VALUE) is True
    assert await direct.get("proxy:k") == VALUE
    assert await proxied.get("proxy:k") == VALUE
    assert proxy.bytes_forwarded[Direction.REPLY] >= len(VALUE)
    assert proxy.bytes_forwarded[Direction.REQUEST] >= len(VALUE)


async def test_black_hole_makes_a_call_time_out_and_swallows_the_request(
    proxied: redis_async.Redis, direct: redis_async.Redis, proxy: FaultProxy
) -> None:
    proxy.black_hole()
    with pytest.raises(redis_exc.TimeoutError):
        await proxied.set("proxy:k", b"v")
    assert await direct.exists("proxy:k") == 0  # the request never reached Redis
    assert proxy.bytes_swallowed[Direction.REQUEST] > 0
    proxy.heal()
    assert await proxied.set("proxy:k", b"v") is True  # a fresh connection works again
    assert await direct.get("proxy:k") == b"v"


async def test_black_hole_keeps_accepting_and_holding_connections(proxy: FaultProxy) -> None:
    proxy.black_hole()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        await wait_until(lambda: proxy.bytes_swallowed[Direction.REQUEST] == 6)
        assert proxy.open_connections == 1
        assert not reader.at_eof()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_reset_mid_reply_gives_a_connection_error_once(
    proxied: redis_async.Redis, direct: redis_async.Redis, proxy: FaultProxy
) -> None:
    await direct.set("proxy:k", VALUE)
    proxy.reset_mid_reply(after_bytes=5)
    with pytest.raises(redis_exc.ConnectionError, match="reset by peer"):  # an RST, not a FIN
        await proxied.get("proxy:k")
    assert await proxied.get("proxy:k") == VALUE  # one shot: the next connection is clean


async def test_stalled_reply_is_delivered_on_resume(
    direct: redis_async.Redis, proxy: FaultProxy
) -> None:
    await direct.set("proxy:k", b"held")
    # A generous socket timeout: the stall must end by resume(), not by the client.
    patient = redis_async.Redis.from_url(proxy.url(15), socket_timeout=30.0)
    try:
        assert await patient.ping() is True
        proxy.stall_reply()

        async def read() -> bytes | str | None:
            return await patient.get("proxy:k")

        pending = asyncio.create_task(read())
        await wait_until(lambda: proxy.bytes_held > 0)
        assert not pending.done()
        proxy.resume()
        async with asyncio.timeout(10):
            assert await pending == b"held"
        assert proxy.bytes_held == 0
    finally:
        await patient.aclose()


async def test_latency_longer_than_the_socket_timeout_times_out(
    proxied: redis_async.Redis, proxy: FaultProxy
) -> None:
    proxy.set_latency(2.0)  # four socket timeouts: the reply cannot arrive in time
    with pytest.raises(redis_exc.TimeoutError):
        await proxied.ping()
    proxy.heal()
    assert await proxied.ping() is True


async def test_request_latency_delays_but_delivers(
    proxied: redis_async.Redis, direct: redis_async.Redis, proxy: FaultProxy
) -> None:
    proxy.set_latency(0.01, direction=Direction.REQUEST)
    assert await proxied.set("proxy:k", b"late") is True
    assert await direct.get("proxy:k") == b"late"


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
async def test_bad_latency_is_refused(proxy: FaultProxy, bad: float) -> None:
    with pytest.raises(ValueError, match="latency"):
        proxy.set_latency(bad)


async def test_exit_closes_every_connection(redis_url: str) -> None:
    upstream = urlsplit(redis_url)
    assert upstream.hostname is not None
    assert upstream.port is not None
    async with FaultProxy(upstream.hostname, upstream.port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"PING\r\n")
        await writer.drain()
        assert await reader.readline() == b"+PONG\r\n"
        assert proxy.open_connections == 1
        port = proxy.port
    try:
        assert proxy.open_connections == 0
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # the proxy closed our connection
        with pytest.raises(OSError):  # and no longer listens
            await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()
        await writer.wait_closed()
