"""A periodic tick finer than the event loop's own timers, for the open-loop drivers.

uvloop's timers (libuv's) move in whole milliseconds, and ``asyncio.sleep`` of less than half
a millisecond returns at once: a driver that paced its sends with it would spin, and take a
whole core from the servers it measures on the same machine. A Linux ``timerfd`` wakes the
loop's epoll at the interval asked, to the microsecond, and costs nothing between ticks; its
read says how many intervals have passed.
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


def periodic_timerfd(interval_s: float) -> int:
    """A non-blocking timerfd that expires every ``interval_s`` seconds, the first time after one interval."""
    if not interval_s > 0:
        raise ValueError(f"the interval must be positive, not {interval_s!r}")
    if not sys.platform.startswith("linux"):
        raise OSError(f"a timerfd needs Linux, and this is {sys.platform}")
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"timerfd_create: {os.strerror(err)}")
    ns = max(1, round(interval_s * 1e9))
    every = _Timespec(ns // 1_000_000_000, ns % 1_000_000_000)
    if libc.timerfd_settime(fd, 0, ctypes.byref(_Itimerspec(every, every)), None) < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"timerfd_settime: {os.strerror(err)}")
    return int(fd)


def expirations(fd: int) -> int:
    """How many intervals have passed since the last read (0 when none has)."""
    try:
        return int(struct.unpack("=Q", os.read(fd, 8))[0])
    except BlockingIOError:
        return 0
