"""``--fail-if "p99<50ms,errors<0.1%,lost==0"``: pass/fail rules over a run's figures.

A rule is ``METRIC OP VALUE[UNIT]``, and METRIC must be one the scenario records
(:mod:`loadgen.catalog`): a misspelt name is refused with the closest known one, never read
as a counter that stayed at 0 and so passed.

* ``p50 p90 p95 p99 p99.9 max mean min``: of the main latency; ``NAME.p99`` (``send_lag.p99``,
  ``search.latency.p95``) of any histogram. They take ``us``, ``ms`` (the default) or ``s``.
* a counter (``errors``, ``lost``, ``status_5xx``, ``search.timeout``...): a count, or with
  ``%`` a percentage of its part's ``operations``.
* ``rate``: achieved operations per second.

:func:`error_rules` adds the rule every run is held to unless it says otherwise: each part's
``errors`` at most ``--max-errors`` (1% by default) of its operations.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from loadgen.catalog import STATS, Catalog

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_RULE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|==|!=|<|>)\s*([0-9]*\.?[0-9]+)\s*(us|ms|s|%)?\s*$")
_LIMIT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(%?)\s*$")
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}
#: ``--max-errors`` when not given: errors may be at most this percentage of a part's operations.
DEFAULT_MAX_ERRORS = (1.0, True)
FAIL_IF = "--fail-if"
MAX_ERRORS = "--max-errors"


class ThresholdError(ValueError):
    """A rule cannot be parsed or names nothing the scenario records; the message quotes it."""


class Histogram(Protocol):
    """The part of ``hdrh.histogram.HdrHistogram`` a rule reads (values in microseconds)."""

    def get_total_count(self) -> int: ...

    def get_value_at_percentile(self, percentile: float) -> int: ...

    def get_min_value(self) -> int: ...

    def get_max_value(self) -> int: ...

    def get_mean_value(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Measure:
    """What a rule's METRIC reads: a histogram's statistic, a counter, or the achieved rate."""

    kind: Literal["latency", "counter", "rate"]
    #: The histogram or counter, as the report names it ("" for the rate).
    name: str = ""
    #: The statistic of a histogram (``p99``).
    stat: str = ""
    #: The counter a percentage is of (the part's ``operations``).
    base: str = ""


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str  # as the user wrote it
    op: str
    value: float  # milliseconds for a latency, else a count, a percentage or a rate
    measure: Measure
    percent: bool = False
    #: The option the rule came from: ``--fail-if``, or ``--max-errors`` (given or by default).
    origin: str = FAIL_IF

    def __str__(self) -> str:
        unit = "%" if self.percent else ("ms" if self.measure.kind == "latency" else "")
        return f"{self.metric}{self.op}{self.value:g}{unit}"


@dataclass(frozen=True, slots=True)
class Verdict:
    threshold: Threshold
    actual: float
    passed: bool


def resolve(metric: str, catalog: Catalog) -> Measure | None:
    """What ``metric`` reads in a run of ``catalog``'s scenario, or None when it records no such thing."""
    if metric == "rate":
        return Measure("rate") if catalog.main is not None else None
    for stat in sorted(STATS, key=len, reverse=True):  # p99.9 before p99: "x.p99.9" is x's p99.9
        if metric == stat:
            if catalog.main is None:
                return None
            return Measure("latency", catalog.main.prefix + "latency", stat)
        if metric.endswith("." + stat):
            histogram = metric[: -len(stat) - 1]
            return Measure("latency", histogram, stat) if histogram in catalog.metrics() else None
    part = catalog.counter_part(metric)
    if part is None:
        return None
    return Measure("counter", metric, base=(part if part.successes else catalog.main or part).prefix + "operations")


def known_names(catalog: Catalog) -> list[str]:
    """Every METRIC a rule may name, families written as ``status_<code>``."""
    bare = [*STATS, "rate"] if catalog.main is not None else []
    named = [f"{m}.{s}" for m in catalog.metrics() for s in STATS]
    return [*bare, *catalog.counters(), *(prefix + f.shown for prefix, f in catalog.families()), *named]


