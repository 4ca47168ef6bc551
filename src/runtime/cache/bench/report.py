"""Figures and rendering of a report: percentiles, plain text, rich tables, JSON, plot.

Percentiles are nearest-rank over every sample of the measured window, in
microseconds. :func:`render_text` is the plain-text report (for pipes, logs and
the README); :func:`print_report` uses rich tables when rich is installed and
the output is a terminal. :func:`write_plot` needs matplotlib (the ``plot``
extra) and raises :class:`PlotUnavailableError` without it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from runtime.cache.bench.workload import PhaseResult

__all__ = [
    "PERCENTILES",
    "PlotUnavailableError",
    "format_value",
    "percentiles",
    "phase_summary",
    "print_report",
    "ratio",
    "render_text",
    "write_json",
    "write_plot",
]

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999))


class PlotUnavailableError(Exception):
    """matplotlib is not installed."""


def percentiles(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean of ``samples_ns`` in microseconds (nearest rank)."""
    ordered = sorted(samples_ns)
    n = len(ordered)
    if n == 0:
        return {}
    out = {
        f"{name}_us": round(ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] / 1000, 1)
        for name, q in PERCENTILES
    }
    out["max_us"] = round(ordered[-1] / 1000, 1)
    out["mean_us"] = round(sum(ordered) / n / 1000, 1)
    return out


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def phase_summary(result: PhaseResult) -> dict[str, Any]:
    """One phase's operations (count, ops/s, percentiles), errors and stale reads."""
    operations: dict[str, Any] = {}
    for name, samples in sorted(result.recorder.latencies.items()):
        operations[name] = {
            "count": len(samples),
            "ops_per_s": round(len(samples) / result.seconds, 1) if result.seconds else None,
            **percentiles(samples),
        }
    return {
        "tasks": result.tasks,
        "measured_s": round(result.seconds, 3),
        "feed_updates_per_s": round(result.feed_updates / result.seconds, 1)
        if result.seconds
        else None,
        "operations": operations,
        "errors": dict(result.recorder.errors),
        "error_examples": list(result.recorder.error_examples),
        "stale_reads": result.tracker.stale_reads,
        "stale_examples": list(result.tracker.stale_examples),
        **result.extra,
    }


def write_json(report: dict[str, Any], path: str) -> None:
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def _num(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:.3g}"
    return str(value)


def format_value(value: object) -> str:
    """A figure as the reports print it (floats to 3 significant digits)."""
    return _num(value)


