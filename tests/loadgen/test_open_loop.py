"""Open-loop measurement: a server stall shows in p99, where a closed-loop measure hides it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from loadgen.runner import run_loop
from loadgen.search import LiveState, SearchOptions, run_search
from loadgen.stats import Recorder, summarize


def closed_loop_p99_ms(url: str, duration_s: float) -> float:
    """The naive measure: one request at a time, each timed from its own send."""
    recorder = Recorder()
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        sent = time.monotonic()
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback test server
            resp.read()
        recorder.record("latency", time.monotonic() - sent)
    return summarize(recorder.histograms["latency"])["p99"]


def run_loadgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=120)


def test_stall_shows_in_open_loop_p99_but_not_in_closed_loop(
    stall_server: Any, stall_server_class: Any, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = run_loadgen(
        "search", "--url", stall_server.url, "--rate", "200", "--duration", "3s", "--no-progress", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    p99 = report["metrics"]["latency"]["p99"]
    # At 200/s, a 500 ms freeze holds back ~100 of 600 intended requests: well over 1%.
    assert p99 >= 300.0, f"open-loop p99 {p99} ms does not show the 500 ms stall"
    assert report["completed"] == 600
    assert report["counters"]["status_200"] == 600

    # The same server, stalling again, measured closed-loop: one request in hundreds waits.
    with stall_server_class(stall_after=300) as again:
        naive = closed_loop_p99_ms(again.url + "/v1/search/nearby", 3.0)
        assert again.requests > 300, "the closed-loop run never reached the stall"
    assert naive < 100.0, f"closed-loop p99 {naive} ms unexpectedly shows the stall"


def test_workers_merge_exactly_and_thresholds_set_the_exit_code(stall_server_class: Any, tmp_path: Path) -> None:
    with stall_server_class(stall_after=10**9) as server:  # never stalls
        passing = run_loadgen(
            "search",
            "--url",
            server.url,
            "--rate",
            "150",
            "--duration",
            "2s",
            "--workers",
            "2",
            "--no-progress",
            "--out",
            str(tmp_path / "ok"),
            "--fail-if",
            "errors==0,p99<2s",
        )
        failing = run_loadgen(
            "search", "--url", server.url, "--rate", "50", "--duration", "1s", "--no-progress", "--fail-if", "p50<1us"
        )
        served = server.requests
    assert passing.returncode == 0, passing.stdout + passing.stderr
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert report["completed"] == 300 and report["counters"]["status_200"] == 300
    assert report["metrics"]["latency"]["count"] == 300
    assert served == 350
    for name in (
        "report.json",
        "timeseries.csv",
        "latency_over_time.png",
        "throughput_over_time.png",
        "latency_distribution.png",
        "report.html",
    ):
        assert (tmp_path / "ok" / name).stat().st_size > 0
    assert (tmp_path / "ok" / "latency_over_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (tmp_path / "ok" / "timeseries.csv").read_text().splitlines()
    assert rows[0].startswith("second,completed,errors")
    assert sum(int(r.split(",")[1]) for r in rows[1:]) == 300
    assert failing.returncode == 1
    assert "threshold p50<0.001ms: FAIL" in failing.stdout


def test_tick_trades_send_lag_for_fewer_wake_ups_and_the_latency_counts_it(
    stall_server_class: Any, tmp_path: Path
) -> None:
    # Searches 5 ms apart: with no tick each leaves at its own time; with a 20 ms tick they
    # leave four at a time, up to 20 ms late, and the latency (from the intended time) shows it.
    reports = {}
    with stall_server_class(stall_after=10**9) as server:
        for tick in ("0", "20ms"):
            out = tmp_path / tick
            proc = run_loadgen(
                "search",
                "--url",
                server.url,
                "--rate",
                "200",
                "--duration",
                "2s",
                "--tick",
                tick,
                "--no-progress",
                "--out",
                str(out),
            )
            assert proc.returncode == 0, proc.stderr
            reports[tick] = json.loads((out / "report.json").read_text())
    exact, ticked = reports["0"]["metrics"], reports["20ms"]["metrics"]
    assert reports["0"]["completed"] == reports["20ms"]["completed"] == 400
    assert exact["send_lag"]["p50"] < 2.0
    # Up to a tick late; the p90 rather than the max, which a machine pause alone can push past it.
    assert 5.0 <= ticked["send_lag"]["p50"] <= 20.0 and ticked["send_lag"]["p90"] < 25.0
    assert ticked["latency"]["p50"] >= ticked["send_lag"]["p50"]
    assert reports["20ms"]["options"]["tick_s"] == 0.02


def test_a_failure_while_accounting_for_an_answer_ends_the_run_instead_of_hanging(stall_server_class: Any) -> None:
    class Broken(Recorder):
        def complete(self, second: int, latency_s: float | None, *, error: bool = False) -> None:
            raise RuntimeError("the recorder broke")

    async def run(url: str) -> None:
        opts = SearchOptions(url=url, rate=200, duration_s=30, points="uniform")
        await asyncio.wait_for(run_search(opts, Broken(), LiveState()), 10)

    with stall_server_class(stall_after=10**9) as server:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="the recorder broke"):
            run_loop(run(server.url))
        # Stopped at the first answer, not at the end of the 30 s schedule.
        assert time.monotonic() - started < 5
        served = server.requests
    assert 1 <= served < 200
