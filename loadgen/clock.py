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
may be a tenth of a millisecond apart, is paced by a :class:`Pacer` instead.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence

from loadgen.timerfd import arm_at, expirations, new_timerfd

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


class Pacer:
    """Calls ``fire(i, intended)`` for each intended time of a schedule as it comes, to the
    microsecond, for schedules finer than uvloop's millisecond timers.

    The schedule is ``start + offsets[i]``, offsets increasing. On Linux one timerfd
    (:mod:`loadgen.timerfd`), armed for the next intended time, wakes the loop's epoll when it
    comes, and everything due by then fires from that callback at once: no task, future or
    coroutine per request, and nothing at all between wake-ups, so a sender pacing thousands
    of requests a second leaves the cores it shares with the server it measures to that server.
    Elsewhere, or where no timerfd can be made, a loop of :func:`sleep_until` does the same in
    milliseconds. ``fire`` runs inside the event loop's callbacks; if it raises, the pacing
    stops and :meth:`run` raises that.
    """

    def __init__(
        self, start: float, offsets: Sequence[float], fire: Callable[[int, float], None], *, tick_s: float = 0.0
    ) -> None:
        self.start = start
        self.offsets = offsets
        self.fire = fire
        self.tick_s = tick_s
        self.fired = 0  # how many have fired
        self.wake_ups = 0  # how many times the timer woke the pacer
        self._fd: int | None = None
        self._done: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Fire the whole schedule; return once the last has fired."""
        loop = asyncio.get_running_loop()
        try:
            self._fd = new_timerfd()
        except OSError:  # not Linux: millisecond sleeps instead
            while self.fired < len(self.offsets):
                await sleep_until(self.start + self.offsets[self.fired])
                self._fire_due()
            return
        self._done = loop.create_future()
        loop.add_reader(self._fd, self._expired)
        try:
            self._fire_due()
            await self._done
        finally:
            loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def _expired(self) -> None:
        assert self._fd is not None and self._done is not None
        expirations(self._fd)  # take what the read counts, or the fd stays readable
        self.wake_ups += 1
        try:
            self._fire_due()
        except BaseException as exc:  # noqa: BLE001 - raised by run()
            if not self._done.done():
                self._done.set_exception(exc)

    def _fire_due(self) -> None:
        """Fire everything due by now; arm the timer for the next (or say the schedule is done)."""
        start, offsets, fire = self.start, self.offsets, self.fire
        i, count = self.fired, len(offsets)
        t = woke = now()
        while i < count:
            intended = start + offsets[i]
            if intended > t:
                t = now()  # firing took time: what fell due meanwhile goes too
                if intended > t:
                    break
            self.fired = i + 1
            fire(i, intended)
            i += 1
        if i < count:
            if self._fd is not None:
                arm_at(self._fd, max(start + offsets[i], woke + self.tick_s))
        elif self._done is not None and not self._done.done():
            self._done.set_result(None)
