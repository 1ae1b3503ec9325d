"""The generator's clock and its sleeps, the same on asyncio's event loop and on uvloop's.

The generator runs on uvloop (:func:`loadgen.runner.run_loop`), whose ``loop.time()`` is
libuv's clock: whole milliseconds, read once per turn of the loop. A latency of a fraction of
a millisecond, the usual one on loopback, would read as 0 or 1 ms. Every time the generator
measures is therefore a reading of :func:`now` (``time.perf_counter``, monotonic, to the
microsecond).

uvloop's timers also count whole milliseconds, and round a delay under half a millisecond
down to none: ``asyncio.sleep(0.0003)`` returns at once, and a sender pacing itself with
such sleeps would spin a core that the server it measures may need. :func:`sleep_until`
sleeps at least :data:`MIN_SLEEP_S` at a time, so what falls due within that millisecond
leaves together (asyncio's own loop does the same: its epoll wait rounds up to milliseconds):
precise enough for the friends' updates, seconds apart. The search sender, whose requests
may be a tenth of a millisecond apart, waits on a :class:`FineTimer` instead.
"""

from __future__ import annotations

import asyncio
import os
import time

from loadgen.timerfd import arm, expirations, new_timerfd

#: The generator's clock: seconds, monotonic, to the microsecond.
now = time.perf_counter

#: The shortest sleep: one tick of uvloop's timers, in seconds.
MIN_SLEEP_S = 0.001


async def sleep_until(deadline: float) -> None:
    """Sleep until :func:`now` reaches ``deadline``; never return before it.

    Returns at once when the deadline has passed. Otherwise it wakes up to about a
    millisecond late (the timers' tick), which a caller that measures from the deadline
    counts as its own lag.
    """
    while (left := deadline - now()) > 0:
        await asyncio.sleep(max(left, MIN_SLEEP_S))


class FineTimer:
    """Waits to the microsecond, for schedules finer than uvloop's millisecond timers.

    On Linux each wait within :data:`FINE_WITHIN_S` of its deadline arms a one-shot timerfd
    (:mod:`loadgen.timerfd`) for exactly the time left, which wakes the loop's epoll when it
    expires; further off, a plain timer brings the wait that close first. Nothing runs between
    waits, so an idle sender costs nothing, and a deadline already passed returns without a
    system call. Elsewhere, or where a timerfd cannot be made, :meth:`until` falls back to
    :func:`sleep_until`. Use it as ``async with FineTimer() as timer: await timer.until(deadline)``,
    with one sender awaiting at a time.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd: int | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def __aenter__(self) -> FineTimer:
        self._loop = asyncio.get_running_loop()
        try:
            self._fd = new_timerfd()
        except OSError:  # not Linux: millisecond sleeps instead
            return self
        self._loop.add_reader(self._fd, self._expired)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    @property
    def fine(self) -> bool:
        """Whether a timerfd is armed for the waits (else :meth:`until` sleeps in milliseconds)."""
        return self._fd is not None

    def _expired(self) -> None:
        assert self._fd is not None
        expirations(self._fd)  # take what the read counts, or the fd stays readable
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def until(self, deadline: float) -> None:
        """Wait until :func:`now` reaches ``deadline`` (microseconds late, as the host allows); never return before it."""
        if self._fd is None or self._loop is None:
            await sleep_until(deadline)
            return
        while (left := deadline - now()) > 0:
            if left > FINE_WITHIN_S:  # far off: a plain timer to within a millisecond of it
                await asyncio.sleep(left - MIN_SLEEP_S)
                continue
            self._waiter = self._loop.create_future()
            arm(self._fd, left)
            await self._waiter


#: How close to its deadline a :class:`FineTimer` wait arms the timerfd, in seconds.
FINE_WITHIN_S = 2 * MIN_SLEEP_S
