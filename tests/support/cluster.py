"""A private Redis Cluster: three primaries and three replicas on free loopback ports.

Created with ``redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes``
and ready once every node reports ``cluster_state:ok``. ``cluster-node-timeout``
is 1000 ms so a killed primary's replica takes over within seconds.
:meth:`ClusterDeployment.close` kills every node and removes the directories,
also when the test failed.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis_async

from support.deployment import Deployment
from support.redis_server import RedisServer, RedisServerError
from support.sentinel import wait_for

__all__ = ["ClusterDeployment", "cluster_deployment_fixture"]

_NODE_ARGS = (
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    "1000",
    "--repl-diskless-sync",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
)


async def _node(port: int, *args: str) -> object:
    client = redis_async.Redis(host="127.0.0.1", port=port, socket_timeout=2.0)
    try:
        return await client.execute_command(*args)
    finally:
        await client.aclose()


class ClusterDeployment(Deployment):
    """Six nodes in one cluster; ``url`` is the manager URL (all nodes as startup nodes)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.nodes = [
            RedisServer(extra_args=_NODE_ARGS, directory=self._dir(f"node{i}"), cluster_bus=True)
            for i in range(6)
        ]

    @property
    def servers(self) -> list[RedisServer]:
        return list(self.nodes)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def running(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.running]

    async def start(self) -> None:
        await asyncio.gather(*(node.start() for node in self.nodes))
        process = await asyncio.create_subprocess_exec(
            "redis-cli",
            "--cluster",
            "create",
            *(f"127.0.0.1:{node.port}" for node in self.nodes),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RedisServerError(f"cluster create failed: {output.decode(errors='replace')}")
        await self.wait_ok()

    async def wait_ok(self, deadline: float = 30.0) -> None:
        """Every running node says ``cluster_state:ok`` and sees three primaries."""

        async def ok() -> bool:
            for node in self.running():
                info = await _node(node.port, "CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text:
                    return False
                slots = await _node(node.port, "CLUSTER", "SLOTS")
                assert isinstance(slots, list)
                masters = {tuple(entry[2][:2]) for entry in slots}
                if any(int(m[1]) not in {n.port for n in self.running()} for m in masters):
                    return False
            return True

        await wait_for(ok, "cluster_state:ok on every node", deadline)

    async def primary_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now."""
        slot = await _node(self.running()[0].port, "CLUSTER", "KEYSLOT", key)
        slots = await _node(self.running()[0].port, "CLUSTER", "SLOTS")
        assert isinstance(slots, list)
        for start, end, primary, *_ in slots:
            if int(start) <= int(slot) <= int(end):  # type: ignore[call-overload]
                port = int(primary[1])
                return next(n for n in self.nodes if n.port == port)
        raise RedisServerError(f"no node serves slot {slot}")

    async def node_id(self, node: RedisServer) -> str:
        reply = await _node(node.port, "CLUSTER", "MYID")
        return reply.decode() if isinstance(reply, bytes) else str(reply)


@pytest.fixture(name="cluster_deployment")
async def cluster_deployment_fixture() -> AsyncIterator[ClusterDeployment]:
    """A fresh six-node cluster, always torn down."""
    root = Path(tempfile.mkdtemp(prefix="rclu-"))
    async with ClusterDeployment(root) as deployment:
        yield deployment
