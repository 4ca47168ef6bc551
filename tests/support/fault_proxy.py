"""A fault-injection TCP proxy for tests: loopback only, asyncio.

``FaultProxy(host, port)`` listens on ``127.0.0.1`` on a free port and forwards
bytes both ways to the upstream. Faults are switched at run time and apply to
the reply direction (upstream -> client) unless a method says otherwise:

- ``set_latency(seconds)``: delay each chunk (``direction=`` picks a side);
- ``black_hole()``: keep accepting, forward nothing in either direction,
  keep every connection open (a hung server or a dropped route);
- ``reset_mid_reply(after_bytes)``: one shot; the next reply chunk is cut after
  ``after_bytes`` bytes and the client connection is reset (RST), then the
  proxy passes traffic through again;
- ``stall_reply()`` / ``resume()``: hold reply bytes, then deliver them in order;
- ``heal()``: back to plain pass-through (releases a stall).

Leaving the ``async with`` block stops listening and closes every connection
the proxy opened, on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import socket
import struct
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

__all__ = ["Direction", "FaultProxy"]

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024


class Direction(enum.Enum):
    """Which way the traffic flows through the proxy."""

    REPLY = "reply"  # upstream -> client
    REQUEST = "request"  # client -> upstream


@dataclass(slots=True)
class _Faults:
    latency: float = 0.0
    black_hole: bool = False
    resumed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.resumed.set()


@dataclass(slots=True, eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream_host:upstream_port`` with switchable faults."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._faults = {direction: _Faults() for direction in Direction}
        self._reset_after: int | None = None
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[_Connection] = set()
        self._errors: list[BaseException] = []
        self.connections_accepted = 0
        self.bytes_forwarded = dict.fromkeys(Direction, 0)
        self.bytes_swallowed = dict.fromkeys(Direction, 0)
        self.bytes_held = 0  # reply bytes read from upstream and held by a stall

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and close every connection on both sides.

        An unexpected error inside the proxy (a bug, not a network fault) is
        raised here as an exception group so that it fails the test.
        """
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._errors:
            errors, self._errors = self._errors, []
            raise BaseExceptionGroup("fault proxy failed", errors)

    @property
    def port(self) -> int:
        """The loopback port the proxy listens on."""
        if self._port is None:
            raise RuntimeError("FaultProxy is not started; use 'async with'")
        return self._port

    def url(self, db: int = 0) -> str:
        """A ``redis://`` URL that goes through the proxy."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def open_connections(self) -> int:
        """Client connections currently proxied."""
        return len(self._connections)

    # -- faults ----------------------------------------------------------------

    def set_latency(self, seconds: float, *, direction: Direction = Direction.REPLY) -> None:
        """Delay each chunk flowing in ``direction`` by ``seconds``."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"latency must be a finite non-negative number, got {seconds!r}")
        self._faults[direction].latency = seconds

    def black_hole(self) -> None:
        """Swallow all traffic both ways; connections stay open and new ones are accepted."""
        for faults in self._faults.values():
            faults.black_hole = True

    def reset_mid_reply(self, after_bytes: int) -> None:
        """Cut the next reply chunk after ``after_bytes`` bytes and reset that client (RST)."""
        if after_bytes < 0:
            raise ValueError(f"after_bytes must be >= 0, got {after_bytes!r}")
        self._reset_after = after_bytes

    def stall_reply(self) -> None:
        """Hold reply bytes until :meth:`resume` (or :meth:`heal`)."""
        self._faults[Direction.REPLY].resumed.clear()

    def resume(self) -> None:
        """Deliver the reply bytes held by :meth:`stall_reply`, in order."""
        self._faults[Direction.REPLY].resumed.set()

    def heal(self) -> None:
        """Plain pass-through again: no latency, no black hole, no pending reset, no stall."""
        for faults in self._faults.values():
            faults.latency = 0.0
            faults.black_hole = False
            faults.resumed.set()
        self._reset_after = None

    # -- forwarding ------------------------------------------------------------

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._errors.append(error)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(client=writer)
        self._connections.add(conn)
        try:
            up_reader, conn.upstream = await asyncio.open_connection(*self._upstream)
            pumps = [
                asyncio.create_task(self._pump(reader, conn.upstream, Direction.REQUEST, conn)),
                asyncio.create_task(self._pump(up_reader, writer, Direction.REPLY, conn)),
            ]
            try:
                # Either side ending (EOF, reset, abort) ends the connection.
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except OSError as exc:
            logger.debug("fault proxy: connection ended: %r", exc)
        finally:
            self._connections.discard(conn)
            writers = [conn.client] if conn.upstream is None else [conn.client, conn.upstream]
            # Close both at once, then wait: a cancellation while waiting for the
            # first must not leave the second open.
            for side in writers:
                if not side.is_closing():
                    side.close()
            for side in writers:
                await _close(side)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        direction: Direction,
        conn: _Connection,
    ) -> None:
        faults = self._faults[direction]
        while data := await source.read(_CHUNK):
            if direction is Direction.REPLY and not faults.resumed.is_set():
                self.bytes_held += len(data)
                try:
                    await faults.resumed.wait()
                finally:
                    self.bytes_held -= len(data)
            if faults.black_hole:
                self.bytes_swallowed[direction] += len(data)
                continue
            if direction is Direction.REPLY and self._reset_after is not None:
                cut, self._reset_after = self._reset_after, None
                sink.write(data[:cut])
                self.bytes_forwarded[direction] += min(cut, len(data))
                _reset(conn.client)
                return
            if faults.latency:
                await asyncio.sleep(faults.latency)
            sink.write(data)
            await sink.drain()
            self.bytes_forwarded[direction] += len(data)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with RST rather than FIN: SO_LINGER 0, then ``transport.abort()``."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    if not writer.is_closing():
        writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
