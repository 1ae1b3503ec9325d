"""Open-loop arrival schedules: when each request is *meant* to be sent.

Latency is measured from these intended times, not from when the generator got round to
sending, so a stalled server shows in the percentiles instead of slowing the generator down
(coordinated omission).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from enum import Enum


class Arrivals(str, Enum):
    CONSTANT = "constant"
    POISSON = "poisson"


def intended_offsets(
    rate: float, duration_s: float, *, arrivals: Arrivals = Arrivals.CONSTANT, seed: int = 0
) -> Iterator[float]:
    """Yield the intended send times, seconds after the start, of an open-loop run.

    Args:
        rate: requests per second, > 0.
        duration_s: length of the run, seconds, > 0.
        arrivals: evenly spaced, or a Poisson process (exponential gaps) of the same mean rate.
        seed: random seed for Poisson arrivals.

    Yields:
        Offsets in seconds, increasing, all below ``duration_s``.

    Raises:
        ValueError: rate or duration not positive.
    """
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if not duration_s > 0:
        raise ValueError(f"duration must be > 0, got {duration_s}")
    if arrivals is Arrivals.CONSTANT:
        count = int(rate * duration_s)
        for i in range(count):
            yield i / rate
        return
    rng = random.Random(seed)
    t = rng.expovariate(rate)
    while t < duration_s:
        yield t
        t += rng.expovariate(rate)
