"""A private Redis Sentinel deployment: one primary, one replica, three sentinels.

Every process listens on a free loopback port and is killed (and its
directory removed) by :meth:`SentinelDeployment.close`, which the fixture
calls even when the test fails. Failover is fast: ``down-after-milliseconds``
500 and a short ``failover-timeout``.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as redis_async

from support.deployment import Deployment
from support.redis_server import RedisServer, RedisServerError

__all__ = [
    "SERVICE",
    "SentinelDeployment",
    "SentinelServer",
    "sentinel_deployment_fixture",
    "wait_for",
]

SERVICE = "mymaster"
_FAST_REPLICATION = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")


class SentinelServer(RedisServer):
    """``redis-server <conf> --sentinel`` on a free port, monitoring ``primary_port``."""

    def __init__(self, *, primary_port: int, directory: Path) -> None:
        super().__init__(directory=directory)
        self._primary_port = primary_port

    def _command(self) -> list[str]:
        conf = self.directory / "sentinel.conf"
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f"dir {self.directory}",
                    f"logfile {self.directory / 'redis.log'}",
                    f"sentinel monitor {SERVICE} 127.0.0.1 {self._primary_port} 2",
                    f"sentinel down-after-milliseconds {SERVICE} 500",
                    f"sentinel failover-timeout {SERVICE} 2000",
                    f"sentinel parallel-syncs {SERVICE} 1",
                    "",
                ]
            )
        )
        return [self._executable, str(conf), "--sentinel"]


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, deadline: float = 30.0) -> None:
    """Poll the async predicate ``check()`` until it is true; fail after ``deadline`` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    last: BaseException | None = None
    while loop.time() < end:
        try:
            if await check():
                return
        except Exception as exc:  # the deployment is still settling
            last = exc
        await asyncio.sleep(0.05)
    raise RedisServerError(f"{what}: not reached within {deadline}s (last error: {last!r})")


async def _info(port: int, section: str) -> dict[str, object]:
    client = redis_async.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
    try:
        info: dict[str, object] = await client.info(section)
        return info
    finally:
        await client.aclose()


class SentinelDeployment(Deployment):
    """Primary, replica and three sentinels; ``url`` is the manager URL."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.primary = RedisServer(extra_args=_FAST_REPLICATION, directory=self._dir("primary"))
        self.replica: RedisServer | None = None
        self.sentinels: list[SentinelServer] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    @property
    def servers(self) -> list[RedisServer]:
        data = [self.primary] + ([self.replica] if self.replica is not None else [])
        return data + list(self.sentinels)

    async def start(self) -> None:
        await self.primary.start()
        self.replica = RedisServer(
            extra_args=(*_FAST_REPLICATION, "--replicaof", "127.0.0.1", str(self.primary.port)),
            directory=self._dir("replica"),
        )
        await self.replica.start()
        replica_port = self.replica.port

        async def replica_synced() -> bool:
            return (await _info(replica_port, "replication")).get("master_link_status") == "up"

        await wait_for(replica_synced, "replica in sync")
        for index in range(3):
            sentinel = SentinelServer(
                primary_port=self.primary.port, directory=self._dir(f"sentinel{index}")
            )
            self.sentinels.append(sentinel)
            await sentinel.start()
        await self.wait_settled(self.primary.port)

    async def master_port(self, sentinel: SentinelServer | None = None) -> int:
        """The primary's port as ``sentinel`` (default: the first) reports it."""
        port = (sentinel or self.sentinels[0]).port
        client = redis_async.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
        try:
            address = await client.sentinel_get_master_addr_by_name(SERVICE)
        finally:
            await client.aclose()
        return int(address[1])

    async def wait_settled(self, primary_port: int) -> None:
        """Every sentinel names ``primary_port`` as primary and knows its two peers."""

        async def settled() -> bool:
            for sentinel in self.sentinels:
                client = redis_async.Redis(host="127.0.0.1", port=sentinel.port, socket_timeout=1.0)
                try:
                    state = await client.sentinel_master(SERVICE)
                finally:
                    await client.aclose()
                if int(state["port"]) != primary_port or state["num-other-sentinels"] < 2:
                    return False
                if state["is_sdown"] or state["is_odown"]:
                    return False
            return True

        await wait_for(settled, f"sentinels agree on primary {primary_port}")


@pytest.fixture(name="sentinel_deployment")
async def sentinel_deployment_fixture() -> AsyncIterator[SentinelDeployment]:
    """A fresh Sentinel deployment, always torn down."""
    root = Path(tempfile.mkdtemp(prefix="rsent-"))
    async with SentinelDeployment(root) as deployment:
        yield deployment