def suggest(metric: str, catalog: Catalog) -> str | None:
    """The known name closest to ``metric`` (difflib), family members spelt out: ``staus_404``
    gives ``status_404``."""
    candidates = [n for n in known_names(catalog) if "<" not in n]
    for prefix, family in catalog.families():
        # The same value after the stem: ``staus_404`` -> ``status_404``.
        stem = prefix + family.stem
        pieces = metric.split("_", stem.count("_"))
        if len(pieces) == stem.count("_") + 1 and family.matches(family.stem + pieces[-1]):
            candidates.append(stem + pieces[-1])
    close = difflib.get_close_matches(metric, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def parse_thresholds(text: str, catalog: Catalog) -> list[Threshold]:
    """Parse comma-separated rules against what the scenario records.

    Raises:
        ThresholdError: a rule is malformed, names a metric the scenario does not record, or
            has a unit that does not fit its metric.
    """
    rules = []
    for part in text.split(","):
        rule = part.strip()
        if not rule:
            continue
        match = _RULE.match(rule)
        if not match:
            raise ThresholdError(f"cannot read rule {rule!r}: expected METRIC OP VALUE, e.g. p99<50ms")
        metric, op, number, unit = match.groups()
        measure = resolve(metric, catalog)
        if measure is None:
            raise ThresholdError(_unknown(metric, rule, catalog))
        value = float(number)
        if measure.kind == "latency":
            if unit == "%":
                raise ThresholdError(f"rule {rule!r}: {metric} is a latency; use us, ms or s, not %")
            rules.append(Threshold(metric, op, value * _TO_MS[unit], measure))
        elif measure.kind == "rate":
            if unit is not None:
                raise ThresholdError(f"rule {rule!r}: rate is operations per second; give a plain number")
            rules.append(Threshold(metric, op, value, measure))
        else:
            if unit in ("us", "ms", "s"):
                raise ThresholdError(f"rule {rule!r}: {metric} is a count; use a number or a percentage")
            rules.append(Threshold(metric, op, value, measure, percent=unit == "%"))
    if not rules:
        raise ThresholdError("no rules given")
    return rules


def _unknown(metric: str, rule: str, catalog: Catalog) -> str:
    if catalog.main is None and resolve(metric, catalog_with_main(catalog)) is not None:
        return (
            f"rule {rule!r}: this run has no main latency (a mixed run without [friends]); "
            f"name the histogram, e.g. search.latency.{metric if metric != 'rate' else 'p99'}"
        )
    close = suggest(metric, catalog)
    if close is not None:
        return f"rule {rule!r}: unknown metric {metric!r}; did you mean {close!r}?"
    return f"rule {rule!r}: unknown metric {metric!r}; known: {', '.join(known_names(catalog))}"


def catalog_with_main(catalog: Catalog) -> Catalog:
    """``catalog`` with its first judged part as the main one (to tell "no main" from "unknown")."""
    judged = catalog.judged()
    return Catalog(catalog.parts, judged[0] if judged else None)


def parse_limit(text: str, flag: str = MAX_ERRORS) -> tuple[float, bool]:
    """``1%`` -> (1.0, True), a percentage of operations; ``5`` -> (5.0, False), a count.

    Raises:
        ThresholdError: anything else.
    """
    match = _LIMIT.match(text)
    if not match:
        raise ThresholdError(f"{flag}: expected a count or a percentage such as 1%, got {text!r}")
    return float(match.group(1)), match.group(2) == "%"


def error_rules(catalog: Catalog, rules: list[Threshold], max_errors: tuple[float, bool] | None) -> list[Threshold]:
    """The errors rule of each judged part: ``errors<=LIMIT``.

    A limit the user gave (``max_errors``) always applies; the default one
    (:data:`DEFAULT_MAX_ERRORS`) only to a part none of whose ``rules`` is on its errors.
    """
    out = []
    given = {rule.measure.name for rule in rules}
    for part in catalog.judged():
        name = part.prefix + "errors"
        if max_errors is None and name in given:
            continue
        value, percent = max_errors if max_errors is not None else DEFAULT_MAX_ERRORS
        measure = Measure("counter", name, base=part.prefix + "operations")
        out.append(Threshold(name, "<=", value, measure, percent=percent, origin=MAX_ERRORS))
    return out


def stat_ms(histogram: Histogram | None, stat: str) -> float:
    """Statistic ``stat`` (one of :data:`~loadgen.catalog.STATS`) of a histogram of
    microseconds, in milliseconds; NaN when it holds nothing."""
    if histogram is None or histogram.get_total_count() == 0:
        return math.nan
    if stat == "max":
        return histogram.get_max_value() / 1000.0
    if stat == "min":
        return histogram.get_min_value() / 1000.0
    if stat == "mean":
        return histogram.get_mean_value() / 1000.0
    return histogram.get_value_at_percentile(float(stat[1:])) / 1000.0


def evaluate(
    rules: list[Threshold], histograms: Mapping[str, Histogram], counters: Mapping[str, float], rate: float
) -> list[Verdict]:
    """Judge each rule against a run's figures.

    A latency with no measurement fails, whatever the rule; so does a percentage of no
    operations that counted something (it is infinite).

    Args:
        rules: parsed rules.
        histograms: the run's histograms by name (microseconds).
        counters: counts by name; a missing counter counts as 0.
        rate: achieved operations per second.
    """
    verdicts = []
    for rule in rules:
        measure = rule.measure
        if measure.kind == "latency":
            actual = stat_ms(histograms.get(measure.name), measure.stat)
        elif measure.kind == "rate":
            actual = rate
        else:
            actual = float(counters.get(measure.name, 0))
            if rule.percent:
                operations = float(counters.get(measure.base, 0))
                actual = 100.0 * actual / operations if operations else (math.inf if actual else 0.0)
        passed = not math.isnan(actual) and _OPS[rule.op](actual, rule.value)
        verdicts.append(Verdict(rule, actual, passed))
    return verdicts
