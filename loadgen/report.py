"""The end of a run: a summary table, and with ``--out DIR`` the files that keep it.

``report.json`` (summary + HdrHistogram-encoded histograms), ``timeseries.csv`` (one row a
second), the PNG plots (:mod:`loadgen.plots`), and ``report.html`` that shows them with the
run's verdict first (:mod:`loadgen.report_html`).
"""

from __future__ import annotations

import csv
import json
import math
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from hdrh.histogram import HdrHistogram

from loadgen.ledger import accounting, describe
from geo_common.version import version
from loadgen.outcome import achieved_rate, done, generator_warnings, offered_rate
from loadgen.plots import PLOTS as PLOTS  # the files written, named here too for readers of the report
from loadgen.plots import write_plots
from loadgen.redact import plain
from loadgen.report_html import render
from loadgen.stages import reported_marks
from loadgen.stranger_figures import describe_strangers, stranger_summary
from loadgen.stats import PERCENTILES, Recorder, summarize
from loadgen.thresholds import Verdict, stat_ms

#: The per-second columns of timeseries.csv (the gauges' follow, one each).
SERIES_COLUMNS = ("second", "completed", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms")


def build_summary(scenario: str, recorder: Recorder, wall_s: float, options: dict[str, Any]) -> dict[str, Any]:
    """The run's figures as plain data (what report.json and the table show)."""
    completed = sum(b.count for b in recorder.series.values())
    summary = {
        "scenario": scenario,
        "options": options,
        "wall_s": round(wall_s, 3),
        "wall": wall_phases(wall_s, options.get("friends") or options),
        "operations": int(recorder.counters.get("operations", completed)),
        "completed": completed,
        "rate": completed / wall_s if wall_s > 0 else 0.0,
        "main_metric": recorder.main_metric,
        "metrics": {name: _figures(h) for name, h in sorted(recorder.histograms.items())},
        "counters": dict(sorted(recorder.counters.items())),
    }
    deliveries = accounting(recorder.counters)
    if deliveries is not None:
        summary["deliveries"] = deliveries
    if scenario == "strangers":
        summary["strangers"] = stranger_summary(recorder.counters, options)
    checked = recorder.counters.get("verified", 0)
    if checked:
        expected = recorder.counters.get("verify_expected", 0)
        summary["verification"] = {
            "answers": checked,
            "recall": 1.0 - recorder.counters.get("verify_missed", 0) / expected if expected else 1.0,
            "wrong_hits": recorder.counters.get("verify_wrong", 0),
            "order_errors": recorder.counters.get("verify_order_errors", 0),
            "total_errors": recorder.counters.get("verify_total_errors", 0),
            "mismatches": recorder.counters.get("verify_mismatches", 0),
        }
    stages = reported_marks(options)
    if stages:
        summary["stages"] = stages
    _add_context(summary, recorder, wall_s)
    return summary


def _figures(histogram: HdrHistogram) -> dict[str, float]:
    """:func:`~loadgen.stats.summarize`'s figures and the p95 that reports are read for, as a
    ``p95`` rule reads it (:func:`loadgen.thresholds.stat_ms`)."""
    return {**summarize(histogram), "p95": stat_ms(histogram, "p95")}


def _add_context(summary: dict[str, Any], recorder: Recorder, wall_s: float) -> None:
    """What a reader needs beside the figures: when, where and with which version the run
    went, the rate it was offered and made, what it held open, samples of its errors, and
    whether the generator itself may have set the pace (:func:`loadgen.outcome.generator_warnings`)."""
    started = datetime.now(UTC) - timedelta(seconds=wall_s)
    summary["run"] = {
        "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": version(),
        "host": socket.gethostname(),
    }
    scenario, options = summary["scenario"], summary["options"]
    offered = offered_rate(scenario, options)
    if offered is not None:
        summary["offered_rate"], summary["rate_unit"] = offered
        if scenario == "search" and isinstance(options.get("duration_s"), int | float):
            per_second = {second: bucket.count for second, bucket in recorder.series.items()}
            summary["achieved_rate"] = achieved_rate(per_second, float(options["duration_s"]))
    summary["gauges"] = {
        name: {"peak": max(readings.values()), "mean": round(sum(readings.values()) / len(readings), 3)}
        for name, readings in sorted(recorder.gauges.items())
        if readings
    }
    if recorder.samples:
        # An error answer may echo what it was sent: it is kept out like any secret (loadgen.redact).
        summary["error_samples"] = plain(dict(sorted(recorder.samples.items())))
    summary["warnings"] = generator_warnings(summary)


def wall_phases(wall_s: float, options: dict[str, Any]) -> dict[str, float]:
    """The run's wall time as the phases its options ask for (``ramp_s``, ``duration_s``,
    ``drain_s``, those it has) and the rest: preparing, connecting the first clients, closing."""
    phases = {
        k: float(options[k]) for k in ("ramp_s", "duration_s", "drain_s") if isinstance(options.get(k), int | float)
    }
    return {**phases, "other_s": round(wall_s - sum(phases.values()), 3)}


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def print_summary(summary: dict[str, Any], verdicts: list[Verdict], stream: TextIO) -> None:
    """Print the summary table: count, rate, percentiles, max; counters; threshold verdicts."""
    stream.write(f"\n{summary['scenario']}: {done(summary)} in {summary['wall_s']:.1f} s ({summary['rate']:.1f}/s)\n")
    names = {"ramp_s": "ramp", "duration_s": "duration", "drain_s": "drain", "other_s": "start and close"}
    phases = " + ".join(f"{names[k]} {v:.2f} s" for k, v in summary["wall"].items())
    stream.write(f"wall {summary['wall_s']:.2f} s = {phases}\n")
    if "deliveries" in summary:
        stream.write(describe(summary["deliveries"]) + "\n")
        for line in summary.get("error_samples", {}).get("lost", ()):
            stream.write(f"lost: {line}\n")
    if "strangers" in summary:
        stream.write(describe_strangers(summary["strangers"]) + "\n")
    cols = ["count", *[f"p{p:g}" for p in PERCENTILES], "max"]
    stream.write(f"{'metric (ms)':<22}" + "".join(f"{c:>12}" for c in cols) + "\n")
    for name, s in summary["metrics"].items():
        cells = [str(int(s["count"]))] + [_ms(s[c]) for c in cols[1:]]
        stream.write(f"{name:<22}" + "".join(f"{c:>12}" for c in cells) + "\n")
    if summary["counters"]:
        stream.write("counters: " + ", ".join(f"{k}={v}" for k, v in summary["counters"].items()) + "\n")
    if "verification" in summary:
        v = summary["verification"]
        stream.write(
            f"verified {v['answers']} answers against brute force: recall {v['recall']:.4%}, "
            f"{v['wrong_hits']} wrong hits, {v['order_errors']} out of order, "
            f"{v['total_errors']} wrong totals, {v['mismatches']} answers wrong\n"
        )
    for v in verdicts:
        stream.write(f"threshold {v.threshold}: {'pass' if v.passed else 'FAIL'} (actual {v.actual:g})\n")
    for warning in summary.get("warnings", ()):
        stream.write(f"warning: {warning}\n")
    stream.flush()


def write_outputs(out: Path, summary: dict[str, Any], recorder: Recorder, verdicts: list[Verdict]) -> list[Path]:
    """Write report.json, timeseries.csv, the plots and report.html into ``out``.

    Returns:
        The files written.
    """
    out.mkdir(parents=True, exist_ok=True)
    report = {
        **summary,
        "thresholds": [{"rule": str(v.threshold), "actual": v.actual, "passed": v.passed} for v in verdicts],
        "histograms": recorder.to_dict()["histograms"],
        "histogram_unit": "microseconds",
    }
    written = [out / "report.json", out / "timeseries.csv"]
    (out / "report.json").write_text(json.dumps(report, indent=2, allow_nan=True))
    columns = timeline(recorder)
    with (out / "timeseries.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows([_cell(v) for v in row] for row in zip(*columns.values(), strict=True))
    written += write_plots(out, summary, columns, recorder.histograms.get(recorder.main_metric), verdicts)
    (out / "report.html").write_text(render(summary, verdicts))
    written.append(out / "report.html")
    return written


def timeline(recorder: Recorder) -> dict[str, list[float]]:
    """The run second by second: :data:`SERIES_COLUMNS`, then each gauge, then what the schedule
    planned (``offered``: searches due that second); NaN where a second has no value (no
    latency measured, no reading taken)."""
    gauges, planned = sorted(recorder.gauges), sorted(recorder.planned)
    seconds = [*recorder.series, *(s for g in gauges for s in recorder.gauges[g])]
    seconds += [s for p in planned for s in recorder.planned[p]]
    columns: dict[str, list[float]] = {c: [] for c in (*SERIES_COLUMNS, *gauges, *planned)}
    for second in range(max(seconds) + 1 if seconds else 0):
        bucket = recorder.series.get(second)
        s = summarize(bucket.latency) if bucket is not None else {}
        columns["second"].append(second)
        columns["completed"].append(bucket.count if bucket is not None else 0)
        columns["errors"].append(bucket.errors if bucket is not None else 0)
        for k in ("p50", "p90", "p99", "max"):
            columns[f"{k}_ms"].append(s.get(k, math.nan))
        for g in gauges:
            columns[g].append(recorder.gauges[g].get(second, math.nan))
        for p in planned:
            columns[p].append(recorder.planned[p].get(second, 0))
    return columns


def _cell(value: float) -> int | float | str:
    if math.isnan(value):
        return ""
    return value if isinstance(value, int) else round(value, 3)
