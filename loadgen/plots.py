"""The report's plots: latency, throughput and what was held open over the run, and the
latency distribution, as PNG files next to report.html.

Each plot has its units on its axes, marks the run's phases (the ramp, in which clients were
still connecting, and the drain after the last update, both shaded) and draws each latency
or rate rule of ``--fail-if`` as a line at its limit, so a reader sees where the run stood
against what it was held to. matplotlib is imported here only, when a report is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdrh.histogram import HdrHistogram

from loadgen.thresholds import Verdict, stat_ms

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PLOTS = (
    "latency_over_time.png",
    "throughput_over_time.png",
    "concurrency_over_time.png",
    "latency_distribution.png",
)
#: What each gauge reads, for legends (a mixed run's search part is under ``search.``).
GAUGE_LABELS = {"in_flight": "searches in flight", "connected": "clients connected"}
_NINES = (0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999)
_SIZE = (10.0, 3.6)
_DPI = 100


def gauge_label(name: str) -> str:
    """A gauge's name as a legend says it: ``search.in_flight`` -> ``search: searches in flight``."""
    prefix, _, bare = name.rpartition(".")
    label = GAUGE_LABELS.get(bare, bare)
    return f"{prefix}: {label}" if prefix else label


def write_plots(
    out: Path,
    summary: Mapping[str, Any],
    timeline: Mapping[str, Sequence[float]],
    main: HdrHistogram | None,
    verdicts: list[Verdict],
) -> list[Path]:
    """Draw the plots of :data:`PLOTS` into ``out``.

    Args:
        out: the report's folder.
        summary: the run's summary (scenario, phases, main metric, offered rate).
        timeline: per-second columns (``second``, ``completed``, ``errors``, ``p50_ms``,
            ``p99_ms``, ``max_ms``, then one per gauge), NaN where a second has no value.
        main: the main latency's histogram (microseconds), for the distribution.
        verdicts: the rules the run was held to; latency and rate rules are drawn.

    Returns:
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = summary["scenario"]
    # A second's figures stand at its middle: second 0 holds what happened in [0, 1).
    seconds = [s + 0.5 for s in timeline.get("second", [])]
    rules = [v for v in verdicts if _drawn(v, summary)]
    drawers: tuple[Callable[[Axes], None], ...] = (
        lambda ax: _latency_over_time(ax, seconds, timeline, summary, rules),
        lambda ax: _throughput(ax, seconds, timeline, summary, verdicts),
        lambda ax: _concurrency(ax, seconds, timeline, summary),
        lambda ax: _distribution(ax, main, rules),
    )
    titles = ("latency over time", "throughput over time", "held open over time", "latency distribution")
    written = []
    for file, title, draw in zip(PLOTS, titles, drawers, strict=True):
        fig, ax = plt.subplots(figsize=_SIZE)
        draw(ax)
        ax.set_title(f"geo-loadgen {name}: {title}")
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
        if file != PLOTS[-1]:
            ax.set_xlim(left=0)
        # The same margins on every plot, the legend right of it: the plots line up on the page.
        fig.subplots_adjust(left=0.08, right=0.74, top=0.9, bottom=0.3 if file == PLOTS[-1] else 0.15)
        fig.savefig(out / file, dpi=_DPI)
        plt.close(fig)
        written.append(out / file)
    return written


def _drawn(verdict: Verdict, summary: Mapping[str, Any]) -> bool:
    """Whether a rule is on the main latency (drawn on the latency plots)."""
    measure = verdict.threshold.measure
    return measure.kind == "latency" and measure.name == summary.get("main_metric")


def _phases(ax: Axes, summary: Mapping[str, Any]) -> None:
    """Shade the ramp and the drain; a dotted line where the schedule ends (searches); a thin
    line at each boundary between load stages (``--stages``)."""
    wall = summary.get("wall", {})
    ramp, duration, drain = (float(wall.get(k, 0.0)) for k in ("ramp_s", "duration_s", "drain_s"))
    if ramp > 0:
        ax.axvspan(0, ramp, color="tab:blue", alpha=0.08, label=f"ramp ({ramp:g} s)")
    if drain > 0:
        ax.axvspan(ramp + duration, ramp + duration + drain, color="grey", alpha=0.12, label=f"drain ({drain:g} s)")
    elif duration > 0:
        ax.axvline(ramp + duration, color="grey", linestyle=":", linewidth=1, label="end of the schedule")
    boundaries = sorted({float(mark["start_s"]) for mark in summary.get("stages", ())} - {0.0})
    for i, at in enumerate(boundaries):
        ax.axvline(at, color="tab:olive", linestyle="-.", linewidth=0.8, label="stage boundary" if i == 0 else None)


def _rule_line(ax: Axes, value: float, verdict: Verdict) -> None:
    color = "tab:green" if verdict.passed else "tab:red"
    ax.axhline(value, color=color, linestyle="--", linewidth=1.2, label=f"{verdict.threshold} ({_pass(verdict)})")


def _pass(verdict: Verdict) -> str:
    return "pass" if verdict.passed else "FAIL"


def _latency_over_time(
    ax: Axes,
    seconds: list[float],
    timeline: Mapping[str, Sequence[float]],
    summary: Mapping[str, Any],
    rules: list[Verdict],
) -> None:
    _phases(ax, summary)
    values: list[float] = []
    for column, label, color in (
        ("p50_ms", "p50", "tab:blue"),
        ("p99_ms", "p99", "tab:orange"),
        ("max_ms", "max", "tab:purple"),
    ):
        values += timeline.get(column, [])
        ax.plot(seconds, list(timeline.get(column, [])), label=f"{label} each second", color=color, marker=".")
    for verdict in rules:
        _rule_line(ax, verdict.threshold.value, verdict)
    ax.set(xlabel="time since the start (s)", ylabel=f"{summary.get('main_metric', 'latency')} (ms, log scale)")
    _log_scale(ax, values)


def _throughput(
    ax: Axes,
    seconds: list[float],
    timeline: Mapping[str, Sequence[float]],
    summary: Mapping[str, Any],
    verdicts: list[Verdict],
) -> None:
    _phases(ax, summary)
    # The series counts the main part's operations: a mixed run's are its friends' deliveries.
    what = "searches" if summary.get("scenario") == "search" else "deliveries"
    ax.plot(seconds, list(timeline.get("completed", [])), label=f"{what} done each second", marker=".")
    ax.plot(seconds, list(timeline.get("errors", [])), label="errors each second", color="tab:red", marker=".")
    offered = summary.get("offered_rate")
    if summary.get("scenario") == "search" and "offered" in timeline:
        # The schedule, second by second: a staged run's offered rate moves.
        ax.plot(seconds, list(timeline["offered"]), color="black", linestyle=":", label="offered each second")
    elif summary.get("scenario") == "search" and isinstance(offered, int | float):
        ax.axhline(offered, color="black", linestyle=":", linewidth=1, label=f"offered {offered:g}/s")
    for verdict in verdicts:
        if verdict.threshold.measure.kind == "rate":
            _rule_line(ax, verdict.threshold.value, verdict)
    ax.set(xlabel="time since the start (s)", ylabel=f"{what} per second")
    ax.set_ylim(bottom=0)


def _concurrency(
    ax: Axes, seconds: list[float], timeline: Mapping[str, Sequence[float]], summary: Mapping[str, Any]
) -> None:
    from matplotlib.ticker import MaxNLocator

    _phases(ax, summary)
    gauges = [name for name in summary.get("gauges", {}) if name in timeline]
    for name in gauges:
        ax.plot(seconds, list(timeline[name]), label=gauge_label(name), marker=".")
    if "connected_target" in timeline and gauges:
        ax.plot(
            seconds, list(timeline["connected_target"]), color="black", linestyle=":", label="clients planned online"
        )
    if not gauges:
        ax.text(0.5, 0.5, "no readings", transform=ax.transAxes, ha="center", va="center")
    ax.set(xlabel="time since the start (s)", ylabel="count (read once a second)")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _distribution(ax: Axes, main: HdrHistogram | None, rules: list[Verdict]) -> None:
    if main is None or not main.get_total_count():
        ax.text(0.5, 0.5, "no latencies measured", transform=ax.transAxes, ha="center", va="center")
        ax.set(xlabel="percentile", ylabel="latency (ms)")
        return
    # The percentile curve, on a log scale of 1/(1-p): the usual HDR view, the tail spread out.
    xs = [1.0 / (1.0 - p / 100.0) for p in _NINES]
    ys = [stat_ms(main, f"p{p:g}") for p in _NINES]  # as a rule on that percentile reads it
    ax.plot(xs, ys, marker="o", label="latency at percentile")
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{p:g}%" for p in _NINES], rotation=45)
    for verdict in rules:
        _rule_line(ax, verdict.threshold.value, verdict)
    ax.set(xlabel="percentile", ylabel="latency (ms, log scale)")
    _log_scale(ax, ys)


def _log_scale(ax: Axes, values: Sequence[float]) -> None:
    """A log scale for the y axis, when the values hold one it can show (all NaN or 0: linear),
    its ticks written as plain numbers (``20``, not ``2 x 10^1``)."""
    from matplotlib.ticker import FuncFormatter

    if any(not math.isnan(v) and v > 0 for v in values):
        ax.set_yscale("log")
        plain = FuncFormatter(lambda value, _position: f"{value:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _position: _minor_label(ax, value)))


def _minor_label(ax: Axes, value: float) -> str:
    """2 and 5 between the powers of ten of a log axis that spans under three decades."""
    low, high = ax.get_ylim()
    if low <= 0 or high / low > 1000 or f"{value:.0e}"[0] not in "25":
        return ""
    return f"{value:g}"
