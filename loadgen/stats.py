"""What a run measured: HDR latency histograms, counters by kind, and a per-second series.

Everything here adds: two recorders from two worker processes merge exactly (histogram
addition, counter sums), so ``--workers K`` reports the same figures one process would.
Latencies are recorded in microseconds.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

#: Highest latency a histogram holds: 10 minutes, in microseconds.
MAX_LATENCY_US = 600_000_000
_DIGITS = 3
_SERIES_DIGITS = 2  # per-second histograms are many: 2 significant digits keep them small


def new_histogram(digits: int = _DIGITS) -> HdrHistogram:
    return HdrHistogram(1, MAX_LATENCY_US, digits)


def record_us(histogram: HdrHistogram, seconds: float) -> None:
    """Record a duration (seconds) in microseconds, clamped into the histogram's range."""
    histogram.record_value(min(MAX_LATENCY_US, max(1, int(seconds * 1_000_000))))


@dataclass
class SecondBucket:
    """One second of a run: completions, errors and their latency distribution."""

    count: int = 0
    errors: int = 0
    latency: HdrHistogram = field(default_factory=lambda: new_histogram(_SERIES_DIGITS))


@dataclass
class Recorder:
    """Histograms by metric name, counters by kind, and per-second buckets of the main metric."""

    main_metric: str = "latency"
    histograms: dict[str, HdrHistogram] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    series: dict[int, SecondBucket] = field(default_factory=dict)

    def histogram(self, name: str) -> HdrHistogram:
        if name not in self.histograms:
            self.histograms[name] = new_histogram()
        return self.histograms[name]

    def record(self, name: str, seconds: float) -> None:
        record_us(self.histogram(name), seconds)

    def count(self, kind: str, n: int = 1) -> None:
        self.counters[kind] += n

    def complete(self, second: int, latency_s: float | None, *, error: bool = False) -> None:
        """Account for one finished operation in the second (since the start) it finished in.

        Args:
            second: whole seconds since the run started.
            latency_s: the main latency (recorded in the main histogram too), or None when it failed
                before a latency existed.
            error: whether it failed.
        """
        bucket = self._bucket(second)
        bucket.count += 1
        if error:
            bucket.errors += 1
        if latency_s is not None:
            record_us(bucket.latency, latency_s)
            self.record(self.main_metric, latency_s)

    def _bucket(self, second: int) -> SecondBucket:
        # Not ``setdefault(second, SecondBucket())``: that would build a histogram (tens of
        # microseconds) for every operation, to be thrown away in all but the first of a second.
        bucket = self.series.get(second)
        if bucket is None:
            bucket = self.series[second] = SecondBucket()
        return bucket

    def merge(self, other: Recorder) -> None:
        """Add another recorder's figures into this one (exact: histogram addition)."""
        for name, hist in other.histograms.items():
            self.histogram(name).add(hist)
        self.counters.update(other.counters)
        for second, bucket in other.series.items():
            mine = self._bucket(second)
            mine.count += bucket.count
            mine.errors += bucket.errors
            mine.latency.add(bucket.latency)

    def absorb(self, other: Recorder, *, prefix: str) -> None:
        """Add another recorder's histograms and counters under prefixed names (its series stay out)."""
        for name, hist in other.histograms.items():
            self.histogram(prefix + name).add(hist)
        for kind, n in other.counters.items():
            self.counters[prefix + kind] += n

    # --- transport between processes and into report.json ---------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "main_metric": self.main_metric,
            "histograms": {k: _encode(h) for k, h in self.histograms.items()},
            "counters": dict(self.counters),
            "series": {str(s): {"count": b.count, "errors": b.errors, "latency": _encode(b.latency)} for s, b in self.series.items()},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Recorder:
        rec = cls(main_metric=raw["main_metric"])
        for name, encoded in raw["histograms"].items():
            rec.histogram(name).add(_decode(encoded))
        rec.counters.update(raw["counters"])
        for second, b in raw["series"].items():
            bucket = SecondBucket(count=b["count"], errors=b["errors"])
            bucket.latency.add(_decode(b["latency"]))
            rec.series[int(second)] = bucket
        return rec


def _encode(histogram: HdrHistogram) -> str:
    """HdrHistogram's own compressed encoding (readable by any HdrHistogram library)."""
    raw = histogram.encode()
    return raw.decode("ascii") if isinstance(raw, bytes) else str(raw)


def _decode(encoded: str) -> HdrHistogram:
    return HdrHistogram.decode(encoded.encode("ascii"))


PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def summarize(histogram: HdrHistogram) -> dict[str, float]:
    """Count, percentiles and max of a histogram, latencies in milliseconds."""
    count = histogram.get_total_count()
    if count == 0:
        return {"count": 0, **{f"p{_label(p)}": math.nan for p in PERCENTILES}, "max": math.nan, "mean": math.nan}
    out: dict[str, float] = {"count": count}
    for p in PERCENTILES:
        out[f"p{_label(p)}"] = histogram.get_value_at_percentile(p) / 1000.0
    out["max"] = histogram.get_max_value() / 1000.0
    out["mean"] = histogram.get_mean_value() / 1000.0
    return out


def _label(p: float) -> str:
    return f"{p:g}"
