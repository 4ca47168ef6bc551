"""The private redis-server harness: start, freeze, thaw, kill, restart, clean up."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import redis.asyncio as redis_async
from redis.exceptions import AuthenticationError, ConnectionError, TimeoutError

from support.redis_server import (
    RedisServer,
    RedisServerFactory,
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def ping(url: str, wait: float = 0.2) -> bool:
    client = redis_async.Redis.from_url(
        url, socket_timeout=wait, socket_connect_timeout=wait, retry_on_error=[]
    )
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


@pytest.mark.fault
async def test_server_lifecycle_signals_and_cleanup(tmp_path: Path) -> None:
    server = RedisServer(directory=tmp_path, extra_args=["--maxmemory", "2mb"])
    async with server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert await ping(server.url)
        first_pid = server.pid

        server.stop()
        with pytest.raises(TimeoutError):
            await ping(server.url)
        server.cont()
        assert await ping(server.url)

        await server.kill()
        assert not alive(first_pid)
        with pytest.raises(ConnectionError):
            await ping(server.url)

        port = server.port
        await server.restart()
        assert (server.port, await ping(server.url)) == (port, True)
        assert server.pid != first_pid
        last_pid = server.pid
        server.stop()  # left frozen on purpose: exit must still kill it
    assert not alive(last_pid)
    assert not server.running


async def test_factory_cleans_up_and_supports_password_and_unix_socket(
    redis_server_factory: RedisServerFactory,
) -> None:
    secured = await redis_server_factory(password="pw-1")
    assert await ping(secured.url)
    with pytest.raises(AuthenticationError):
        await ping(secured.url.replace("pw-1", "wrong"))
    unix = await redis_server_factory(unix_socket=True)
    assert unix.port == 0
    assert unix.unix_path is not None
    assert await ping(unix.url)
    await asyncio.sleep(0)


async def test_start_failure_reports_the_log(tmp_path: Path) -> None:
    server = RedisServer(directory=tmp_path, extra_args=["--no-such-option", "1"])
    with pytest.raises(RuntimeError, match="exited"):
        await server.start()
    assert not server.running
