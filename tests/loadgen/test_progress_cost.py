"""A refresh of the live panel costs next to nothing however full the run's histograms are.

It runs on the loop that sends the requests: whatever it costs delays the requests due
meanwhile. The recorder here holds a million latencies spread over the whole range (1 µs to
10 minutes) across 300 seconds, so hdrh's walkers would have every counts index to visit.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.live import Live

from loadgen.hdr import new_histogram
from loadgen.progress import WINDOW_S, line, refresh, snapshot
from loadgen.stats import Recorder, summarize

VALUES = 1_000_000
SECONDS = 300
#: hdrh's pure-Python walks over the counts: each visits index after index in Python.
WALKERS = (
    "get_value_at_percentile",
    "get_percentile_to_value_dict",
    "get_mean_value",
    "get_stddev",
    "get_count_at_index",
    "get_recorded_iterator",
    "get_all_values_iterator",
    "get_percentile_iterator",
    "get_linear_iterator",
    "get_log_iterator",
    "__iter__",
)


@pytest.fixture(scope="module")
def full_recorder() -> Recorder:
    rng = np.random.default_rng(7)
    latencies = np.exp(rng.uniform(math.log(1e-6), math.log(600.0), VALUES)).tolist()
    recorder = Recorder()
    per_second = VALUES // SECONDS
    for i, latency in enumerate(latencies):
        recorder.complete(i // per_second, latency, error=i % 100 == 0)
    recorder.flush()
    return recorder


@pytest.fixture
def no_walkers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every hdrh walker raises while the test runs."""

    def walked(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("an hdrh walker ran")

    for name in WALKERS:
        monkeypatch.setattr(HdrHistogram, name, walked)
    yield


def test_the_histograms_are_full(full_recorder: Recorder) -> None:
    """What makes the old refresh slow is there: the main histogram spans most of its counts."""
    main = full_recorder.histograms["latency"]
    assert main.get_total_count() == VALUES
    assert np.count_nonzero(np.ctypeslib.as_array(main.counts)) > 0.9 * main.counts_len


def test_a_panel_refresh_walks_no_histogram_and_costs_well_under_a_millisecond(
    full_recorder: Recorder, no_walkers: None
) -> None:
    started = time.monotonic() - (SECONDS - 0.5)  # half-way through the run's last second
    drawn = io.StringIO()
    console = Console(file=drawn, force_terminal=True, width=120)
    with Live(console=console, auto_refresh=False, transient=True) as live:
        refresh(live, "search", lambda: snapshot(full_recorder, started, 3))  # the first draw sets up
        cpu = time.process_time()
        for _ in range(20):
            refresh(live, "search", lambda: snapshot(full_recorder, started, 3))
        spent = time.process_time() - cpu
    # A refresh takes a fraction of a millisecond; one summary of the main histogram by hdrh's
    # walkers (four percentiles and the mean) takes longer than this whole bound for twenty.
    assert spent < 0.05, f"20 refreshes took {spent * 1000:.1f} ms of CPU"
    assert "p99 ms" in drawn.getvalue()


def test_the_snapshot_figures_are_right(full_recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic() - (SECONDS - 0.5)
    with monkeypatch.context() as patched:
        for name in WALKERS:
            patched.setattr(HdrHistogram, name, lambda *_a, **_k: pytest.fail("an hdrh walker ran"))
        snap = snapshot(full_recorder, started, 3)
    now = SECONDS - 1  # the second under way
    window = [full_recorder.series[s] for s in range(now - WINDOW_S, now + 1)]
    recent = new_histogram(2)
    for bucket in window:
        recent.add(bucket.latency)
    assert snap.p99_ms == recent.get_value_at_percentile(99.0) / 1000.0
    assert snap.rate == sum(b.count for b in window[:-1]) / WINDOW_S
    assert (snap.completed, snap.errors, snap.in_flight) == (VALUES, VALUES // 100, 3)
    assert f"p99 {snap.p99_ms:8.2f} ms" in line("search", snap)


def test_the_first_refresh_of_a_run_shows_no_p99_yet() -> None:
    snap = snapshot(Recorder(), time.monotonic(), 0)
    assert (snap.completed, snap.rate) == (0, 0.0) and math.isnan(snap.p99_ms)


def test_summarize_walks_no_histogram_and_is_cheap(full_recorder: Recorder, no_walkers: None) -> None:
    main = full_recorder.histograms["latency"]
    cpu = time.process_time()
    for _ in range(20):
        s = summarize(main)
    spent = time.process_time() - cpu
    # hdrh's walkers take longer than this whole bound for one summary of this histogram.
    assert spent < 0.05, f"20 summaries took {spent * 1000:.1f} ms of CPU"
    assert s["count"] == VALUES and 0.001 <= s["min"] <= s["p50"] <= s["p99"] <= s["max"] <= 600_400


def test_totals_survive_merging_and_the_trip_between_processes(full_recorder: Recorder) -> None:
    other = Recorder()
    other.complete(5, 0.001, error=True)
    other.complete(400, None, error=True)
    merged = Recorder.from_dict(full_recorder.to_dict())
    merged.merge(other)
    assert (merged.completed, merged.errors) == (VALUES + 2, VALUES // 100 + 2)
    assert merged.completed == sum(b.count for b in merged.series.values())
    assert merged.errors == sum(b.errors for b in merged.series.values())
