"""``--fail-if`` and ``--max-errors`` rules: what they accept, what they refuse, how they judge."""

from __future__ import annotations

import math

import pytest
from hdrh.histogram import HdrHistogram

from loadgen.catalog import Catalog, catalog_for
from loadgen.thresholds import (
    DEFAULT_MAX_ERRORS,
    MAX_ERRORS,
    Measure,
    ThresholdError,
    error_rules,
    evaluate,
    parse_limit,
    parse_thresholds,
    resolve,
)

SEARCH = catalog_for("search")
FRIENDS = catalog_for("friends")
MIXED = catalog_for("mixed")
MIXED_SEARCH_ONLY = catalog_for("mixed", friends=False)


def histogram_of_ms(*values_ms: float) -> HdrHistogram:
    h = HdrHistogram(1, 600_000_000, 3)
    for v in values_ms:
        h.record_value(int(v * 1000))
    return h


@pytest.mark.parametrize(
    ("catalog", "metric", "measure"),
    [
        (SEARCH, "p95", Measure("latency", "latency", "p95")),
        (SEARCH, "p99.9", Measure("latency", "latency", "p99.9")),
        (SEARCH, "min", Measure("latency", "latency", "min")),
        (SEARCH, "service_time.p99.9", Measure("latency", "service_time", "p99.9")),
        (SEARCH, "loop_lag.max", Measure("latency", "loop_lag", "max")),
        (SEARCH, "rate", Measure("rate")),
        (SEARCH, "errors", Measure("counter", "errors", base="operations")),
        (SEARCH, "status_404", Measure("counter", "status_404", base="operations")),
        (SEARCH, "status_5xx", Measure("counter", "status_5xx", base="operations")),
        (SEARCH, "connect_error", Measure("counter", "connect_error", base="operations")),
        (SEARCH, "verify_mismatches", Measure("counter", "verify_mismatches", base="operations")),
        (SEARCH, "generator_cpu_ms", Measure("counter", "generator_cpu_ms", base="operations")),
        (FRIENDS, "lost", Measure("counter", "lost", base="operations")),
        (FRIENDS, "duplicates", Measure("counter", "duplicates", base="operations")),
        (FRIENDS, "connect_error_InvalidStatus", Measure("counter", "connect_error_InvalidStatus", base="operations")),
        (FRIENDS, "error_rate_limited", Measure("counter", "error_rate_limited", base="operations")),
        (FRIENDS, "event_reconnect_storm", Measure("counter", "event_reconnect_storm", base="operations")),
        (FRIENDS, "delivery_since_sent.p95", Measure("latency", "delivery_since_sent", "p95")),
        (MIXED, "p99", Measure("latency", "latency", "p99")),
        (MIXED, "search.latency.p95", Measure("latency", "search.latency", "p95")),
        (MIXED, "search.errors", Measure("counter", "search.errors", base="search.operations")),
        (MIXED, "search.status_200", Measure("counter", "search.status_200", base="search.operations")),
        (MIXED, "lost", Measure("counter", "lost", base="operations")),
    ],
)
def test_known_metrics_resolve(catalog: Catalog, metric: str, measure: Measure) -> None:
    assert resolve(metric, catalog) == measure


@pytest.mark.parametrize(
    ("catalog", "metric"),
    [
        (SEARCH, "p98"),
        (SEARCH, "lost"),  # friends only
        (SEARCH, "status_4041"),
        (SEARCH, "status_abc"),
        (SEARCH, "search.errors"),  # mixed only
        (SEARCH, "latency"),  # a histogram, not a figure of it
        (SEARCH, "nothing.p99"),
        (FRIENDS, "status_200"),
        (FRIENDS, "timeout"),
        (FRIENDS, "event_meteor"),
        (MIXED, "errors.p99"),
        (MIXED, "search.lost"),
        (MIXED_SEARCH_ONLY, "p99"),
        (MIXED_SEARCH_ONLY, "rate"),
        (MIXED_SEARCH_ONLY, "lost"),
    ],
)
def test_unknown_metrics_do_not_resolve(catalog: Catalog, metric: str) -> None:
    assert resolve(metric, catalog) is None


