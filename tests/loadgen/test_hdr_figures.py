"""Figures read with NumPy equal hdrh's own: count, min, max, mean and every percentile.

hdrh's pure-Python walkers are the oracle, on histograms recorded value by value with its own
``record_value``, of every layout geo-loadgen uses and one whose unit is not 1.
"""

from __future__ import annotations

import math

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.hdr import MAX_LATENCY_US, Figures, figures, new_histogram
from loadgen.stats import PERCENTILES, summarize

#: (lowest trackable, highest trackable, significant digits): the per-second series' layout,
#: the main histograms' layout, one digit, and a unit of 512 (values below it are one range).
LAYOUTS = [(1, MAX_LATENCY_US, 2), (1, MAX_LATENCY_US, 3), (1, MAX_LATENCY_US, 1), (1000, 10**9, 2)]


def oracle(hist: HdrHistogram, percentiles: list[float]) -> Figures:
    return Figures(
        count=hist.get_total_count(),
        min=hist.get_min_value(),
        max=hist.get_max_value(),
        mean=hist.get_mean_value(),
        percentiles=tuple(hist.get_value_at_percentile(p) for p in percentiles),
    )


def recorded(layout: tuple[int, int, int], values: list[tuple[int, int]]) -> HdrHistogram:
    low, high, digits = layout
    hist = HdrHistogram(low, high, digits)
    for value, count in values:
        assert hist.record_value(min(value, high), count)
    return hist


def values_for(high: int) -> st.SearchStrategy[list[tuple[int, int]]]:
    value = st.one_of(
        st.integers(min_value=1, max_value=high),
        st.integers(min_value=1, max_value=5_000),  # the exact first buckets
        st.integers(min_value=1, max_value=29).map(lambda b: 2**b),  # bucket edges...
        st.integers(min_value=1, max_value=29).map(lambda b: 2**b - 1),  # ...from both sides
    )
    # Mostly single values; sometimes billions at once, past what int64 products hold.
    count = st.one_of(st.just(1), st.integers(min_value=1, max_value=5), st.integers(min_value=1, max_value=2**40))
    return st.lists(st.tuples(value, count), max_size=60)


percentile_lists = st.lists(
    st.one_of(
        st.floats(min_value=0.0, max_value=100.0),
        st.sampled_from([0.0, 1e-9, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0, 100.5, 1e6, -1.0]),
    ),
    max_size=8,
)


@st.composite
def histograms(draw: st.DrawFn) -> tuple[tuple[int, int, int], list[tuple[int, int]]]:
    layout = draw(st.sampled_from(LAYOUTS))
    return layout, draw(values_for(layout[1]))


@settings(max_examples=120, deadline=None)
@given(histograms(), percentile_lists)
def test_figures_equal_hdrhs_own(
    hist_values: tuple[tuple[int, int, int], list[tuple[int, int]]], ps: list[float]
) -> None:
    hist = recorded(*hist_values)
    assert figures(hist, percentiles=ps) == oracle(hist, ps)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(LAYOUTS).flatmap(
        lambda layout: st.tuples(st.just(layout), st.lists(values_for(layout[1]), max_size=4))
    ),
    percentile_lists,
)
def test_histograms_taken_as_one_equal_their_sum(
    layout_parts: tuple[tuple[int, int, int], list[list[tuple[int, int]]]], ps: list[float]
) -> None:
    layout, parts = layout_parts
    hists = [recorded(layout, values) for values in parts]
    total = recorded(layout, [])
    for hist in hists:
        total.add(hist)
    together = figures(*hists, percentiles=ps)
    assert together == figures(total, percentiles=ps)
    assert (together.count, together.mean, together.percentiles) == (
        total.get_total_count(),
        total.get_mean_value(),
        tuple(total.get_value_at_percentile(p) for p in ps),
    )


def test_no_histogram_or_an_empty_one_answers_what_hdrh_answers_for_empty() -> None:
    empty = new_histogram(3)
    assert figures(empty, percentiles=[50.0, 0.0]) == oracle(empty, [50.0, 0.0])
    assert figures(percentiles=[50.0, 0.0]) == Figures(count=0, min=0, max=0, mean=0.0, percentiles=(0, 0))


def test_histograms_of_different_layouts_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="different layouts"):
        figures(new_histogram(2), new_histogram(3))


def test_summarize_reports_hdrhs_figures_in_milliseconds() -> None:
    hist = recorded((1, MAX_LATENCY_US, 3), [(us, 1 + us % 7) for us in range(37, 900_000, 1_013)])
    s = summarize(hist)
    assert s["count"] == hist.get_total_count()
    for p in PERCENTILES:
        assert s[f"p{p:g}"] == hist.get_value_at_percentile(p) / 1000.0
    assert s["mean"] == hist.get_mean_value() / 1000.0
    assert (s["min"], s["max"]) == (hist.get_min_value() / 1000.0, hist.get_max_value() / 1000.0)
    assert all(math.isnan(v) for k, v in summarize(new_histogram(3)).items() if k != "count")


def test_the_hdrh_layout_figures_reads_is_the_one_it_was_written_for() -> None:
    """figures reads hdrh's counts array and layout: a release that renames what it reads must
    fail here by name, not give wrong figures quietly."""
    hist = new_histogram(3)
    fields = ("counts", "counts_len", "unit_magnitude", "sub_bucket_half_count_magnitude", "sub_bucket_half_count")
    missing = [f for f in fields if not hasattr(hist, f)]
    assert not missing, f"hdrhistogram no longer has {missing}: loadgen.hdr.figures must change with it"
    hist.record_value(123_456)
    assert figures(hist, percentiles=[50.0]).percentiles == (hist.get_value_at_percentile(50.0),)
