"""The ``runtime-cache`` command line, run as ``python -m runtime.cache`` in a subprocess.

Short runs on real services: the embedded redis-server and SQLite, PostgreSQL in a
temporary schema, the shared Redis (db 15) for ``inspect`` and ``health``. Every
run's JSON report is checked for its fields, and every redis-server the command
started must be gone afterwards. Speed is not asserted (figures are reported).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from runtime.cache.facade import TradingCache
from runtime.cache.fallback import FallbackHandler
from runtime.cache.manager import CacheManager
from runtime.cache.models import Family, KeySchema
from runtime.data import SqliteStore, build_universe
from runtime.domain import Order, OrderSide, OrderStatus, OrderType, Side
from support.redis_server import free_port

SHORT = ["--duration", "2", "--warmup", "0.5"]
SIDE = ["--side-duration", "0.5", "--throughput-duration", "0.5", "--throughput-tasks", "8"]
SMALL = ["--symbols", "10", "--quiet"]

REPORT_FIELDS = {
    "command", "started_at", "passed", "criteria", "targets", "parameters", "run", "versions",
    "server", "machine", "hit_rate", "fallbacks", "breaker", "errors", "stale_reads", "phases",
    "notes",
}  # fmt: skip
BENCH_PHASES = {"cache", "no_cache", "raw", "cache_32", "raw_32"}
OPERATION_FIELDS = {"count", "ops_per_s", "p50_us", "p90_us", "p99_us", "p99.9_us", "max_us"}


def run_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cache", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def redis_servers_in(directory: str) -> list[int]:
    """Pids of live redis-server processes whose command line names ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "redis-server" in cmdline and directory in cmdline:
                found.append(int(entry.name))
    return found


def check_report(report: dict[str, Any], phases: set[str]) -> None:
    assert set(report) >= REPORT_FIELDS
    assert set(report["phases"]) == phases
    for phase in report["phases"].values():
        assert set(phase["operations"]["snapshot"]) >= OPERATION_FIELDS
        assert phase["operations"]["snapshot"]["count"] > 0
    assert {"runtime-cache", "redis", "hiredis", "asyncpg", "aiosqlite", "python"} <= set(
        report["versions"]
    )
    assert {"cpu_count", "cpu_model", "memory_bytes", "os"} <= set(report["machine"])
    assert set(report["hit_rate"]["families"]) == {f.value for f in Family}
    assert report["errors"]["total"] == 0, report["errors"]
    assert report["stale_reads"] == 0
    assert report["run"]["embedded_redis_pids"]


def check_cleaned_up(report: dict[str, Any]) -> None:
    directory = report["run"]["embedded_directory"]
    assert directory is not None
    assert redis_servers_in(directory) == []
    assert not Path(directory).exists()
    for pid in report["run"]["embedded_redis_pids"]:
        assert not Path(f"/proc/{pid}").exists() or directory not in Path(
            f"/proc/{pid}/cmdline"
        ).read_text(errors="replace")


