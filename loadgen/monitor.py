"""Watching the generator itself: event-loop lag and CPU use, so its own saturation shows.

When the generator runs out of CPU it, not the server, sets the pace; the run then says so
instead of reporting the server as slow.
"""

from __future__ import annotations

import asyncio
import sys
import time

from loadgen.clock import now
from loadgen.stats import Recorder

LAG_INTERVAL_S = 0.01
#: Share of one core above which the generator counts as saturated.
SATURATED = 0.9


async def watch_loop_lag(recorder: Recorder, stop: asyncio.Event) -> None:
    """Record how late the loop wakes a 10 ms sleeper, into the ``loop_lag`` histogram."""
    while not stop.is_set():
        before = now()
        await asyncio.sleep(LAG_INTERVAL_S)
        recorder.record("loop_lag", max(0.0, now() - before - LAG_INTERVAL_S))


async def watch_cpu(recorder: Recorder, stop: asyncio.Event, *, label: str = "loadgen") -> None:
    """Sample this process's CPU use each second; warn once when it stays saturated for 3 s."""
    last_wall, last_cpu = time.monotonic(), time.process_time()
    hot = 0
    warned = False
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
            return
        except TimeoutError:
            pass
        wall, cpu = time.monotonic(), time.process_time()
        share = (cpu - last_cpu) / max(1e-9, wall - last_wall)
        last_wall, last_cpu = wall, cpu
        if share >= SATURATED:
            hot += 1
            recorder.count("generator_cpu_saturated_s")
        else:
            hot = 0
        if hot >= 3 and not warned:
            warned = True
            print(
                f"{label}: warning: the generator uses {share:.0%} of a core; it is now the bottleneck, "
                "not the server (add --workers or lower the rate)",
                file=sys.stderr,
                flush=True,
            )