def _mark(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


_OP_COLUMNS = ("count", "ops_per_s", "p50_us", "p90_us", "p99_us", "p99.9_us", "max_us")


def _op_rows(phase: dict[str, Any]) -> list[list[str]]:
    return [
        [name, *(_num(fig.get(col)) for col in _OP_COLUMNS)]
        for name, fig in phase["operations"].items()
    ]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return out


def _family_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for family, fs in report["hit_rate"]["families"].items():
        if fs["hits"] + fs["negative_hits"] + fs["misses"] + fs["fallbacks"] + fs["writes"]:
            rows.append(
                [
                    family,
                    str(fs["hits"] + fs["negative_hits"]),
                    str(fs["misses"]),
                    _pct(fs["hit_rate"]),
                    str(fs["fallbacks"]),
                    str(fs["writes"]),
                ]
            )
    hr = report["hit_rate"]
    rows.append(
        [
            "overall",
            str(hr["hits"]),
            str(hr["misses"]),
            _pct(hr["overall"]),
            str(hr["fallbacks"]),
            "",
        ]
    )
    return rows


def _criteria_lines(report: dict[str, Any]) -> list[str]:
    lines = ["Exit criteria:"]
    lines += [
        f"  {_mark(c['passed'])}  {c['name']}  (value: {_num(c['value'])})"
        for c in report["criteria"]
    ]
    if report.get("targets"):
        lines.append("Our targets (informational):")
        lines += [
            f"  {'met ' if c['passed'] else 'MISS'}  {c['name']}  (value: {_num(c['value'])})"
            for c in report["targets"]
        ]
    lines.append(f"RESULT: {_mark(report['passed'])}")
    return lines


def _facts_lines(report: dict[str, Any]) -> list[str]:
    run, versions, machine = report["run"], report["versions"], report["machine"]
    server = report.get("server", {})
    params = ", ".join(f"{k}={v}" for k, v in report["parameters"].items())
    lines = [
        f"Parameters: {params}",
        f"Redis: {run['redis']} (server {server.get('redis_version')}); store: {run['store']}",
        f"Event loop: {run['event_loop']}; operation deadline {run['operation_timeout_ms']:g} ms; "
        f"breaker wait {run['breaker_wait_s']:g} s; TTL ms "
        + ", ".join(f"{k}={v}" for k, v in run.get("ttl_ms", {}).items())
        + "; refresh-ahead "
        + (", ".join(f"{k}={v:g}" for k, v in run.get("refresh_ahead", {}).items()) or "off"),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"Machine: {machine['cpu_count']} CPU ({machine['cpu_model']}), "
        f"{(machine['memory_bytes'] or 0) / 2**30:.1f} GiB, {machine['os']}",
    ]
    if "universe_bytes" in server:
        lines.append(
            "Redis used_memory for the seeded universe: "
            f"{server['universe_bytes'] / 2**20:.2f} MiB "
            f"({server['universe_keys']} keys incl. version fences; used_memory "
            f"{server['used_memory_universe']} bytes with it, {server['used_memory_empty']} empty)"
        )
    return lines


def render_text(report: dict[str, Any]) -> str:
    """The whole report as plain text."""
    out = [f"runtime-cache {report['command']} - {report['started_at']}", ""]
    out += _facts_lines(report)
    if "hit_rate" in report:
        out += ["", "Hit rate (measured window of the cache phase):"]
        out += _table(
            ["family", "hits", "misses", "hit rate", "fallbacks", "writes"], _family_rows(report)
        )
    for name, phase in report["phases"].items():
        out += [
            "",
            f"Phase {name}: {phase['tasks']} strategies, {phase['measured_s']:g} s measured, "
            f"feed {_num(phase['feed_updates_per_s'])} updates/s, latency in us",
        ]
        out += _table(["operation", *_OP_COLUMNS], _op_rows(phase))
    if "ratios" in report:
        out += ["", "Ratios:"] + [f"  {k}: {_num(v)}" for k, v in report["ratios"].items()]
    fb = report["fallbacks"]
    out += [
        "",
        f"Fallbacks: {fb['total']} {fb['by_reason'] or ''}".rstrip(),
        f"Breaker transitions: {report['breaker']['count']}",
    ]
    out += [
        f"  {t['at_s']:.3f} s {t['from']} -> {t['to']}: {t['reason']}"
        for t in report["breaker"]["transitions"]
    ]
    everywhere = report["breaker"].get("transitions_all_phases")
    if everywhere is not None and len(everywhere) != report["breaker"]["count"]:
        out.append(f"Breaker transitions in all phases (see JSON): {len(everywhere)}")
    errors = report["errors"]
    out.append(f"Errors raised to callers: {errors['total']} {errors['by_kind'] or ''}".rstrip())
    if errors.get("raw_baseline_snapshot_errors"):
        raw = errors["raw_baseline_snapshot_errors"]
        out.append(f"Raw redis-py snapshot errors (the baseline has no fallback): {raw}")
    out.append(f"Stale reads: {report['stale_reads']}")
    if "chaos" in report:
        out += ["", *_chaos_lines(report["chaos"])]
    out += ["", *(f"Note: {n}" for n in report.get("notes", [])), "", *_criteria_lines(report)]
    return "\n".join(out) + "\n"


def _chaos_lines(chaos: dict[str, Any]) -> list[str]:
    lines = ["Chaos events (s from the start of the measured window):"]
    lines += [f"  {e['at_s']:8.3f}  {e['event']}" for e in chaos["events"]]
    lines.append("Outage windows (snapshot latency in us while Redis was down or frozen):")
    for w in chaos["windows"]:
        lat = w["snapshot"]
        serving = w["time_to_serving_s"]
        again = "never" if serving is None else f"{serving:.3f} s"
        lines.append(
            f"  {w['kind']:6} {w['start_s']:.3f}-{w['end_s']:.3f} s: "
            f"{lat.get('count', 0)} snapshots, p50 {_num(lat.get('p50_us'))}, "
            f"p99 {_num(lat.get('p99_us'))}, max {_num(lat.get('max_us'))}; "
            f"cache serving again {again} after Redis returned"
        )
    return lines


def print_report(report: dict[str, Any], stream: TextIO, *, rich_ok: bool) -> None:
    """Rich tables when ``rich_ok`` and rich is importable, plain text otherwise."""
    if rich_ok:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            rich_ok = False
    if not rich_ok:
        stream.write(render_text(report))
        return
    console = Console(file=stream)
    console.print(f"[bold]runtime-cache {report['command']}[/bold] - {report['started_at']}")
    for line in _facts_lines(report):
        console.print(line, highlight=False)
    if "hit_rate" in report:
        table = Table(title="Hit rate (cache phase, measured window)")
        for h in ("family", "hits", "misses", "hit rate", "fallbacks", "writes"):
            table.add_column(h, justify="left" if h == "family" else "right")
        for row in _family_rows(report):
            table.add_row(*row)
        console.print(table)
    for name, phase in report["phases"].items():
        table = Table(
            title=f"{name}: {phase['tasks']} strategies, {phase['measured_s']:g} s, "
            f"feed {_num(phase['feed_updates_per_s'])}/s (latency us)"
        )
        for h in ("operation", *_OP_COLUMNS):
            table.add_column(h, justify="left" if h == "operation" else "right")
        for row in _op_rows(phase):
            table.add_row(*row)
        console.print(table)
    rest = render_text(report).split("\nRatios:" if "ratios" in report else "\nFallbacks:", 1)
    tail = ("Ratios:" if "ratios" in report else "Fallbacks:") + rest[1] if len(rest) == 2 else ""
    for line in tail.splitlines():
        style = "green" if line.strip().startswith(("PASS", "RESULT: PASS")) else None
        if line.strip().startswith(("FAIL", "RESULT: FAIL", "MISS")):
            style = "red"
        console.print(line, style=style, highlight=False)


def write_plot(report: dict[str, Any], samples: dict[str, Sequence[int]], path: str) -> None:
    """A PNG of the snapshot latency distributions (CDF, log x) per phase."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailableError(
            "--plot needs matplotlib: pip install 'runtime-cache[plot]'"
        ) from exc
    figure, axis = plt.subplots(figsize=(9, 5))
    for name, values in samples.items():
        if not values:
            continue
        ordered = sorted(v / 1000 for v in values)
        n = len(ordered)
        axis.plot(ordered, [(i + 1) / n for i in range(n)], label=f"{name} (n={n})")
    axis.set_xscale("log")
    axis.set_xlabel("snapshot latency (us, log scale)")
    axis.set_ylabel("fraction of snapshots")
    axis.set_title(f"runtime-cache {report['command']}: snapshot latency, cache vs no cache vs raw")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
