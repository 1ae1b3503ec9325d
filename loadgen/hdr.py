"""Recording many durations into an HdrHistogram at once.

hdrh's ``record_value`` is pure Python, about a microsecond a value, and the search generator
records four values an answer, on the cores it shares with the server it measures.
:func:`record_batch` computes the same counts index for a whole batch with NumPy (about 20
times less a value: ``bench/hdr_bench.py``) and adds them into the histogram's own counts
array, so the histogram ends exactly as recording each value alone would leave it: the same
counts, total, min and max (``tests/loadgen/test_hdr.py`` holds it to that, value by value).

It reads the layout hdrh's ``HdrHistogram`` keeps (``counts``, ``sub_bucket_mask``,
``unit_magnitude``, ``sub_bucket_half_count_magnitude``, ``sub_bucket_half_count``), which is
why pyproject bounds hdrhistogram to the releases those tests have passed on.
"""

from __future__ import annotations

from collections.abc import Sequence

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
