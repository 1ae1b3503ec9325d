"""``--fail-if "p99<50ms,errors<0.1%,lost==0"``: pass/fail rules over a run's summary.

A rule is ``METRIC OP VALUE[UNIT]``. Latency metrics (``p50 p90 p99 p99.9 max mean``) take
``us``, ``ms`` (the default) or ``s``; counters (``errors``, ``lost``, ``duplicates``, or any
counter the report lists) take a plain count or a percentage of the operations; ``rate``
takes operations per second.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_RULE = re.compile(r"^\s*([a-z_][a-z0-9_.]*)\s*(<=|>=|==|!=|<|>)\s*([0-9]*\.?[0-9]+)\s*(us|ms|s|%)?\s*$")
LATENCY_METRICS = ("p50", "p90", "p99", "p99.9", "max", "mean")
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}


class ThresholdError(ValueError):
    """A ``--fail-if`` rule cannot be parsed; the message quotes it."""


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str
    op: str
    value: float
    percent: bool = False

    def __str__(self) -> str:
        unit = "%" if self.percent else ("ms" if self.metric in LATENCY_METRICS else "")
        return f"{self.metric}{self.op}{self.value:g}{unit}"


@dataclass(frozen=True, slots=True)
class Verdict:
    threshold: Threshold
    actual: float
    passed: bool


def parse_thresholds(text: str) -> list[Threshold]:
    """Parse comma-separated rules.

    Raises:
        ThresholdError: a rule is malformed, or a unit does not fit its metric.
    """
    rules = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = _RULE.match(part)
        if not match:
            raise ThresholdError(f"cannot read rule {part.strip()!r}: expected METRIC OP VALUE, e.g. p99<50ms")
        metric, op, number, unit = match.groups()
        value = float(number)
        if metric in LATENCY_METRICS:
            if unit == "%":
                raise ThresholdError(f"rule {part.strip()!r}: latency takes us, ms or s, not %")
            rules.append(Threshold(metric, op, value * _TO_MS[unit]))
        else:
            if unit in ("us", "ms", "s"):
                raise ThresholdError(f"rule {part.strip()!r}: {metric} is a count; use a number or a percentage")
            rules.append(Threshold(metric, op, value, percent=unit == "%"))
    if not rules:
        raise ThresholdError("no rules given")
    return rules


def evaluate(
    rules: list[Threshold], latency_ms: Mapping[str, float], counters: Mapping[str, float], operations: int, rate: float
) -> list[Verdict]:
    """Judge each rule against a run's figures.

    Args:
        rules: parsed rules.
        latency_ms: the main metric's summary (``p99`` etc., milliseconds).
        counters: counts by kind; a missing counter counts as 0.
        operations: the total the percentages are taken of.
        rate: achieved operations per second.
    """
    verdicts = []
    for rule in rules:
        if rule.metric in LATENCY_METRICS:
            actual = latency_ms.get(rule.metric, float("nan"))
        elif rule.metric == "rate":
            actual = rate
        else:
            actual = float(counters.get(rule.metric, 0))
            if rule.percent:
                actual = 100.0 * actual / operations if operations else 0.0
        verdicts.append(Verdict(rule, actual, bool(_OPS[rule.op](actual, rule.value))))
    return verdicts
