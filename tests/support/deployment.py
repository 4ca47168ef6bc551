"""The life cycle shared by multi-node test deployments (Sentinel, Cluster).

A deployment owns a root directory and its servers: ``async with`` starts them
and always stops them and removes the directory, also when starting fails.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType
from typing import Self

from support.redis_server import RedisServer

__all__ = ["Deployment"]


class Deployment:
    """Base of the deployments: subclasses provide ``servers`` and ``start()``."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _dir(self, name: str) -> Path:
        path = self._root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def servers(self) -> list[RedisServer]:
        raise NotImplementedError

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        for server in self.servers:
            await server.close()
        shutil.rmtree(self._root, ignore_errors=True)

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