def test_bench_on_embedded_defaults_passes_and_stops_its_server(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    plot = tmp_path / "latency.png"
    result = run_cli("bench", *SHORT, *SIDE, *SMALL, "--json", str(out), "--plot", str(plot))
    report = json.loads(out.read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: PASS" in result.stdout
    check_report(report, BENCH_PHASES)
    assert report["server"]["universe_bytes"] > 0
    assert report["ratios"]["snapshot_p50_layer_over_raw"] is not None
    assert report["run"]["store"].startswith("embedded SQLite")
    assert plot.read_bytes().startswith(b"\x89PNG")
    check_cleaned_up(report)


@pytest.mark.postgres
async def test_bench_on_postgres_uses_and_drops_a_temporary_schema(
    tmp_path: Path, postgres_dsn: str
) -> None:
    out = tmp_path / "report.json"
    args = ("bench", *SHORT, *SIDE, *SMALL, "--store-url", postgres_dsn, "--json", str(out))
    result = run_cli(*args)
    report = json.loads(out.read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    check_report(report, BENCH_PHASES)
    schema = re.search(r"temporary schema (\w+)", report["run"]["store"])
    assert schema is not None
    conn = await asyncpg.connect(postgres_dsn)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            schema.group(1),
        )
    finally:
        await conn.close()
    assert left == 0
    check_cleaned_up(report)


@pytest.mark.fault
def test_chaos_short_schedule_has_no_errors_no_stale_reads_and_recovers(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    result = run_cli(
        "chaos", "--duration", "4", "--warmup", "0.5", "--kill-at", "0.5", "--restart-at", "1.1",
        "--pause-at", "1.8", "--resume-at", "2.4", "--breaker-wait", "0.4", *SMALL,
        "--json", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    check_report(report, {"chaos"})
    chaos = report["chaos"]
    assert [w["kind"] for w in chaos["windows"]] == ["kill", "pause"]
    assert all(w["time_to_serving_s"] is not None for w in chaos["windows"])
    assert all(w["snapshot"]["count"] > 0 for w in chaos["windows"])
    assert report["breaker"]["count"] >= 2  # it opened and closed again
    assert len(report["run"]["embedded_redis_pids"]) == 2  # the first and the restarted one
    check_cleaned_up(report)


def _children_named(parent: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"PPid:\t{parent}\n" in status and f"Name:\t{name}" in status:
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_bench_stops_its_server_and_removes_its_directory(sig: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cache", "bench", "--duration", "30", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        servers: list[int] = []
        while not servers and time.monotonic() < deadline:
            servers = _children_named(process.pid, "redis-server")
            time.sleep(0.05)
        assert servers, "the bench never started its redis-server"
        cmdline = Path(f"/proc/{servers[0]}/cmdline").read_bytes().decode()
        directory = re.search(r"(/[^\x00]*rc-bench-[^/\x00]+)/", cmdline)
        assert directory is not None
        time.sleep(1.0)  # into the run
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == (130 if sig == signal.SIGINT else 143)
    assert "Traceback" not in stderr
    assert redis_servers_in(directory.group(1)) == []
    assert not Path(directory.group(1)).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "--symbols", "0"], "--symbols must be >= 1"),
        (["bench", "--depth", "30"], "--levels must be >= --depth"),
        (["bench", "--redis-url", "ftp://127.0.0.1/0"], "redis_url scheme"),
        (["bench", "--redis-url", "redis://127.0.0.1:1/0"], "does not answer"),
        (["bench", "--store-url", "mysql://db/x"], "unsupported store URL scheme"),
        (
            ["bench", "--store-url", "postgresql://postgres@127.0.0.1:1/test"],
            "runtime-cache: error",
        ),
        (["chaos", "--redis-url", "redis://127.0.0.1:6379/15"], "refuses --redis-url"),
        (["chaos", "--kill-at", "5", "--restart-at", "4"], "chaos times must satisfy"),
        (["health", "--redis-url", "redis://127.0.0.1:6379/x"], "db must be"),
        (["bench", "--loop", "trio"], "invalid choice"),
        (["bench", "--refresh-ahead", "price=1.5"], "0 < FRACTION < 1"),
        (["bench", "--ttl", "quote=1"], "FAMILY one of"),
    ],
)
def test_bad_flags_and_unreachable_urls_exit_2_with_one_clear_line(
    args: list[str], message: str
) -> None:
    result = run_cli(*args, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("runtime-cache") and "error: " in last


def test_plot_without_matplotlib_exits_2_naming_the_plot_extra(tmp_path: Path) -> None:
    hide = (
        "import sys; sys.modules['matplotlib'] = None; from runtime.cache.cli import main; "
        f"sys.exit(main(['bench', '--plot', {str(tmp_path / 'x.png')!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "runtime-cache[plot]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("command", [[], ["bench"], ["chaos"], ["inspect"], ["health"]])
def test_help_of_command_and_subcommands(command: list[str]) -> None:
    result = run_cli(*command, "--help", timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: runtime-cache")


def test_console_script_is_the_same_command() -> None:
    script = Path(sys.executable).parent / "runtime-cache"
    result = subprocess.run(
        [str(script), "health", "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0
    assert result.stdout == run_cli("health", "--help").stdout


@pytest.fixture
async def filled_redis(redis_url: str, tmp_path: Path) -> str:
    """db 15 holding entries of every family (written through the layer, 60 s TTL)."""
    universe = build_universe(symbols=3, levels=5, strategies=2)
    order = Order(
        "ord-1", "strat-0", "SYM000", OrderSide.BUY, OrderType.LIMIT, Decimal(100),
        Decimal("10.00"), Decimal(0), OrderStatus.NEW, 1, 1, 1,
    )  # fmt: skip
    store = await SqliteStore(str(tmp_path / "s.db")).connect()
    async with CacheManager(redis_url) as manager:
        fallback = FallbackHandler(
            manager, schema=KeySchema(ttl=dict.fromkeys(Family, 60.0)), operation_timeout=2.0
        )
        async with TradingCache(manager, store, fallback=fallback) as cache:
            values: list[Any] = [universe.risk, order, *universe.strategies.values()]
            for symbol in universe.symbols:
                values += [universe.prices[symbol], universe.positions[symbol]]
                values += [universe.books[(symbol, side)] for side in Side]
            await cache.writes.cache_committed([_versioned(v) for v in values])
    await store.close()
    return redis_url


def _versioned(value: Any) -> Any:
    return replace(value, version=1)


def test_inspect_reports_every_family_with_ttls(filled_redis: str, tmp_path: Path) -> None:
    out = tmp_path / "inspect.json"
    result = run_cli("inspect", "--redis-url", filled_redis, "--json", str(out), timeout=30)
    assert result.returncode == 0, result.stderr
    families = json.loads(out.read_text())["families"]
    expected = {"price": 3, "pos": 3, "book": 6, "risk": 1, "ord": 1, "strat": 2}
    for family, keys in expected.items():
        figures = families[family]
        assert figures["keys"] == keys, family
        assert 0 < figures["pttl_min_ms"] <= figures["pttl_median_ms"] <= figures["pttl_max_ms"]
        assert figures["pttl_max_ms"] <= 60_000
        assert figures["sampled_without_ttl"] == 0
        assert figures["memory_mean_bytes"] > 0
        assert family in result.stdout
    assert families["fence (~v:)"]["keys"] == sum(expected.values())


def test_health_on_a_live_redis_exits_0(redis_url: str) -> None:
    result = run_cli("health", "--redis-url", redis_url, "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["healthy"] is True
    assert status["server_version"]


def test_health_on_a_closed_port_exits_1() -> None:
    result = run_cli("health", "--redis-url", f"redis://127.0.0.1:{free_port()}/0", timeout=30)
    assert result.returncode == 1
    assert re.search(r"healthy\s+False", result.stdout)
    assert "Connection" in result.stdout or "connect" in result.stdout.lower()
    assert "Traceback" not in result.stderr
