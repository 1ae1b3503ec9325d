"""Timers finer than the event loop's own, for the open-loop senders: a one-shot timer armed
for each wake-up (:class:`loadgen.clock.Pacer`, which ``geo-loadgen search`` and the
benchmarks' driver send from).

uvloop's timers (libuv's) move in whole milliseconds, and ``asyncio.sleep`` of less than half
a millisecond returns at once: a driver that paced its sends with it would spin, and take a
whole core from the servers it measures on the same machine. A Linux ``timerfd`` wakes the
loop's epoll at the time asked, to the microsecond, and costs nothing until then; its read says
how many expiries have passed.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import time

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC


#: struct itimerspec: {it_interval, it_value}, each {tv_sec, tv_nsec} as C longs.
_ITIMERSPEC = struct.Struct("@4l")
_TFD_TIMER_ABSTIME = 1
_NS = 1_000_000_000


class _Calls:
    """libc's two timerfd calls, bound once: arming is done once per wake-up by a fast
    sender, so its cost is kept to the system call, a ``struct.pack`` of the timer spec and
    ctypes' passing of those bytes."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise OSError(f"a timerfd needs Linux, and this is {sys.platform}")
        libc = ctypes.CDLL(None, use_errno=True)
        self.create = libc.timerfd_create
        self.create.argtypes = (ctypes.c_int, ctypes.c_int)
        self.create.restype = ctypes.c_int
        self.settime = libc.timerfd_settime
        self.settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
        self.settime.restype = ctypes.c_int
        # Absolute deadlines are read on the timerfd's clock, CLOCK_MONOTONIC: the clock of
        # time.perf_counter (and so of loadgen.clock.now) on Linux.
        self.abstime_ok = time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"


_calls: _Calls | None = None


def _c() -> _Calls:
    global _calls
    if _calls is None:
        _calls = _Calls()
    return _calls


def _settime(fd: int, flags: int, value_ns: int) -> None:
    """Arm ``fd`` to expire once (no interval) at ``value_ns``."""
    spec = _ITIMERSPEC.pack(0, 0, *divmod(value_ns, _NS))
    if (_calls or _c()).settime(fd, flags, spec, None) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"timerfd_settime: {os.strerror(err)}")


def new_timerfd() -> int:
    """A non-blocking timerfd, not yet armed (:func:`arm` sets it)."""
    fd = _c().create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"timerfd_create: {os.strerror(err)}")
    return int(fd)


def arm(fd: int, delay_s: float) -> None:
    """Make ``fd`` expire once, ``delay_s`` from now (at least a nanosecond).

    Arming again replaces what was set before, and clears the count of expiries not yet read.
    """
    _settime(fd, 0, max(int(delay_s * 1e9), 1))


def arm_at(fd: int, deadline: float) -> None:
    """Make ``fd`` expire once, when ``time.perf_counter()`` reaches ``deadline`` (at once if it
    has): no reading of the clock, and no lateness from the time between reading it and arming.

    Arming again replaces what was set before, and clears the count of expiries not yet read.
    """
    calls = _calls or _c()
    if calls.abstime_ok:
        _settime(fd, _TFD_TIMER_ABSTIME, max(int(deadline * 1e9), 1))
    else:  # perf_counter on another clock: the time left, from a reading of it
        arm(fd, deadline - time.perf_counter())


def expirations(fd: int) -> int:
    """How many expiries have passed since the last read or arming: 0 or 1 for a one-shot timer."""
    try:
        return int(struct.unpack("=Q", os.read(fd, 8))[0])
    except BlockingIOError:
        return 0
