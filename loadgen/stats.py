"""What a run measured: HDR latency histograms, counters by kind, and a per-second series.

Everything here adds: two recorders from two worker processes merge exactly (histogram
addition, counter sums), so ``--workers K`` reports the same figures one process would.
Latencies are recorded in microseconds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgen.hdr import figures, new_histogram, record_batch

_DIGITS = 3
_SERIES_DIGITS = 2  # per-second histograms are many: 2 significant digits keep them small
#: Durations wait in a list and go into their histogram this many at a time
#: (:func:`loadgen.hdr.record_batch`), and whenever the figures are read: recording each
#: alone would cost the generator a microsecond and more of CPU, four times an answer.
BATCH = 1024
#: Error answers kept of each kind for the report (:meth:`Recorder.sample`), and how much of each.
SAMPLES = 3
SAMPLE_BYTES = 300


@dataclass
class SecondBucket:
    """One second of a run: completions, errors and their latency distribution."""

    count: int = 0
    errors: int = 0
    latency: HdrHistogram = field(default_factory=lambda: new_histogram(_SERIES_DIGITS))
    #: Latencies (seconds) not yet in ``latency`` (nor in the main histogram).
    waiting: list[float] = field(default_factory=list, repr=False, compare=False)


class Recorder:
    """Histograms by metric name, counters by kind, and per-second buckets of the main metric.

    Durations are recorded in batches: :attr:`histograms` and :attr:`series` record whatever
    waits before they answer, so a reader always sees every value recorded so far.
    """

    def __init__(self, main_metric: str = "latency") -> None:
        self.main_metric = main_metric
        self.counters: Counter[str] = Counter()
        #: Operations finished and how many of them failed: the sums of the series' ``count`` and
        #: ``errors``, kept as they grow so that progress reads them without going over the run.
        self.completed = 0
        self.errors = 0
        self._histograms: dict[str, HdrHistogram] = {}
        self._series: dict[int, SecondBucket] = {}
        self._waiting: dict[str, list[float]] = {}  # by histogram name, durations in seconds
        self._seconds_waiting: set[int] = set()  # the buckets whose ``waiting`` is not empty
        #: What the run holds open, read once a second (``in_flight`` searches, ``connected``
        #: clients): by name, then by second since the start.
        self.gauges: dict[str, dict[int, int]] = {}
        #: The first :data:`SAMPLES` answers of each error kind (``status_503``), cut to
        #: :data:`SAMPLE_BYTES`: what the report shows of the errors.
        self.samples: dict[str, list[str]] = {}
        #: What the schedule meant each second to hold, known before the run (``offered``:
        #: searches due in it; ``connected_target``: clients meant to be connected at its
        #: middle), by name, then by second: the measured series beside it shows how far the
        #: run kept to it.
        self.planned: dict[str, dict[int, int]] = {}

    @property
    def histograms(self) -> dict[str, HdrHistogram]:
        """Every histogram by name, with everything recorded so far."""
        self.flush()
        return self._histograms

    @property
    def series(self) -> dict[int, SecondBucket]:
        """The per-second buckets by second since the start, with everything recorded so far."""
        self.flush()
        return self._series

    def histogram(self, name: str) -> HdrHistogram:
        """The histogram ``name`` (made empty if it is new), with everything recorded so far."""
        waiting = self._waiting.get(name)
        if waiting:
            self._record_waiting(name, waiting)
        return self._histogram(name)

    def _histogram(self, name: str) -> HdrHistogram:
        hist = self._histograms.get(name)
        if hist is None:
            hist = self._histograms[name] = new_histogram(_DIGITS)
        return hist

    def record(self, name: str, seconds: float) -> None:
        """Record a duration (seconds) into histogram ``name``."""
        waiting = self._waiting.get(name)
        if waiting is None:
            waiting = self._waiting[name] = []
            self._histogram(name)  # listed from now on, even before its first batch goes in
        waiting.append(seconds)
        if len(waiting) >= BATCH:
            self._record_waiting(name, waiting)

    def _record_waiting(self, name: str, waiting: list[float]) -> None:
        record_batch(self._histogram(name), waiting)
        waiting.clear()

    def count(self, kind: str, n: int = 1) -> None:
        self.counters[kind] += n

    def gauge(self, name: str, second: int, value: int) -> None:
        """Record what gauge ``name`` read in ``second`` (whole seconds since the start)."""
        self.gauges.setdefault(name, {})[second] = value

    def plan(self, name: str, per_second: Mapping[int, int]) -> None:
        """Add what the schedule meant ``name`` to be in each second (workers' shares add up)."""
        mine = self.planned.setdefault(name, {})
        for second, value in per_second.items():
            mine[second] = mine.get(second, 0) + value

    def sample(self, kind: str, answer: bytes | str) -> None:
        """Keep ``answer`` (a body, a message) as an example of error ``kind``, if it is among the first few."""
        kept = self.samples.setdefault(kind, [])
        if len(kept) < SAMPLES:
            kept.append(_cut(answer))

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
        self.completed += 1
        if error:
            bucket.errors += 1
            self.errors += 1
        if latency_s is not None:
            waiting = bucket.waiting
            if not waiting:
                self._seconds_waiting.add(second)
            waiting.append(latency_s)
            if len(waiting) >= BATCH:
                self._record_second(second, bucket)

    def _bucket(self, second: int) -> SecondBucket:
        bucket = self._series.get(second)
        if bucket is None:
            # A new second: what earlier ones left waiting goes in now, so that a long run
            # nobody reads until its end holds at most a batch a histogram.
            self._record_seconds()
            bucket = self._series[second] = SecondBucket()
        return bucket

    def _record_second(self, second: int, bucket: SecondBucket) -> None:
        record_batch(bucket.latency, bucket.waiting)
        record_batch(self._histogram(self.main_metric), bucket.waiting)
        bucket.waiting.clear()
        self._seconds_waiting.discard(second)

    def _record_seconds(self) -> None:
        for second in list(self._seconds_waiting):
            self._record_second(second, self._series[second])

    def flush(self) -> None:
        """Record every duration still waiting for its batch."""
        for name, waiting in self._waiting.items():
            if waiting:
                self._record_waiting(name, waiting)
        self._record_seconds()

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
        self.completed += other.completed
        self.errors += other.errors
        self._add_gauges_and_samples(other, "")
        for name, planned in other.planned.items():
            self.plan(name, planned)

    def absorb(self, other: Recorder, *, prefix: str) -> None:
        """Add another recorder's histograms, counters, gauges, samples and plans under prefixed
        names (its series stay out)."""
        for name, hist in other.histograms.items():
            self.histogram(prefix + name).add(hist)
        for kind, n in other.counters.items():
            self.counters[prefix + kind] += n
        self._add_gauges_and_samples(other, prefix)
        for name, planned in other.planned.items():
            self.plan(prefix + name, planned)

    def _add_gauges_and_samples(self, other: Recorder, prefix: str) -> None:
        # Two workers' gauges add up: each holds its own share of what is open.
        for name, readings in other.gauges.items():
            mine = self.gauges.setdefault(prefix + name, {})
            for second, value in readings.items():
                mine[second] = mine.get(second, 0) + value
        for kind, answers in other.samples.items():
            for answer in answers:
                self.sample(prefix + kind, answer)

    # --- transport between processes and into report.json ---------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "main_metric": self.main_metric,
            "histograms": {k: _encode(h) for k, h in self.histograms.items()},
            "counters": dict(self.counters),
            "series": {
                str(s): {"count": b.count, "errors": b.errors, "latency": _encode(b.latency)}
                for s, b in self.series.items()
            },
            "gauges": {name: {str(s): v for s, v in readings.items()} for name, readings in self.gauges.items()},
            "samples": self.samples,
            "planned": {name: {str(s): v for s, v in values.items()} for name, values in self.planned.items()},
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
            rec._series[int(second)] = bucket
            rec.completed += bucket.count
            rec.errors += bucket.errors
        for name, readings in raw.get("gauges", {}).items():
            rec.gauges[name] = {int(s): int(v) for s, v in readings.items()}
        for kind, answers in raw.get("samples", {}).items():
            for answer in answers:
                rec.sample(kind, answer)
        for name, values in raw.get("planned", {}).items():
            rec.plan(name, {int(s): int(v) for s, v in values.items()})
        return rec


def _cut(answer: bytes | str) -> str:
    """At most :data:`SAMPLE_BYTES` of ``answer`` as text, marked when cut."""
    raw = answer.encode() if isinstance(answer, str) else answer
    if len(raw) <= SAMPLE_BYTES:
        return raw.decode("utf-8", "replace")
    return raw[:SAMPLE_BYTES].decode("utf-8", "ignore") + " [cut]"


def _encode(histogram: HdrHistogram) -> str:
    """HdrHistogram's own compressed encoding (readable by any HdrHistogram library)."""
    raw = histogram.encode()
    return raw.decode("ascii") if isinstance(raw, bytes) else str(raw)


def _decode(encoded: str) -> HdrHistogram:
    return HdrHistogram.decode(encoded.encode("ascii"))


PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def summarize(histogram: HdrHistogram) -> dict[str, float]:
    """Count, percentiles, max, mean and min of a histogram, latencies in milliseconds.

    The values hdrh itself gives, read in one NumPy pass (:func:`loadgen.hdr.figures`), so that
    summing up costs well under a millisecond wherever it runs: progress, the per-second
    series, the report.
    """
    if histogram.get_total_count() == 0:
        nan = math.nan
        return {"count": 0, **{f"p{_label(p)}": nan for p in PERCENTILES}, "max": nan, "mean": nan, "min": nan}
    found = figures(histogram, percentiles=PERCENTILES)
    out: dict[str, float] = {"count": found.count}
    for p, value in zip(PERCENTILES, found.percentiles, strict=True):
        out[f"p{_label(p)}"] = value / 1000.0
    out["max"] = found.max / 1000.0
    out["mean"] = found.mean / 1000.0
    out["min"] = found.min / 1000.0
    return out


def _label(p: float) -> str:
    return f"{p:g}"
