"""Batched HDR recording leaves a histogram exactly as recording value by value would."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.hdr import MAX_LATENCY_US, new_histogram, record_batch
from loadgen.stats import BATCH, Recorder, summarize


def to_us(seconds: float) -> int:
    """Whole microseconds (truncated), clamped into the histograms' range; infinities to its ends."""
    if math.isinf(seconds):
        return MAX_LATENCY_US if seconds > 0 else 1
    return min(MAX_LATENCY_US, max(1, int(seconds * 1_000_000)))


def one_by_one(digits: int, seconds: list[float]) -> HdrHistogram:
    """The oracle: hdrh's own record_value, a value at a time."""
    hist = new_histogram(digits)
    for s in seconds:
        hist.record_value(to_us(s))
    return hist


def state(hist: HdrHistogram) -> tuple[list[int], int, int, int]:
    return list(hist.counts), hist.total_count, hist.min_value, hist.max_value


durations = st.one_of(
    st.floats(min_value=-1.0, max_value=1e4, allow_nan=False),  # past both ends of the range
    st.floats(min_value=0.0, max_value=0.01, allow_nan=False),  # the exact sub-buckets
    st.integers(min_value=0, max_value=MAX_LATENCY_US).map(lambda us: us / 1_000_000),  # on µs boundaries
    st.sampled_from([0.0, 1e-6, 0.002047, 0.002048, 0.004095, 0.004096, 600.0, 600.000001, math.inf, -math.inf]),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([2, 3]), st.lists(st.lists(durations, max_size=200), max_size=4))
def test_batches_equal_one_value_at_a_time(digits: int, batches: list[list[float]]) -> None:
    hist = new_histogram(digits)
    for batch in batches:
        record_batch(hist, batch)
    expected = one_by_one(digits, [s for batch in batches for s in batch])
    assert state(hist) == state(expected)
    assert hist.get_value_at_percentile(99.0) == expected.get_value_at_percentile(99.0)


def test_an_empty_batch_changes_nothing() -> None:
    hist = new_histogram(3)
    record_batch(hist, [])
    assert state(hist) == state(new_histogram(3))


def test_nan_counts_as_the_longest_duration_held() -> None:
    hist = new_histogram(3)
    record_batch(hist, [0.001, math.nan])
    assert hist.get_total_count() == 2
    assert hist.get_max_value() == hist.get_highest_equivalent_value(MAX_LATENCY_US)


def test_a_recorder_shows_values_still_waiting_for_their_batch() -> None:
    rec = Recorder()
    rec.record("send_lag", 0.002)
    rec.complete(0, 0.005)
    assert rec.histograms["send_lag"].get_total_count() == 1
    assert rec.series[0].latency.get_total_count() == 1
    assert summarize(rec.histogram("latency"))["max"] == pytest.approx(5.0, rel=0.01)


def test_a_recorder_in_batches_equals_one_value_at_a_time() -> None:
    rec = Recorder()
    seconds: dict[int, list[float]] = {}
    every: list[float] = []
    for i in range(3 * BATCH + 17):
        latency = (i * 7919 % 100_003) / 1e6  # spread over 0-100 ms
        second = i // 1500
        rec.complete(second, latency)
        rec.record("service_time", latency / 2)
        seconds.setdefault(second, []).append(latency)
        every.append(latency)
    assert state(rec.histograms["latency"]) == state(one_by_one(3, every))
    assert state(rec.histograms["service_time"]) == state(one_by_one(3, [s / 2 for s in every]))
    for second, values in seconds.items():
        assert state(rec.series[second].latency) == state(one_by_one(2, values))


def test_a_new_second_records_what_earlier_seconds_left_waiting() -> None:
    rec = Recorder()
    for _ in range(10):
        rec.complete(0, 0.001)
    rec.complete(1, 0.002)
    # Read behind the recorder's back: second 0's values went in when second 1 opened.
    assert rec._series[0].latency.get_total_count() == 10  # noqa: SLF001 - what waits is the point
    assert rec._series[0].waiting == []  # noqa: SLF001
    assert rec._series[1].waiting == [0.002]  # noqa: SLF001


def test_a_full_batch_goes_in_without_a_reader() -> None:
    rec = Recorder()
    for _ in range(BATCH):
        rec.record("send_lag", 0.0003)
    assert rec._histograms["send_lag"].get_total_count() == BATCH  # noqa: SLF001
    assert rec._waiting["send_lag"] == []  # noqa: SLF001


def test_merging_carries_values_still_waiting() -> None:
    left, right = Recorder(), Recorder()
    left.complete(0, 0.001)
    right.complete(0, 0.003)
    right.record("send_lag", 0.0001)
    merged = Recorder.from_dict(left.to_dict())
    merged.merge(right)
    assert merged.histograms["latency"].get_total_count() == 2
    assert merged.histograms["send_lag"].get_total_count() == 1
    assert merged.series[0].count == 2


def test_the_hdrh_layout_record_batch_writes_into_is_the_one_it_was_written_for() -> None:
    """record_batch adds into hdrh's own counts array: a release that renames or retypes what it
    reads must fail here by name, not record wrong counts quietly."""
    hist = new_histogram(3)
    fields = ("counts", "sub_bucket_mask", "unit_magnitude", "sub_bucket_half_count_magnitude", "sub_bucket_half_count")
    missing = [f for f in fields if not hasattr(hist, f)]
    assert not missing, f"hdrhistogram no longer has {missing}: loadgen.hdr.record_batch must change with it"
    counts = np.ctypeslib.as_array(hist.counts)
    assert counts.ndim == 1 and counts.dtype.kind in "iu" and len(counts) == hist.counts_len
    for us in (1, 2_047, 2_048, 123_456, MAX_LATENCY_US):
        hist.reset()
        record_batch(hist, [us / 1_000_000])
        assert counts[hist._counts_index_for(us)] == 1, f"record_batch put {us} µs in the wrong bucket"  # noqa: SLF001
