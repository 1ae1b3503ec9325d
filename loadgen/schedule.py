"""Open-loop arrival schedules: when each request is *meant* to be sent.

Latency is measured from these intended times, not from when the generator got round to
sending, so a stalled server shows in the percentiles instead of slowing the generator down
(coordinated omission). The rate may move in stages (:mod:`loadgen.stages`); a constant rate
is the profile of one flat stage.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from enum import Enum

from loadgen.stages import Profile


class Arrivals(str, Enum):
    CONSTANT = "constant"
    POISSON = "poisson"


def intended_offsets(profile: Profile, *, arrivals: Arrivals = Arrivals.CONSTANT, seed: int = 0) -> Iterator[float]:
    """Yield the intended send times, seconds after the start, of an open-loop run.

    The rate is ``profile``'s level (requests per second) and its integral ``A(t)`` the
    requests due by ``t``. Constant arrivals: request ``k`` (from 0) is due when ``A`` first
    exceeds ``k``, which at a steady rate ``r`` is ``k / r`` and in a linear stage the root of
    a quadratic; so a stage holds as many requests as its integral, give or take the one
    that straddles a boundary, and a stage at rate 0 holds none. Poisson arrivals: a
    non-homogeneous Poisson process of that rate, by time rescaling (the points of a
    unit-rate process, seeded, mapped through the inverse of ``A``).

    Args:
        profile: the rate over time (:meth:`Profile.constant` for one rate).
        arrivals: evenly spaced by the integral, or a Poisson process of the same rate.
        seed: random seed for Poisson arrivals.

    Yields:
        Offsets in seconds, non-decreasing (increasing where the rate is positive), all
        below the profile's duration.
    """
    levels: Iterable[float]
    if arrivals is Arrivals.CONSTANT:
        levels = map(float, itertools.count())
    else:
        levels = _unit_poisson(random.Random(seed))
    return profile.inverse(levels)


def _unit_poisson(rng: random.Random) -> Iterator[float]:
    """The points of a Poisson process of rate 1: sums of exponential gaps of mean 1."""
    t = 0.0
    while True:
        t += rng.expovariate(1.0)
        yield t


def per_second(offsets: Iterable[float]) -> dict[int, int]:
    """How many of ``offsets`` fall in each whole second since the start (the offered load)."""
    return dict(Counter(int(t) for t in offsets))
