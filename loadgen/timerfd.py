"""Timers finer than the event loop's own, for the open-loop senders: a one-shot timer armed
for each wait (``geo-loadgen search``, through :class:`loadgen.clock.FineTimer`) and a periodic
tick (the benchmarks' driver).

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

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class _Calls:
    """libc's two timerfd calls, bound once, and one timer spec that :func:`arm` fills in place:
    arming is done once per request by a fast sender, and building the structures each time
    would cost several times the system call."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise OSError(f"a timerfd needs Linux, and this is {sys.platform}")
        libc = ctypes.CDLL(None, use_errno=True)
        self.create = libc.timerfd_create
        self.create.argtypes = (ctypes.c_int, ctypes.c_int)
        self.create.restype = ctypes.c_int
        self.settime = libc.timerfd_settime
        self.settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p)
        self.settime.restype = ctypes.c_int
        self.spec = _Itimerspec()
        self.spec_ref = ctypes.byref(self.spec)


_calls: _Calls | None = None


def _c() -> _Calls:
    global _calls
    if _calls is None:
        _calls = _Calls()
    return _calls


def _set(timespec: _Timespec, seconds: float) -> None:
    ns = int(seconds * 1e9)
    timespec.tv_sec, timespec.tv_nsec = divmod(ns, 1_000_000_000)


def new_timerfd() -> int:
    """A non-blocking timerfd, not yet armed (:func:`arm` sets it)."""
    fd = _c().create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"timerfd_create: {os.strerror(err)}")
    return int(fd)


def arm(fd: int, delay_s: float, every_s: float = 0.0) -> None:
    """Make ``fd`` expire ``delay_s`` from now (at least a nanosecond), then every ``every_s`` if that is positive.

    Arming again replaces what was set before, and clears the count of expiries not yet read.
    """
    calls = _calls or _c()
    spec = calls.spec
    _set(spec.it_value, max(delay_s, 1e-9))
    _set(spec.it_interval, max(every_s, 0.0))
    if calls.settime(fd, 0, calls.spec_ref, None) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"timerfd_settime: {os.strerror(err)}")


def periodic_timerfd(interval_s: float) -> int:
    """A non-blocking timerfd that expires every ``interval_s`` seconds, the first time after one interval."""
    if not interval_s > 0:
        raise ValueError(f"the interval must be positive, not {interval_s!r}")
    fd = new_timerfd()
    try:
        arm(fd, interval_s, interval_s)
    except OSError:
        os.close(fd)
        raise
    return fd


def expirations(fd: int) -> int:
    """How many intervals have passed since the last read (0 when none has)."""
    try:
        return int(struct.unpack("=Q", os.read(fd, 8))[0])
    except BlockingIOError:
        return 0
