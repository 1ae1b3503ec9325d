"""Live progress: a refreshing panel on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table

from loadgen.stats import Recorder, summarize


@dataclass(frozen=True, slots=True)
class Snapshot:
    elapsed_s: float
    completed: int
    errors: int
    in_flight: int
    rate: float
    p99_ms: float


def snapshot(recorder: Recorder, started: float, in_flight: int, window_s: int = 5) -> Snapshot:
    """Figures so far: the achieved rate is over the last ``window_s`` whole seconds."""
    elapsed = time.monotonic() - started
    now = int(elapsed)
    recent = sum(b.count for s, b in recorder.series.items() if now - window_s <= s < now)
    span = min(window_s, now) or 1
    completed = sum(b.count for b in recorder.series.values())
    errors = sum(b.errors for b in recorder.series.values())
    main = recorder.histograms.get(recorder.main_metric)
    p99 = summarize(main)["p99"] if main is not None else float("nan")
    return Snapshot(elapsed, completed, errors, in_flight, recent / span, p99)


def _line(name: str, s: Snapshot) -> str:
    return (
        f"{name} {s.elapsed_s:6.1f}s  rate {s.rate:8.1f}/s  done {s.completed:>9}  "
        f"in flight {s.in_flight:>5}  errors {s.errors:>6}  p99 {s.p99_ms:8.2f} ms"
    )


def _table(name: str, s: Snapshot) -> Table:
    table = Table(title=f"geo-loadgen {name}", show_header=True)
    for column in ("elapsed", "rate/s", "done", "in flight", "errors", "p99 ms"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{s.elapsed_s:.1f}s", f"{s.rate:.1f}", str(s.completed), str(s.in_flight), str(s.errors), f"{s.p99_ms:.2f}"
    )
    return table


async def show_progress(
    name: str, take: Callable[[], Snapshot], stop: asyncio.Event, *, interval_s: float = 5.0, enabled: bool = True
) -> None:
    """Show progress until ``stop`` is set: a live table on a TTY, else a line each interval."""
    if not enabled:
        await stop.wait()
        return
    if sys.stderr.isatty():
        console = Console(stderr=True)
        with Live(_table(name, take()), console=console, refresh_per_second=4, transient=True) as live:
            while not stop.is_set():
                await _wait(stop, 0.5)
                live.update(_table(name, take()))
        return
    while not stop.is_set():
        await _wait(stop, interval_s)
        if not stop.is_set():
            print(_line(name, take()), file=sys.stderr, flush=True)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass
