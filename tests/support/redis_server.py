"""A private ``redis-server`` for fault tests: start, kill, freeze, thaw, restart.

Tests that break Redis never touch the shared server; they start their own::

    async with RedisServer(directory=tmp_path) as server:
        client = redis.asyncio.Redis.from_url(server.url)
        server.stop()          # SIGSTOP: the server is frozen, sockets stay open
        server.cont()          # SIGCONT
        await server.kill()    # SIGKILL: connections reset, port closed
        await server.restart() # a new process on the same port

Contract:

- the server binds ``127.0.0.1`` on a free port (or only a unix socket), keeps
  no data on disk (``--save "" --appendonly no``) and writes its log into its
  own directory;
- ``start()`` returns once the server answers PING (``NOAUTH`` counts: the
  server is up) or raises ``RedisServerError`` with the tail of its log;
- leaving the context, ``close()`` or the fixtures always clean up: SIGCONT
  (a frozen process cannot die cleanly otherwise) then SIGKILL and reap,
  even when the test failed. A ``weakref.finalize`` kills the process if the
  object is dropped without ``close()``.

Fixtures (import them into ``conftest.py``; the functions register under the
names ``redis_server`` and ``redis_server_factory``)::

    from support.redis_server import (  # noqa: F401 - fixtures
        redis_server_factory_fixture,
        redis_server_fixture,
    )

``redis_server`` is one default server; ``redis_server_factory`` is an async
callable taking the ``RedisServer`` options, for servers with extra args.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol
from urllib.parse import quote

import pytest

__all__ = [
    "RedisServer",
    "RedisServerError",
    "RedisServerFactory",
    "free_port",
    "redis_server_factory_fixture",
    "redis_server_fixture",
]

_HOST = "127.0.0.1"


class RedisServerError(RuntimeError):
    """The private redis-server did not start or did not obey a signal."""


def free_port(*, cluster_bus: bool = False) -> int:
    """A loopback TCP port that was free a moment ago.

    With ``cluster_bus`` the port is at most 55535 and port + 10000 (the Cluster
    bus) was free too: redis-server refuses cluster mode on higher ports.
    """
    if not cluster_bus:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((_HOST, 0))
            port: int = sock.getsockname()[1]
            return port
    rng = random.Random()
    for _ in range(200):
        candidate = rng.randint(20000, 55535)
        if _bindable(candidate) and _bindable(candidate + 10000):
            return candidate
    raise RedisServerError("no free port pair for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
        return True


def _process_state(pid: int) -> str | None:
    """The state letter of ``pid`` from /proc (``T`` = stopped), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0]


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Thaw, kill and reap ``process``; safe to call twice (finalizer and close)."""
    if process.poll() is None:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                process.send_signal(sig)
            except ProcessLookupError:  # pragma: no cover - exited in between
                break
        process.wait(timeout=10)


class RedisServer:
    """One private redis-server process; see the module docstring for the contract.

    ``extra_args`` are passed verbatim (``["--maxmemory", "1mb"]``);
    ``password`` adds ``--requirepass`` and puts the password in ``url``;
    ``unix_socket=True`` listens on a socket in ``directory`` only (no TCP).
    """

    def __init__(
        self,
        *,
        extra_args: Sequence[str] = (),
        password: str | None = None,
        unix_socket: bool = False,
        directory: Path | None = None,
        executable: str = "redis-server",
        start_timeout: float = 10.0,
        cluster_bus: bool = False,
    ) -> None:
        found = shutil.which(executable)
        if found is None:
            raise RedisServerError(f"{executable!r} is not on PATH")
        self._executable = found
        self._extra_args = tuple(extra_args)
        self._password = password
        self._owns_directory = directory is None
        self._directory = (
            Path(tempfile.mkdtemp(prefix="redis-")) if directory is None else directory
        )
        self._unix_path: Path | None = self._directory / "redis.sock" if unix_socket else None
        self._start_timeout = start_timeout
        self._port = 0
        self._cluster_bus = cluster_bus
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], RedisServer] | None = None

    # -- facts --------------------------------------------------------------

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return _HOST

    @property
    def port(self) -> int:
        """The TCP port (0 for a unix-socket-only server); kept across ``restart()``."""
        return self._port

    @property
    def unix_path(self) -> Path | None:
        """The unix socket path, or None for a TCP server."""
        return self._unix_path

    @property
    def directory(self) -> Path:
        """The server's working directory (log file ``redis.log``)."""
        return self._directory

    @property
    def pid(self) -> int:
        """The process id of the running server."""
        return self._running().pid

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:port/0`` or ``unix://path?db=0``."""
        auth = f":{quote(self._password, safe='')}@" if self._password else ""
        if self._unix_path is not None:
            return f"unix://{auth}{self._unix_path}?db=0"
        return f"redis://{auth}{_HOST}:{self._port}/0"

    @property
    def running(self) -> bool:
        """True while the process exists (stopped counts as running)."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Start the server and wait until it answers; raises ``RedisServerError``."""
        if self.running:
            raise RedisServerError("already running")
        # The kernel may hand out the "free" port to someone else before the
        # server binds it; a fresh port fixes that, a restart keeps its port.
        attempts = 1 if self._port or self._unix_path else 3
        for attempt in range(attempts):
            if not self._unix_path and not self._port:
                self._port = free_port(cluster_bus=self._cluster_bus)
            try:
                await self._spawn_and_wait()
                return
            except RedisServerError:
                self._kill_now()
                if attempt == attempts - 1:
                    raise
                self._port = 0

    async def kill(self) -> None:
        """SIGKILL the server and reap it: connections reset, port refused."""
        self._kill_now()

    def stop(self) -> None:
        """SIGSTOP: the server is frozen; its sockets accept but never answer."""
        process = self._running()
        process.send_signal(signal.SIGSTOP)
        self._wait_state(process.pid, stopped=True)

    def cont(self) -> None:
        """SIGCONT: a frozen server resumes."""
        process = self._running()
        process.send_signal(signal.SIGCONT)
        self._wait_state(process.pid, stopped=False)

    async def restart(self) -> None:
        """Kill the process (if any) and start a new one on the same port or socket."""
        self._kill_now()
        await self.start()

    async def close(self) -> None:
        """Thaw, kill and reap the process and remove our directory; idempotent."""
        self._kill_now()
        if self._owns_directory:
            shutil.rmtree(self._directory, ignore_errors=True)

    async def __aenter__(self) -> RedisServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        where = str(self._unix_path) if self._unix_path else f"{_HOST}:{self._port}"
        pid = self._process.pid if self.running and self._process else None
        return f"<RedisServer {where} pid={pid}>"

    # -- internals ----------------------------------------------------------

    def _command(self) -> list[str]:
        args = [
            self._executable,
            "--bind",
            _HOST,
            "--port",
            "0" if self._unix_path else str(self._port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self._directory),
            "--logfile",
            str(self._directory / "redis.log"),
        ]
        if self._unix_path is not None:
            args += ["--unixsocket", str(self._unix_path), "--unixsocketperm", "700"]
        if self._password is not None:
            args += ["--requirepass", self._password]
        return args + list(self._extra_args)

    async def _spawn_and_wait(self) -> None:
        # A plain Popen (not asyncio's): the finalizer must reap it without a loop.
        self._process = subprocess.Popen(  # noqa: ASYNC220
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C of the test run does not hit it twice
        )
        self._finalizer = weakref.finalize(self, _reap, self._process)
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisServerError(f"redis-server exited: {self._log_tail()}")
            if await self._answers_ping():
                return
            await asyncio.sleep(0.01)
        raise RedisServerError(f"redis-server did not answer in time: {self._log_tail()}")

    async def _answers_ping(self) -> bool:
        """True once *our* server answers: PING, then ``INFO server`` names our pid
        (a PING alone could reach another process that took the "free" port)."""
        try:
            async with asyncio.timeout(1.0):
                if self._unix_path is not None:
                    reader, writer = await asyncio.open_unix_connection(str(self._unix_path))
                else:
                    reader, writer = await asyncio.open_connection(_HOST, self._port)
                try:
                    writer.write(b"PING\r\n")
                    reply = await reader.readline()
                    if reply.startswith(b"-NOAUTH"):
                        return True  # password-protected: cannot ask, trust the PING
                    if not reply.startswith(b"+PONG"):
                        return False
                    writer.write(b"INFO server\r\n")
                    header = await reader.readline()
                    body = await reader.readexactly(int(header[1:]) + 2)
                finally:
                    writer.close()
                    await writer.wait_closed()
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            return False
        return f"process_id:{self._running().pid}\r\n".encode() in body

    def _kill_now(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs _reap once, then detaches
            self._finalizer = None
        self._process = None

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            raise RedisServerError("redis-server is not running")
        return self._process

    def _wait_state(self, pid: int, *, stopped: bool) -> None:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if (_process_state(pid) == "T") == stopped:
                return
            time.sleep(0.001)
        raise RedisServerError(f"pid {pid} did not {'stop' if stopped else 'continue'}")

    def _log_tail(self, lines: int = 10) -> str:
        try:
            text = (self._directory / "redis.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])


class RedisServerFactory(Protocol):
    """Start a private server with ``RedisServer``'s options; cleaned up by the fixture."""

    async def __call__(
        self,
        *,
        extra_args: Sequence[str] = (),
        password: str | None = None,
        unix_socket: bool = False,
    ) -> RedisServer: ...


@pytest.fixture(name="redis_server_factory")
async def redis_server_factory_fixture(tmp_path: Path) -> AsyncIterator[RedisServerFactory]:
    """A factory of private servers; every server it started is killed afterwards."""
    started: list[RedisServer] = []

    async def start(
        *,
        extra_args: Sequence[str] = (),
        password: str | None = None,
        unix_socket: bool = False,
    ) -> RedisServer:
        # A short directory: unix socket paths are limited to ~107 bytes.
        directory = Path(tempfile.mkdtemp(prefix="rs-", dir=_short_tmp(tmp_path)))
        server = RedisServer(
            extra_args=extra_args, password=password, unix_socket=unix_socket, directory=directory
        )
        started.append(server)
        await server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            await server.close()
            shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(name="redis_server")
async def redis_server_fixture(redis_server_factory: RedisServerFactory) -> RedisServer:
    """One private redis-server with default options."""
    return await redis_server_factory()


def _short_tmp(tmp_path: Path) -> Path:
    # pytest's tmp_path can exceed the unix socket path limit; fall back to /tmp.
    return tmp_path if len(str(tmp_path)) < 70 else Path(tempfile.gettempdir())