@pytest.mark.parametrize(
    ("catalog", "text", "needle"),
    [
        (SEARCH, "erors==0", "unknown metric 'erors'; did you mean 'errors'?"),
        (SEARCH, "errors==0,timeuot==0", "did you mean 'timeout'?"),
        (SEARCH, "staus_503==0", "did you mean 'status_503'?"),
        (SEARCH, "sevice_time.p95<5ms", "did you mean 'service_time.p95'?"),
        (FRIENDS, "lots==0", "did you mean 'lost'?"),
        (FRIENDS, "duplicate==0", "did you mean 'duplicates'?"),
        (FRIENDS, "delivery.p95<1s", "did you mean 'delivery_since_sent.p95'?"),
        (MIXED, "search.p99<10ms", "did you mean 'search.latency.p99'?"),
        (MIXED_SEARCH_ONLY, "p99<10ms", "no main latency (a mixed run without [friends]); name the histogram"),
        (SEARCH, "zzzzzz==0", "unknown metric 'zzzzzz'; known: p50, p90, p95"),
        (SEARCH, "p95<10%", "p95 is a latency; use us, ms or s, not %"),
        (SEARCH, "errors<3ms", "errors is a count; use a number or a percentage"),
        (SEARCH, "rate>5%", "rate is operations per second"),
        (SEARCH, "p99 50ms", "cannot read rule"),
        (SEARCH, " , ", "no rules given"),
    ],
)
def test_bad_rules_are_refused_with_the_closest_known_name(catalog: Catalog, text: str, needle: str) -> None:
    with pytest.raises(ThresholdError) as info:
        parse_thresholds(text, catalog)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_rules_read_back_as_written_in_milliseconds() -> None:
    rules = parse_thresholds("p95<10ms, p99.9<=2s,max<500us,errors<0.1%,lost==0,rate>=99.5", FRIENDS)
    assert [str(r) for r in rules] == ["p95<10ms", "p99.9<=2000ms", "max<0.5ms", "errors<0.1%", "lost==0", "rate>=99.5"]


def test_latency_rules_read_the_named_histogram() -> None:
    histograms = {"latency": histogram_of_ms(*range(1, 101)), "send_lag": histogram_of_ms(7.0)}
    rules = parse_thresholds("p95<=95.1ms,p95>94.9ms,min<1.01ms,max>=100ms,mean<50ms,send_lag.p99<7.1ms", SEARCH)
    verdicts = evaluate(rules, histograms, {}, 0.0)
    assert [v.passed for v in verdicts] == [True, True, True, True, False, True]
    assert verdicts[4].actual == pytest.approx(50.5, abs=0.1)


def test_a_latency_with_no_measurement_fails_whatever_the_rule() -> None:
    rules = parse_thresholds("p99!=1ms,p99>=0,send_lag.max<1s", SEARCH)
    verdicts = evaluate(rules, {"latency": histogram_of_ms()}, {}, 0.0)
    assert all(math.isnan(v.actual) and not v.passed for v in verdicts)


def test_a_percentage_is_of_its_own_parts_operations() -> None:
    counters = {"operations": 1000, "errors": 5, "search.operations": 100, "search.errors": 5}
    verdicts = evaluate(parse_thresholds("errors<1%,search.errors<1%,lost==0", MIXED), {}, counters, 0.0)
    assert [(v.actual, v.passed) for v in verdicts] == [(0.5, True), (5.0, False), (0.0, True)]


def test_a_percentage_of_no_operations_is_infinite_when_it_counted_anything() -> None:
    rules = parse_thresholds("errors<50%", SEARCH)
    (none,) = evaluate(rules, {}, {}, 0.0)
    (some,) = evaluate(rules, {}, {"errors": 3}, 0.0)
    assert (none.actual, none.passed) == (0.0, True)
    assert (some.actual, some.passed) == (math.inf, False)


def test_rate_is_the_achieved_rate() -> None:
    verdicts = evaluate(parse_thresholds("rate>=99,rate<99", SEARCH), {}, {}, 99.5)
    assert [v.passed for v in verdicts] == [True, False]


def test_every_judged_part_gets_the_default_errors_rule_unless_it_has_its_own() -> None:
    assert DEFAULT_MAX_ERRORS == (1.0, True)
    default = error_rules(MIXED, [], None)
    assert [(str(r), r.measure.base, r.origin) for r in default] == [
        ("errors<=1%", "operations", MAX_ERRORS),
        ("search.errors<=1%", "search.operations", MAX_ERRORS),
    ]
    own = parse_thresholds("search.errors==0", MIXED)
    assert [str(r) for r in error_rules(MIXED, own, None)] == ["errors<=1%"]
    # A limit given is always applied, beside the user's own rules.
    assert [str(r) for r in error_rules(MIXED, own, (5.0, False))] == ["errors<=5", "search.errors<=5"]
    assert [str(r) for r in error_rules(SEARCH, [], (0.5, True))] == ["errors<=0.5%"]
    assert [str(r) for r in error_rules(MIXED_SEARCH_ONLY, [], None)] == ["search.errors<=1%"]


@pytest.mark.parametrize(("text", "limit"), [("1%", (1.0, True)), ("0", (0.0, False)), (" 2.5 % ", (2.5, True))])
def test_max_errors_is_a_count_or_a_percentage(text: str, limit: tuple[float, bool]) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["", "a few", "-1", "1ms", "1%%", "1e3"])
def test_max_errors_refuses_anything_else(text: str) -> None:
    with pytest.raises(ThresholdError, match="--max-errors: expected a count or a percentage such as 1%"):
        parse_limit(text)
