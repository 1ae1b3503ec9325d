"""When a simulated phone sends its next location, and when its socket is dropped on purpose.

Pure arithmetic on the generator's clock (seconds, :func:`loadgen.clock.now`): the I/O that
follows the answers is :mod:`loadgen.friends`'.
"""

from __future__ import annotations

import random


def next_send_at(last_sent: float, interval_s: float, now: float) -> float:
    """When the next ``location`` is due: ``interval_s`` after the last one, or at once when
    that is past (a ``pace`` shorter than the time since the last send asks for one now).

    Args:
        last_sent: when the last location was sent.
        interval_s: the interval in force (the latest ``pace``'s ``interval_s``, or ``--interval``).
        now: the time now.
    """
    return max(last_sent + interval_s, now)


def drop_times(every_s: float, start: float, end: float, rng: random.Random) -> list[float]:
    """When one client's socket is dropped: every ``every_s`` seconds from a phase of its own
    (uniform in the first period), strictly between ``start`` and ``end``."""
    out = []
    at = start + rng.uniform(0.0, every_s)
    while at < end:
        out.append(at)
        at += every_s
    return out
