"""What a report says about a run, from fixed figures: the verdict and its reasons, the
warnings that the generator may have set the pace, offered against achieved rate, errors by
kind with their samples, the per-second gauges, and the JUnit XML that CI systems read."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from geo_common.tokens import mint_token
from loadgen.catalog import catalog_for
from loadgen.junit import file_problem, junit_xml
from loadgen.ledger import Ledger
from loadgen.outcome import RUN_CHECK, achieved_rate, checks, failed_reasons, generator_warnings, offered_rate
from loadgen.redact import REDACTED
from loadgen.report import build_summary, print_summary, timeline
from loadgen.report_html import error_kinds, render
from loadgen.stats import SAMPLE_BYTES, SAMPLES, Recorder
from loadgen.thresholds import Verdict, error_rules, evaluate, parse_thresholds

SEARCH = catalog_for("search")


def histogram_of_ms(*values_ms: float) -> HdrHistogram:
    h = HdrHistogram(1, 600_000_000, 3)
    for v in values_ms:
        h.record_value(int(v * 1000))
    return h


def judged(rules: str, counters: dict[str, int], latency_ms: float = 20.0) -> list[Verdict]:
    """The verdicts of ``--fail-if rules`` (and the default ``--max-errors``) over fixed figures."""
    parsed = parse_thresholds(rules, SEARCH)
    every = [*parsed, *error_rules(SEARCH, parsed, None)]
    return evaluate(every, {"latency": histogram_of_ms(latency_ms)}, counters, 100.0)


def p99s(**p99_ms: float) -> dict[str, dict[str, float]]:
    return {name.replace("__", "."): {"p99": value} for name, value in p99_ms.items()}


# --- the verdict -------------------------------------------------------------------------


def test_each_fail_if_rule_is_a_check_and_the_run_has_one_of_its_own() -> None:
    verdicts = judged("p99<50ms,status_503==0", {"operations": 100, "status_503": 2, "errors": 2})
    found = checks({}, verdicts)
    assert [(c.name, c.passed, c.actual) for c in found] == [
        ("p99<50ms", True, "20 ms"),
        ("status_503==0", False, "2"),
        (RUN_CHECK, False, ""),  # 2% errors, above the default --max-errors of 1%
    ]
    assert found[1].message == "status_503==0 failed: status_503 was 2"
    assert found[2].message == "errors was 2%, above --max-errors 1%"


def test_the_runners_reasons_and_crashed_workers_fail_the_runs_own_check() -> None:
    verdicts = judged("p99<50ms", {"operations": 100, "status_404": 100, "errors": 100})
    summary = {
        "failures": ["search: no search answered 2xx of 100 sent (status_404=100)"],
        "worker_failures": ["worker 1 died with exit code -9"],
    }
    # The runner's reasons say it all: the --max-errors verdict is not repeated.
    assert failed_reasons(summary, verdicts) == [
        "search: no search answered 2xx of 100 sent (status_404=100)",
        "worker 1 died with exit code -9",
    ]


def test_a_run_that_held_has_no_reasons() -> None:
    assert failed_reasons({}, judged("p99<50ms,errors==0", {"operations": 100, "errors": 0})) == []


# --- was the generator the bottleneck? ---------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "counters", "rates", "warned"),
    [
        (p99s(latency=10.0, loop_lag=6.0), {}, {}, ["loop_lag p99 6 ms against latency p99 10 ms"]),
        (p99s(latency=20.0, loop_lag=6.0), {}, {}, []),  # 30% of the latency
        (p99s(latency=5.0, loop_lag=4.0), {}, {}, []),  # 80%, but under 5 ms
        (p99s(latency=8.0, send_lag=7.0), {}, {}, ["send_lag p99 7 ms against latency p99 8 ms"]),
        (p99s(search__latency=8.0, search__send_lag=7.0), {}, {}, ["search.send_lag p99 7 ms"]),
        (p99s(latency=8.0), {"generator_cpu_saturated_s": 4}, {}, ["over 90% of a core for 4 s"]),
        (p99s(latency=8.0), {}, {"offered_rate": 100.0, "achieved_rate": 94.0}, ["achieved 94.0 /s of the 100"]),
        (p99s(latency=8.0), {}, {"offered_rate": 100.0, "achieved_rate": 96.0}, []),
        (p99s(latency=8.0), {}, {"offered_rate": 100.0, "achieved_rate": None}, []),
    ],
)
def test_the_generator_is_suspected_only_past_the_documented_limits(
    metrics: dict[str, dict[str, float]], counters: dict[str, int], rates: dict[str, Any], warned: list[str]
) -> None:
    warnings = generator_warnings({"metrics": metrics, "counters": counters, **rates})
    assert len(warnings) == len(warned), warnings
    for warning, needle in zip(warnings, warned, strict=True):
        assert needle in warning


def test_loop_lag_with_no_latency_at_all_is_suspect() -> None:
    (warning,) = generator_warnings({"metrics": {"loop_lag": {"p99": 30.0}, "latency": {"p99": math.nan}}})
    assert "loop_lag p99 30 ms" in warning


def test_achieved_rate_counts_the_whole_seconds_of_the_window() -> None:
    assert achieved_rate({0: 100, 1: 98, 2: 40}, 2.5) == 99.0  # second 2 is cut by the window's end
    assert achieved_rate({0: 100, 2: 100, 3: 100}, 3.0) == pytest.approx(200 / 3)  # a second of nothing counts
    assert achieved_rate({0: 5}, 0.5) is None


def test_offered_rate_by_scenario() -> None:
    assert offered_rate("search", {"rate": 250}) == (250.0, "searches/s")
    friends = {"users": 2000, "online_fraction": 0.5, "interval_s": 5.0}
    assert offered_rate("friends", friends) == (200.0, "updates/s")
    assert offered_rate("mixed", {"search": {"rate": 40.0}, "friends": friends}) == (40.0, "searches/s")
    assert offered_rate("mixed", {"search": None, "friends": friends}) is None


# --- samples, gauges, and the summary that carries them ----------------------------------


def test_a_recorder_keeps_the_first_few_answers_of_each_kind_cut_short() -> None:
    rec = Recorder()
    for i in range(SAMPLES + 2):
        rec.sample("status_503", f"answer {i}".encode())
    rec.sample("status_500", b"x" * 1000)
    rec.sample("status_502", b"\xff\xfe not utf-8")
    assert rec.samples["status_503"] == [f"answer {i}" for i in range(SAMPLES)]
    assert rec.samples["status_500"] == ["x" * SAMPLE_BYTES + " [cut]"]
    assert rec.samples["status_502"] == ["\ufffd\ufffd not utf-8"]


def test_gauges_and_samples_cross_processes_and_add_up() -> None:
    one, two = Recorder(), Recorder()
    one.gauge("in_flight", 0, 3)
    one.gauge("in_flight", 1, 5)
    two.gauge("in_flight", 1, 2)
    two.gauge("in_flight", 2, 7)
    one.sample("status_503", b"a")
    two.sample("status_503", b"b")
    two.sample("status_503", b"c")
    two.sample("status_503", b"d")
    merged = Recorder()
    for worker in (one, two):
        merged.merge(Recorder.from_dict(worker.to_dict()))
    assert merged.gauges == {"in_flight": {0: 3, 1: 7, 2: 7}}
    assert merged.samples == {"status_503": ["a", "b", "c"]}
    mixed = Recorder()
    mixed.absorb(merged, prefix="search.")
    assert mixed.gauges == {"search.in_flight": {0: 3, 1: 7, 2: 7}}
    assert mixed.samples == {"search.status_503": ["a", "b", "c"]}


def search_recorder() -> Recorder:
    rec = Recorder()
    for second, count in ((0, 100), (1, 100), (2, 3)):
        for _ in range(count):
            rec.complete(second, 0.002)
    rec.count("operations", 203)
    rec.gauge("in_flight", 0, 2)
    rec.gauge("in_flight", 3, 0)
    return rec


def test_the_summary_holds_the_context_a_reader_needs() -> None:
    rec = search_recorder()
    token = mint_token("a-key-of-at-least-thirty-two-bytes-long", 7, ttl_s=60)
    rec.sample("status_401", f'{{"detail": "bad token {token}"}}'.encode())
    summary = build_summary("search", rec, 3.2, {"url": "http://127.0.0.1:1", "rate": 100.0, "duration_s": 2.0})
    assert summary["offered_rate"] == 100.0 and summary["achieved_rate"] == 100.0
    assert summary["rate_unit"] == "searches/s"
    assert summary["gauges"] == {"in_flight": {"peak": 2, "mean": 1.0}}
    assert summary["error_samples"] == {"status_401": [REDACTED]}  # never a token
    assert summary["metrics"]["latency"]["p95"] == pytest.approx(2.0, rel=0.01)
    assert set(summary["run"]) == {"started_utc", "version", "host"}
    assert summary["warnings"] == []


def test_the_printed_summary_names_the_first_lost_deliveries() -> None:
    rec = Recorder()
    led = Ledger(rec, settle_after_s=5.0)
    for seq in range(1, 6):
        led.on_send(1, seq * 1000, seq, intended=10.0 + seq, sent=10.0 + seq, expected=[2])
    led.on_receive(2, 1, 5000, now=15.01, start=10.0)
    led.settle(100.0, everything=True)
    out = io.StringIO()
    print_summary(build_summary("friends", rec, 6.0, {"duration_s": 5.0}), [], out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("lost: ")]
    assert rec.counters["lost"] == 4 and len(lines) == SAMPLES
    assert lines[0] == "lost: update 1 of user 1 to user 2: not arrived 89.000 s after it was sent"


def test_the_timeline_spans_every_second_with_a_value_and_gaps_are_empty() -> None:
    columns = timeline(search_recorder())
    assert list(columns)[-1] == "in_flight"
    assert columns["second"] == [0, 1, 2, 3]
    assert columns["completed"] == [100, 100, 3, 0]
    assert columns["in_flight"][0] == 2 and math.isnan(columns["in_flight"][1]) and columns["in_flight"][3] == 0
    assert math.isnan(columns["p99_ms"][3])


def test_errors_by_kind_are_the_catalogs_failures_and_the_totals_of_each_part() -> None:
    summary = {
        "scenario": "mixed",
        "options": {"search": {"rate": 1}, "friends": {"users": 2}},
        "counters": {
            "operations": 50,
            "errors": 2,
            "disconnects": 1,
            "delivered": 48,
            "search.operations": 200,
            "search.errors": 10,
            "search.status_5xx": 10,
            "search.status_503": 10,
            "search.status_200": 190,
            "generator_cpu_ms": 30,
        },
        "error_samples": {"search.status_503": ["busy"]},
    }
    rows = {k.name: (k.count, k.share, k.samples) for k in error_kinds(summary)}
    assert rows == {
        "errors": (2, 4.0, ()),
        "search.errors": (10, 5.0, ()),
        "search.status_503": (10, 5.0, ("busy",)),
        "search.status_5xx": (10, 5.0, ()),
        "disconnects": (1, 2.0, ()),
    }
    assert [k.name for k in error_kinds(summary)][:2] == ["search.errors", "errors"]  # totals first, larger first


def test_the_page_escapes_what_it_shows_and_warns_about_the_generator() -> None:
    rec = search_recorder()
    rec.sample("status_500", b"<script>alert(1)</script>")
    rec.count("errors", 1)
    rec.count("status_500", 1)
    summary = build_summary("search", rec, 3.0, {"url": "http://127.0.0.1:1", "rate": 100.0, "duration_s": 2.0})
    summary["warnings"] = ["requests left late: send_lag p99 9 ms against latency p99 10 ms"]
    page = render(summary, judged("p99<1ms", dict(rec.counters)))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert (
        '<section id="verdict" class="banner fail"><h2>FAIL</h2><ul><li>p99&lt;1ms failed: p99 was 20 ms</li>' in page
    )
    assert '<section id="warnings"' in page and "send_lag p99 9 ms" in page


# --- JUnit -------------------------------------------------------------------------------


def test_junit_has_a_case_per_rule_and_one_for_the_run_with_standard_attributes() -> None:
    verdicts = judged("p99<50ms,status_503==0,rate>=90", {"operations": 100, "status_503": 1, "errors": 1})
    summary = {
        "scenario": "search",
        "wall_s": 12.3456,
        "options": {"url": "http://127.0.0.1:1", "rate": 100.0},
        "run": {"started_utc": "2026-12-06T03:36:05Z", "version": "0.1.0", "host": "ci-7"},
        "warnings": ["the generator used over 90% of a core for 4 s"],
    }
    root = ET.fromstring(junit_xml(summary, verdicts))
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures")) == ("4", "1")
    (suite,) = root
    assert suite.tag == "testsuite" and suite.get("name") == "geo-loadgen search"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "4",
        "1",
        "0",
        "0",
    )
    assert suite.get("time") == "12.346" and suite.get("timestamp") == "2026-12-06T03:36:05"
    assert suite.get("hostname") == "ci-7"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["url"] == "http://127.0.0.1:1" and properties["version"] == "0.1.0"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["p99<50ms", "status_503==0", "rate>=90", RUN_CHECK]
    assert all(c.get("classname") == "geo-loadgen search" and c.get("time") == "0" for c in cases)
    failures = [(c.get("name"), f.get("message"), f.get("type")) for c in cases for f in c.findall("failure")]
    assert failures == [("status_503==0", "status_503==0 failed: status_503 was 1", "threshold")]
    # A failure comes before the case's output, as JUnit's schema orders them.
    assert [child.tag for child in cases[1]] == ["failure", "system-out"]
    assert "over 90% of a core" in (suite.findtext("system-out") or "")


def test_junit_names_every_reason_the_run_failed_on_its_own() -> None:
    verdicts = judged("p99<50ms", {"operations": 100, "errors": 100, "status_404": 100})
    summary = {"scenario": "search", "wall_s": 1.0, "failures": ["first reason", "second reason"]}
    root = ET.fromstring(junit_xml(summary, verdicts))
    (suite,) = root
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failure = suite.find(f'testcase[@name="{RUN_CHECK}"]/failure')
    assert failure is not None and failure.get("type") == "run"
    assert failure.get("message") == "first reason" and failure.text == "first reason\nsecond reason"


def test_a_junit_file_that_could_not_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    assert file_problem(tmp_path / "new" / "deeper" / "junit.xml") is None
    assert file_problem(tmp_path) == "is a folder; give a file name"
    (tmp_path / "plain").write_text("")
    assert file_problem(tmp_path / "plain" / "junit.xml") == f"{tmp_path / 'plain'} is not a folder"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgen",
            "search",
            "--url",
            "http://127.0.0.1:9",
            "--rate",
            "1",
            "--junit",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"geo-loadgen: argument --junit: {tmp_path} is a folder; give a file name\n"
