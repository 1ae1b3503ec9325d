"""The end of a run: a summary table, and with ``--out DIR`` the files that keep it.

``report.json`` (summary + HdrHistogram-encoded histograms), ``timeseries.csv`` (one row a
second), three PNG plots, and ``report.html`` that shows them.
"""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path
from typing import Any, TextIO

from loadgen.ledger import accounting, describe
from loadgen.stats import PERCENTILES, Recorder, summarize
from loadgen.thresholds import Verdict

PLOTS = ("latency_over_time.png", "throughput_over_time.png", "latency_distribution.png")


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
        "metrics": {name: summarize(h) for name, h in sorted(recorder.histograms.items())},
        "counters": dict(sorted(recorder.counters.items())),
    }
    deliveries = accounting(recorder.counters)
    if deliveries is not None:
        summary["deliveries"] = deliveries
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
    return summary


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
    stream.write(
        f"\n{summary['scenario']}: {summary['completed']} done of {summary['operations']} "
        f"in {summary['wall_s']:.1f} s ({summary['rate']:.1f}/s)\n"
    )
    names = {"ramp_s": "ramp", "duration_s": "duration", "drain_s": "drain", "other_s": "start and close"}
    phases = " + ".join(f"{names[k]} {v:.2f} s" for k, v in summary["wall"].items())
    stream.write(f"wall {summary['wall_s']:.2f} s = {phases}\n")
    if "deliveries" in summary:
        stream.write(describe(summary["deliveries"]) + "\n")
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
    rows = _series_rows(recorder)
    with (out / "timeseries.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["second", "completed", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms"])
        writer.writerows(rows)
    written += _plots(out, recorder, rows, summary)
    (out / "report.html").write_text(_html(summary, verdicts))
    written.append(out / "report.html")
    return written


def _series_rows(recorder: Recorder) -> list[list[Any]]:
    rows: list[list[Any]] = []
    if not recorder.series:
        return rows
    for second in range(0, max(recorder.series) + 1):
        bucket = recorder.series.get(second)
        if bucket is None:
            rows.append([second, 0, 0, "", "", "", ""])
            continue
        s = summarize(bucket.latency)
        rows.append(
            [
                second,
                bucket.count,
                bucket.errors,
                *("" if math.isnan(s[k]) else round(s[k], 3) for k in ("p50", "p90", "p99", "max")),
            ]
        )
    return rows


def _plots(out: Path, recorder: Recorder, rows: list[list[Any]], summary: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [r[0] for r in rows]

    def column(i: int) -> list[float]:
        return [float(r[i]) if r[i] != "" else math.nan for r in rows]

    fig, ax = plt.subplots(figsize=(8, 4))
    for i, label in ((3, "p50"), (5, "p99"), (6, "max")):
        ax.plot(seconds, column(i), label=label)
    ax.set(xlabel="second of the run", ylabel="latency (ms)", title=f"{summary['scenario']}: latency over time")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / PLOTS[0], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(seconds, column(1), label="completed/s")
    ax.plot(seconds, column(2), label="errors/s")
    ax.set(xlabel="second of the run", ylabel="per second", title=f"{summary['scenario']}: throughput over time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / PLOTS[1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    main = recorder.histograms.get(recorder.main_metric)
    if main is not None and main.get_total_count():
        # The percentile curve, on a log scale of 1/(1-p), the usual HDR view.
        nines = [0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999]
        xs = [1.0 / (1.0 - p / 100.0) for p in nines]
        ys = [main.get_value_at_percentile(p) / 1000.0 for p in nines]
        ax.plot(xs, ys, marker="o")
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{p:g}%" for p in nines], rotation=45)
    ax.set(xlabel="percentile", ylabel="latency (ms)", title=f"{summary['scenario']}: latency distribution")
    fig.tight_layout()
    fig.savefig(out / PLOTS[2], dpi=100)
    plt.close(fig)
    return [out / p for p in PLOTS]


def _html(summary: dict[str, Any], verdicts: list[Verdict]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(
            f"<td>{_ms(s[c]) if c != 'count' else int(s[c])}</td>"
            for c in ("count", "p50", "p90", "p99", "p99.9", "max")
        )
        + "</tr>"
        for name, s in summary["metrics"].items()
    )
    counters = "".join(f"<li>{html.escape(k)}: {v}</li>" for k, v in summary["counters"].items())
    checks = "".join(
        f"<li>{html.escape(str(v.threshold))}: {'pass' if v.passed else 'FAIL'} (actual {v.actual:g})</li>"
        for v in verdicts
    )
    images = "".join(f'<figure><img src="{p}" alt="{p[:-4].replace("_", " ")}"></figure>' for p in PLOTS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>geo-loadgen {html.escape(summary["scenario"])}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:auto;padding:1rem}}td,th{{padding:.2rem .6rem;text-align:right}}img{{max-width:100%}}</style>
</head><body>
<h1>geo-loadgen {html.escape(summary["scenario"])}</h1>
<p>{summary["completed"]} done of {summary["operations"]} in {summary["wall_s"]:.1f} s ({summary["rate"]:.1f}/s)</p>
<table><tr><th>metric (ms)</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>{rows}</table>
<h2>Counters</h2><ul>{counters}</ul>
<h2>Thresholds</h2><ul>{checks or "<li>none given</li>"}</ul>
{images}
</body></html>
"""
