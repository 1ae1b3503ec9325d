"""What recording a latency costs geo-loadgen: hdrh's ``record_value`` against batches.

Three figures, each the best of ``--repeat`` timings (the least disturbed by the rest of the
machine):

* a value recorded alone with hdrh's ``HdrHistogram.record_value`` (pure Python), after the
  conversion to whole microseconds every value needs;
* a value recorded in a batch of :data:`loadgen.stats.BATCH` with
  :func:`loadgen.hdr.record_batch`;
* an answer, as ``geo-loadgen search`` records one: ``Recorder.record`` twice (send lag,
  service time) and ``Recorder.complete`` once (the latency, into the main and per-second
  histograms), 13,700 answers a second of run.

Usage::

    .venv/bin/python bench/hdr_bench.py
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen.hdr import MAX_LATENCY_US, new_histogram, record_batch
from loadgen.stats import BATCH, Recorder


def best_of(repeat: int, run: Callable[[], None]) -> float:
    """The shortest of ``repeat`` timings of ``run()``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time one latency recorded alone, in a batch, and one answer's recording."
    )
    parser.add_argument("--values", type=int, default=200_000, help="values (answers) per timing (default 200,000)")
    parser.add_argument("--repeat", type=int, default=5, help="timings of each, the best reported (default 5)")
    args = parser.parse_args(argv)
    rng = random.Random(42)
    seconds = [rng.lognormvariate(-7.0, 1.0) for _ in range(args.values)]  # around 1 ms, a long tail

    def alone() -> None:
        hist = new_histogram(3)
        for s in seconds:
            hist.record_value(min(MAX_LATENCY_US, max(1, int(s * 1_000_000))))

    def batched() -> None:
        hist = new_histogram(3)
        for start in range(0, len(seconds), BATCH):
            record_batch(hist, seconds[start : start + BATCH])

    def answers() -> None:
        rec = Recorder()
        for i, s in enumerate(seconds):
            rec.record("send_lag", s / 40)
            rec.record("service_time", s)
            rec.complete(i // 13_700, s)
        rec.flush()

    n = len(seconds)
    one = best_of(args.repeat, alone) / n * 1e6
    batch = best_of(args.repeat, batched) / n * 1e6
    answer = best_of(args.repeat, answers) / n * 1e6
    print(f"{'record_value, a value alone:':<34}{one:6.3f} µs")
    print(f"{f'record_batch, a value of {BATCH}:':<34}{batch:6.3f} µs  ({one / batch:.0f}x less)")
    print(f"{'Recorder, an answer (4 values):':<34}{answer:6.3f} µs  (alone: {4 * one:.2f} µs for the values only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
