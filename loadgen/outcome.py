"""Did it hold? A finished run's verdict as a list of checks, and whether the generator held.

Pure functions over the summary (:func:`loadgen.report.build_summary`) and the rules'
verdicts, so that the HTML report's banner, the JUnit file and the console say the same thing
from the same figures:

* :func:`checks`: one check per ``--fail-if`` rule, and one for the run's own checks (a part
  that succeeded at nothing, errors above ``--max-errors``, a worker that crashed);
* :func:`generator_warnings`: the signs that the generator, not the server, set the pace: its
  event loop late by a large share of the latency, requests leaving late, its CPU saturated,
  or fewer operations a second than it was asked for. Its figures then describe a lighter or
  a later load than the one asked for, and say little about the server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loadgen.thresholds import FAIL_IF, MAX_ERRORS, Verdict

#: A lag (loop or send) counts against the generator when its p99 is above this many
#: milliseconds and above :data:`LAG_SHARE` of the latency p99.
LAG_FLOOR_MS = 5.0
LAG_SHARE = 0.5
#: Below this share of the offered rate, the run did not make the load it was asked for.
RATE_SHARE = 0.95
#: The name of the check that holds the run's own reasons to fail.
RUN_CHECK = "run's own checks"


@dataclass(frozen=True, slots=True)
class Check:
    """One thing the run was held to, and how it went.

    Attributes:
        name: the rule as written (``p99<50ms``), or :data:`RUN_CHECK`.
        passed: whether it held.
        message: why it failed, one line per reason ("" when it passed).
        actual: what was measured, as shown ("" for the run's own checks).
    """

    name: str
    passed: bool
    message: str = ""
    actual: str = ""


def shown(verdict: Verdict) -> str:
    """A verdict's measured value with its unit: ``63.2 ms``, ``0.5%``, ``12``."""
    value, rule = verdict.actual, verdict.threshold
    if math.isnan(value):
        return "nothing measured"
    if rule.measure.kind == "latency":
        return f"{value:.3g} ms"
    if rule.percent:
        return f"{value:.3g}%"
    if rule.measure.kind == "rate":
        return f"{value:.1f}/s"
    return f"{value:g}"


def checks(summary: Mapping[str, Any], verdicts: list[Verdict]) -> list[Check]:
    """Every check of a run: each ``--fail-if`` rule, then the run's own checks.

    The run's own check fails with each reason ``runner`` gave (``summary["failures"]``: a
    part that succeeded at nothing, errors above ``--max-errors``) and each crashed worker
    (``summary["worker_failures"]``); a failed ``--max-errors`` rule is a reason of its own
    when neither says so.
    """
    out = [
        Check(
            str(v.threshold),
            v.passed,
            "" if v.passed else f"{v.threshold} failed: {v.threshold.metric} was {shown(v)}",
            shown(v),
        )
        for v in verdicts
        if v.threshold.origin == FAIL_IF
    ]
    reasons = [*summary.get("failures", ()), *summary.get("worker_failures", ())]
    if not summary.get("failures"):
        reasons += [
            f"{v.threshold.metric} was {shown(v)}, above {MAX_ERRORS} {v.threshold.value:g}"
            + ("%" if v.threshold.percent else "")
            for v in verdicts
            if v.threshold.origin == MAX_ERRORS and not v.passed
        ]
    out.append(Check(RUN_CHECK, not reasons, "\n".join(reasons)))
    return out


def failed_reasons(summary: Mapping[str, Any], verdicts: list[Verdict]) -> list[str]:
    """Why the run failed, one line each; empty when it passed."""
    return [line for c in checks(summary, verdicts) if not c.passed for line in c.message.splitlines()]


def done(summary: Mapping[str, Any], *, grouped: bool = False) -> str:
    """What the run did: ``950 done of 1000`` (``1,000`` when ``grouped``); a strangers run's
    frames came from its locations."""
    completed, operations = (f"{summary[k]:,}" if grouped else str(summary[k]) for k in ("completed", "operations"))
    if "strangers" in summary:
        return f"{completed} stranger frames from {operations} locations"
    return f"{completed} done of {operations}"


def offered_rate(scenario: str, options: Mapping[str, Any]) -> tuple[float, str] | None:
    """The rate a run was asked for and its unit: searches a second (``search``, and a
    mixed run's search part), location updates a second (``friends``); None when unknown."""
    if scenario == "mixed":
        search = options.get("search")
        return offered_rate("search", search) if isinstance(search, Mapping) else None
    if scenario == "search" and isinstance(options.get("rate"), int | float):
        return float(options["rate"]), "searches/s"
    if scenario in ("friends", "strangers") and all(
        isinstance(options.get(k), int | float) for k in ("users", "interval_s")
    ):
        fraction = float(options.get("online_fraction", 1.0))
        per_user = float(options["users"]) * fraction / float(options["interval_s"])
        return per_user, "updates/s" if scenario == "friends" else "locations/s"
    return None


def achieved_rate(per_second: Mapping[int, int], window_s: float) -> float | None:
    """Operations finished a second, on average over the whole seconds of the sending window.

    Counted by the second each finished in, from the first second of the schedule; the last
    partial second is left out (what was sent in it finishes after the window), and so is
    whatever finished after the window: a load that fell behind its schedule shows as fewer
    a second. None for a window shorter than a second.

    Args:
        per_second: operations finished in each second since the schedule's start.
        window_s: how long the schedule sends for, seconds.
    """
    whole = int(window_s)
    if whole < 1:
        return None
    return sum(per_second.get(s, 0) for s in range(whole)) / whole


def _p99(metrics: Mapping[str, Mapping[str, float]], name: str) -> float:
    figures = metrics.get(name)
    return math.nan if figures is None else float(figures.get("p99", math.nan))


def _lag_too_large(lag_ms: float, latency_ms: float) -> bool:
    if math.isnan(lag_ms) or lag_ms <= LAG_FLOOR_MS:
        return False
    return math.isnan(latency_ms) or lag_ms > LAG_SHARE * latency_ms


def generator_warnings(summary: Mapping[str, Any]) -> list[str]:
    """Why the generator may have been the bottleneck, one sentence each; empty when nothing says so.

    Reads ``metrics`` (p99s in ms), ``counters``, ``offered_rate``, ``achieved_rate`` and
    ``rate_unit`` of a summary.
    """
    metrics: Mapping[str, Mapping[str, float]] = summary.get("metrics", {})
    counters: Mapping[str, int] = summary.get("counters", {})
    warnings = []
    latencies = [name for name in metrics if name == "latency" or name.endswith(".latency")]
    loop_lag = _p99(metrics, "loop_lag")
    for name in latencies:
        latency = _p99(metrics, name)
        if _lag_too_large(loop_lag, latency):
            warnings.append(
                f"the generator's event loop ran late: loop_lag p99 {loop_lag:.3g} ms against {name} p99 "
                f"{latency:.3g} ms, so the latencies include the generator's own delays"
            )
            break
    for name in latencies:
        send_lag_name = name.removesuffix("latency") + "send_lag"
        send_lag, latency = _p99(metrics, send_lag_name), _p99(metrics, name)
        if _lag_too_large(send_lag, latency):
            warnings.append(
                f"requests left late: {send_lag_name} p99 {send_lag:.3g} ms against {name} p99 {latency:.3g} ms"
            )
    saturated = int(counters.get("generator_cpu_saturated_s", 0))
    if saturated:
        warnings.append(f"the generator used over 90% of a core for {saturated} s")
    offered, achieved = summary.get("offered_rate"), summary.get("achieved_rate")
    if isinstance(offered, int | float) and isinstance(achieved, int | float) and achieved < RATE_SHARE * offered:
        unit = summary.get("rate_unit", "/s")
        warnings.append(
            f"achieved {achieved:.1f} {unit} of the {offered:g} offered ({achieved / offered:.0%}): "
            "the generator or the server fell behind the schedule"
        )
    return warnings
