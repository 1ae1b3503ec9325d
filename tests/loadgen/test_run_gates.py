"""A run CI can trust: mistaken rules and targets refused before anything is sent (exit 2),
and a run that succeeded at nothing, or at too little, failing on its own (exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadgen.catalog import catalog_for
from tests.loadgen.conftest import StallServer
from tests.loadgen.runs import write_key
from tests.loadgen.stand_ins import FailingApi, NotTheApi

UNREACHABLE = "http://127.0.0.1:9"


def geo_loadgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadgen", *args, "--no-progress"], capture_output=True, text=True, timeout=120
    )


def refused(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused run printed (exit 2, nothing on stdout)."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geo-loadgen: "), proc.stderr
    assert proc.stdout == ""
    return lines[0]


def search(url: str, *args: str, rate: str = "100", duration: str = "1s") -> subprocess.CompletedProcess[str]:
    return geo_loadgen("search", "--url", url, "--rate", rate, "--duration", duration, "--points", "uniform", *args)


def assert_names_known(report: dict[str, Any], scenario: str) -> None:
    """Every figure a run reported is one the catalog declares, so a rule can name it."""
    catalog = catalog_for(scenario)
    assert set(report["metrics"]) <= set(catalog.metrics())
    assert [c for c in report["counters"] if catalog.counter_part(c) is None] == []


@pytest.mark.parametrize(
    ("rule", "suggestion"),
    [
        ("erors==0", "did you mean 'errors'?"),
        ("p95<10ms,eror<1%", "did you mean 'errors'?"),  # the second rule is checked too
        ("staus_404==0", "did you mean 'status_404'?"),
        ("latency.p98<5ms", "unknown metric 'latency.p98'; did you mean 'latency.p9"),
        ("lost==0", "unknown metric 'lost'"),  # a friends counter, never recorded by searches
        ("p99<<3", "cannot read rule"),
    ],
)
def test_a_rule_on_anything_the_scenario_does_not_record_is_refused_before_sending(rule: str, suggestion: str) -> None:
    with StallServer(stall_after=0) as server:
        line = refused(search(server.url, "--fail-if", rule))
        assert server.requests == 0
    assert suggestion in line


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["--fail-if", "lots==0"], "did you mean 'lost'?"),
        (["--fail-if", "delivery.p95<1s"], "did you mean 'delivery_since_sent.p95'?"),
        (["--fail-if", "conect_error_InvalidStatus==0"], "did you mean 'connect_error_InvalidStatus'?"),
        (["--max-errors", "a few"], "--max-errors: expected a count or a percentage such as 1%"),
    ],
)
def test_friends_rules_are_checked_before_the_targets_are_asked_anything(args: list[str], suggestion: str) -> None:
    proc = geo_loadgen("friends", "--api", UNREACHABLE, "--ws", "ws://127.0.0.1:9", "--users", "10", *args)
    assert suggestion in refused(proc)


@pytest.mark.parametrize(
    ("scenario", "rule", "needle"),
    [
        ("[search]\nurl = '{url}'\nrate = 10\n", "search.p99<5ms", "did you mean 'search.latency.p99'?"),
        ("[search]\nurl = '{url}'\nrate = 10\n", "p99<5ms", "has no main latency"),
        ("[search]\nurl = '{url}'\nrate = 10\n", "search.erors==0", "did you mean 'search.errors'?"),
        (
            "[search]\nurl = '{url}'\nrate = 10\nradius = 60000\n",
            "search.errors==0",
            "search.radius 60000 is above the API's largest radius, 50000 m",
        ),
        ("[search]\nurl = '{url}/v1'\nrate = 10\n", "search.errors==0", "search.url takes the service's base URL"),
    ],
)
def test_mixed_rules_and_targets_are_checked_before_sending(
    tmp_path: Path, scenario: str, rule: str, needle: str
) -> None:
    with StallServer(stall_after=0) as server:
        path = tmp_path / "s.toml"
        path.write_text(scenario.format(url=server.url))
        line = refused(geo_loadgen("mixed", "--scenario", str(path), "--fail-if", rule))
        assert server.requests == 0
    assert needle in line


def test_p95_and_min_and_named_histograms_are_rules(tmp_path: Path) -> None:
    with StallServer(stall_after=0) as server:
        proc = search(
            server.url, "--fail-if", "p95<5s,min>=0,service_time.p99.9<5s,send_lag.max<5s", "--out", str(tmp_path)
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in ("threshold p95<5000ms: pass", "threshold min>=0ms: pass", "threshold service_time.p99.9<5000ms: pass"):
        assert line in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counters"]["status_200"] == 100
    assert_names_known(report, "search")


@pytest.mark.parametrize(
    ("path", "args", "needle"),
    [
        # Every search would be a 404.
        ("/v1/search/nearby", [], "--url takes the service's base URL, not a path: give http://127.0.0.1:"),
        ("/?radius=5", [], "--url takes the service's base URL"),
        # Every search would be a 400: above the API's GEO_MAX_RADIUS_M, or its largest page.
        ("", ["--radius", "100000"], "--radius 100000 is above the API's largest radius, 50000 m"),
        ("", ["--radius", "0.5"], "--radius 0.5 is below the API's smallest radius, 1 m"),
        ("", ["--limit", "101"], "--limit 101 is above the API's largest page, 100"),
    ],
)
def test_a_run_that_would_only_get_errors_is_refused_before_sending(path: str, args: list[str], needle: str) -> None:
    with StallServer(stall_after=0) as server:
        line = refused(search(server.url + path, *args))
        assert server.requests == 0
    assert needle in line


def test_a_server_that_is_not_the_api_is_refused() -> None:
    with NotTheApi() as server:
        line = refused(search(server.url))
        assert server.requests == 0
    assert f"--url {server.url} does not answer as the geo location API (GET /openapi.json: HTTP 404)" in line


def test_a_friends_run_against_the_api_as_its_websocket_tier_is_refused(tmp_path: Path) -> None:
    key = write_key(tmp_path / "signing.key", "k" * 40)
    with StallServer(stall_after=0) as api:
        ws = "ws://" + api.url.removeprefix("http://")
        args = ("--users", "10", "--skip-setup", "--signing-key-file", str(key))
        line = refused(geo_loadgen("friends", "--api", api.url, "--ws", ws, *args))
    assert f"--ws {ws} is the search API, not the friends WebSocket tier" in line


def test_a_server_that_answers_every_search_with_an_error_fails_the_run(tmp_path: Path) -> None:
    with FailingApi(fail_every=1) as server:
        proc = search(server.url, "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    reason = "geo-loadgen: FAILED: search: no search answered 2xx of 100 sent (status_500=100)"
    assert proc.stderr.strip().splitlines()[-1] == reason
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["failures"] == [reason.removeprefix("geo-loadgen: FAILED: ")]
    assert_names_known(report, "search")


def test_errors_above_the_default_limit_fail_the_run_and_a_rule_of_ones_own_replaces_it() -> None:
    # Every 10th search is a 503: errors are 10% of operations, over the default 1%.
    with FailingApi(fail_every=10, status=503) as server:
        default = search(server.url)
        looser = search(server.url, "--max-errors", "20%")
        counted = search(server.url, "--max-errors", "9")
        own_rule = search(server.url, "--fail-if", "errors<50%")
        both = search(server.url, "--fail-if", "errors<50%", "--max-errors", "5%")
    assert default.returncode == 1, default.stdout + default.stderr
    assert "geo-loadgen: FAILED: errors 10% of 100 operations, above --max-errors 1% (status_503=10)" in default.stderr
    assert "threshold errors<=1%: FAIL (actual 10)" in default.stdout
    assert looser.returncode == 0, looser.stdout + looser.stderr
    assert "threshold errors<=20%: pass (actual 10)" in looser.stdout
    assert counted.returncode == 1 and "FAILED: errors 10, above --max-errors 9 (status_503=10)" in counted.stderr
    assert own_rule.returncode == 0, own_rule.stdout + own_rule.stderr
    assert "errors<=1%" not in own_rule.stdout
    assert both.returncode == 1 and "above --max-errors 5%" in both.stderr  # a limit given is never dropped
