"""Recording many durations into an HdrHistogram at once, and reading its figures at once.

hdrh's ``record_value`` is pure Python, about a microsecond a value, and the search generator
records four values an answer, on the cores it shares with the server it measures.
:func:`record_batch` computes the same counts index for a whole batch with NumPy (about 20
times less a value: ``bench/hdr_bench.py``) and adds them into the histogram's own counts
array, so the histogram ends exactly as recording each value alone would leave it: the same
counts, total, min and max (``tests/loadgen/test_hdr.py`` holds it to that, value by value).

Reading is the same story: hdrh walks its counts in Python for every percentile and for the
mean, which stalls the sending event loop whenever progress or a report reads them.
:func:`figures` answers the same values from one NumPy pass over the counts
(``tests/loadgen/test_hdr_figures.py`` holds them equal to hdrh's own).

Both read the layout hdrh's ``HdrHistogram`` keeps (``counts``, ``counts_len``,
``sub_bucket_mask``, ``unit_magnitude``, ``sub_bucket_half_count_magnitude``,
``sub_bucket_half_count``), which is why pyproject bounds hdrhistogram to the releases those
tests have passed on; no other module reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

#: Highest latency a histogram holds: 10 minutes, in microseconds.
MAX_LATENCY_US = 600_000_000


def new_histogram(digits: int) -> HdrHistogram:
    """A histogram of microseconds from 1 to :data:`MAX_LATENCY_US`, to ``digits`` significant digits."""
    return HdrHistogram(1, MAX_LATENCY_US, digits)


def record_batch(histogram: HdrHistogram, seconds: Sequence[float]) -> None:
    """Record durations (seconds) into ``histogram``, each in whole microseconds (truncated),
    clamped into 1..:data:`MAX_LATENCY_US`.

    A NaN counts as the longest duration held (a clock that gave one is broken; the run should
    show it rather than fail at its end).

    Args:
        histogram: one made by :func:`new_histogram` (any number of significant digits).
        seconds: the durations, in seconds.
    """
    if not seconds:
        return
    scaled = np.asarray(seconds, dtype=np.float64) * 1_000_000
    # Clamp before truncating, which is the same as truncating then clamping for every finite
    # value (both bounds are whole numbers) and keeps infinities out of the integer cast.
    us = np.clip(np.nan_to_num(scaled, nan=MAX_LATENCY_US), 1, MAX_LATENCY_US).astype(np.int64)
    # hdrh's _counts_index_for, for every value at once; frexp's exponent of a whole number
    # below 2**53 is its bit length.
    bits = np.frexp((us | histogram.sub_bucket_mask).astype(np.float64))[1]
    bucket = bits - histogram.unit_magnitude - (histogram.sub_bucket_half_count_magnitude + 1)
    sub_bucket = us >> (bucket + histogram.unit_magnitude)
    index = ((bucket + 1) << histogram.sub_bucket_half_count_magnitude) + sub_bucket - histogram.sub_bucket_half_count
    low = int(index.min())
    added = np.bincount(index - low)
    counts = np.ctypeslib.as_array(histogram.counts)
    counts[low : low + len(added)] += added.astype(counts.dtype)
    histogram.total_count += len(us)
    histogram.min_value = min(histogram.min_value, int(us.min()))
    histogram.max_value = max(histogram.max_value, int(us.max()))


@dataclass(frozen=True, slots=True)
class Figures:
    """What one or more histograms hold, in their unit (microseconds for :func:`new_histogram`'s).

    Count, mean and percentiles are what hdrh itself answers (``get_total_count``,
    ``get_mean_value``, ``get_value_at_percentile``) for the histograms added together; min and
    max are the ends of the lowest and highest ranges holding a count, which is what its
    ``get_min_value`` and ``get_max_value`` answer for the values recorded. An empty histogram
    answers 0 throughout, as hdrh does.
    """

    count: int
    min: int
    max: int
    mean: float
    #: The value at each percentile asked for, in the order asked.
    percentiles: tuple[int, ...]


def figures(*histograms: HdrHistogram, percentiles: Sequence[float] = ()) -> Figures:
    """Count, min, max, mean and percentiles of ``histograms`` taken as one, computed with NumPy.

    hdrh answers a percentile by walking its counts in Python up to it, and the mean by walking
    all of them (21,504 for 3 significant digits up to 10 minutes): far too slow for an event
    loop that is sending requests on time. Here one cumulative sum serves every percentile and
    the mean is one product over the non-empty counts, with hdrh's rounding kept exactly
    (``tests/loadgen/test_hdr_figures.py`` holds them equal).

    Args:
        histograms: histograms of one layout (the same lowest and highest trackable values and
            significant digits); none at all is an empty histogram.
        percentiles: in 0..100 (hdrh's rules beyond: above 100 is 100, 0 is the lowest value).

    Returns:
        The figures hdrh gives for the sum of ``histograms``.

    Raises:
        ValueError: the histograms do not share one layout.
    """
    if not histograms:
        return Figures(count=0, min=0, max=0, mean=0.0, percentiles=tuple(0 for _ in percentiles))
    first, *others = histograms
    layout = _layout(first)
    counts = _counts(first)
    if others:
        counts = counts.copy()
        for other in others:
            if _layout(other) != layout:
                raise ValueError(
                    f"histograms of different layouts cannot be taken as one: {layout} and {_layout(other)}"
                )
            counts += _counts(other)
    total = sum(h.total_count for h in histograms)
    recorded = np.flatnonzero(counts)
    if len(recorded) == 0:
        return Figures(count=total, min=0, max=0, mean=0.0, percentiles=tuple(0 for _ in percentiles))
    low, width = _ranges(first, recorded)
    cumulative = np.cumsum(counts)
    return Figures(
        count=total,
        min=int(low[0]),
        max=int(low[-1] + width[-1] - 1),
        mean=_mean(counts[recorded], low + (width >> 1), total),
        percentiles=tuple(_value_at_percentile(first, cumulative, total, p) for p in percentiles),
    )


def _layout(histogram: HdrHistogram) -> tuple[int, int, int]:
    return histogram.counts_len, histogram.unit_magnitude, histogram.sub_bucket_half_count_magnitude


def _counts(histogram: HdrHistogram) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The histogram's own counts (a view, not a copy), as signed integers for exact products."""
    return np.ctypeslib.as_array(histogram.counts)[: histogram.counts_len].view(np.int64)


def _ranges(
    histogram: HdrHistogram, indices: np.ndarray[Any, np.dtype[np.int64]]
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.int64]]]:
    """The lowest value and the width of the range of values each counts index stands for.

    hdrh's ``get_value_from_index`` for every index at once; the lowest value is already the
    range's ``get_lowest_equivalent_value`` and its highest is ``low + width - 1``.
    """
    bucket = (indices >> histogram.sub_bucket_half_count_magnitude) - 1
    sub_bucket = (indices & (histogram.sub_bucket_half_count - 1)) + histogram.sub_bucket_half_count
    # The first bucket holds its lower half too, in the indices below the others' first.
    first_bucket = bucket < 0
    sub_bucket[first_bucket] -= histogram.sub_bucket_half_count
    bucket[first_bucket] = 0
    shift = bucket + histogram.unit_magnitude
    return sub_bucket << shift, np.left_shift(1, shift)


