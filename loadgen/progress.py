"""Live progress: a refreshing panel on a terminal, plain periodic lines otherwise.

Progress runs on the event loop that sends the requests, so whatever a refresh costs delays
the requests due meanwhile and shows in their latencies. A refresh therefore reads only
running figures: the totals the recorder keeps as it goes, and the p99 of the last few
seconds from their per-second histograms, read with NumPy (:func:`loadgen.hdr.figures`);
it never walks the run's whole histograms. The panel is plain text laid out here, which
rich draws in a fraction of what a rich table costs, and only when its figures change.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.text import Text

from loadgen.hdr import figures
from loadgen.stats import Recorder

#: Seconds between the panel's refreshes on a terminal.
PANEL_REFRESH_S = 0.5
#: Whole seconds the achieved rate and the p99 are taken over.
WINDOW_S = 5

_COLUMNS = ("elapsed", "rate/s", "done", "in flight", "errors", "p99 ms")
_WIDTH = 11


@dataclass(frozen=True, slots=True)
class Snapshot:
    elapsed_s: float
    completed: int
    errors: int
    in_flight: int
    #: Operations finished a second over the last whole seconds.
    rate: float
    #: p99 of the main metric over the last whole seconds and the one under way (NaN: none yet).
    p99_ms: float


def snapshot(recorder: Recorder, started: float, in_flight: int, window_s: int = WINDOW_S) -> Snapshot:
    """Figures so far, the achieved rate over the last ``window_s`` whole seconds and the p99
    over those and the second under way.

    Costs a NumPy pass over at most ``window_s + 1`` per-second histograms, however long the
    run and however full its histograms.
    """
    elapsed = time.monotonic() - started
    now = int(elapsed)
    series = recorder.series
    whole = [series.get(s) for s in range(max(0, now - window_s), now)]
    recent = sum(b.count for b in whole if b is not None)
    span = min(window_s, now) or 1
    latencies = [b.latency for b in (*whole, series.get(now)) if b is not None]
    found = figures(*latencies, percentiles=(99.0,))
    p99 = found.percentiles[0] / 1000.0 if found.count else math.nan
    return Snapshot(elapsed, recorder.completed, recorder.errors, in_flight, recent / span, p99)


def line(name: str, s: Snapshot) -> str:
    """One progress line, for a log rather than a terminal."""
    return (
        f"{name} {s.elapsed_s:6.1f}s  rate {s.rate:8.1f}/s  done {s.completed:>9}  "
        f"in flight {s.in_flight:>5}  errors {s.errors:>6}  p99 {s.p99_ms:8.2f} ms"
    )


def panel(name: str, s: Snapshot) -> Text:
    """The live panel: a title, a header and a row of figures in right-aligned columns."""
    cells = (
        f"{s.elapsed_s:.1f}s",
        f"{s.rate:.1f}",
        str(s.completed),
        str(s.in_flight),
        str(s.errors),
        f"{s.p99_ms:.2f}",
    )
    text = Text(no_wrap=True, overflow="crop")
    text.append(f"geo-loadgen {name}", style="bold")
    text.append(f"  (rate and p99 over the last {WINDOW_S} s)\n")
    text.append("".join(c.rjust(_WIDTH) for c in _COLUMNS) + "\n", style="dim")
    text.append("".join(c.rjust(_WIDTH) for c in cells))
    return text


def refresh(live: Live, name: str, take: Callable[[], Snapshot]) -> None:
    """Take a snapshot and draw it: all a refresh of the panel does on the loop."""
    live.update(panel(name, take()), refresh=True)


async def show_progress(
    name: str, take: Callable[[], Snapshot], stop: asyncio.Event, *, interval_s: float = 5.0, enabled: bool = True
) -> None:
    """Show progress until ``stop`` is set: a live panel on a TTY, else a line each interval."""
    if not enabled:
        await stop.wait()
        return
    if sys.stderr.isatty():
        # Drawn from here only, when the figures change: rich's own refresh thread would redraw
        # the same figures in between, taking the GIL from the loop that sends.
        with Live(panel(name, take()), console=Console(stderr=True), auto_refresh=False, transient=True) as live:
            while not stop.is_set():
                await _wait(stop, PANEL_REFRESH_S)
                refresh(live, name, take)
        return
    while not stop.is_set():
        await _wait(stop, interval_s)
        if not stop.is_set():
            print(line(name, take()), file=sys.stderr, flush=True)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass
