"""Reading what a scenario holds open once a second: searches in flight, clients connected.

The report plots them beside the latencies: a latency that climbs while the requests in
flight pile up is a server falling behind; the same climb with few in flight, and clients
still connecting, is the ramp. One reading a second, from one task, costs the sender nothing
it would notice (the per-request paths record nothing for it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from loadgen.clock import now, sleep_until
from loadgen.stats import Recorder


def sample_gauges(recorder: Recorder, start: float, read: Callable[[], Mapping[str, int]]) -> asyncio.Task[None]:
    """Start reading ``read()`` into ``recorder``'s gauges in the middle of each second since
    ``start`` (a :func:`loadgen.clock.now` time), until the task returned is cancelled.

    A reading goes into the second it was taken in: a loop that wakes late (the generator
    short of CPU) skips a second rather than filing a reading under the wrong one.
    """
    return asyncio.get_running_loop().create_task(_sample(recorder, start, read))


async def _sample(recorder: Recorder, start: float, read: Callable[[], Mapping[str, int]]) -> None:
    second = 0
    while True:
        await sleep_until(start + second + 0.5)
        second = int(now() - start)
        for name, value in read().items():
            recorder.gauge(name, second, value)
        second += 1