def _value_at_percentile(
    histogram: HdrHistogram, cumulative: np.ndarray[Any, np.dtype[np.int64]], total: int, percentile: float
) -> int:
    """hdrh's ``get_value_at_percentile``: the first counts index whose running count reaches the
    target, as the highest value of its range (the lowest for percentile 0)."""
    target = max(int(min(percentile, 100.0) * total / 100 + 0.5), 1)
    index = int(np.searchsorted(cumulative, target, side="left"))
    if index >= len(cumulative):
        return 0
    low, width = _ranges(histogram, np.array([index], dtype=np.int64))
    return int(low[0] + width[0] - 1) if percentile else int(low[0])


def _mean(
    counts: np.ndarray[Any, np.dtype[np.int64]], medians: np.ndarray[Any, np.dtype[np.int64]], total: int
) -> float:
    """hdrh's ``get_mean_value``: each count at the middle of its range, the exact integer sum
    turned into a float and divided by the total count."""
    if not total:
        return 0.0
    if int(counts.sum()) * int(medians.max()) < 2**63:  # no partial sum can overflow int64
        weighted = int(np.dot(counts, medians))
    else:  # billions of values: Python's integers, exact at any size
        weighted = sum(c * m for c, m in zip(counts.tolist(), medians.tolist(), strict=True))
    return float(weighted) / total
