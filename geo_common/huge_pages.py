"""Backing the catalog's memory with 2 MiB pages (Linux transparent huge pages).

A search at a million businesses reads a few dozen places scattered over gigabytes: index
cells, then each hit's id and JSON prefix. With 4 KiB pages nearly every one of those reads
also misses the TLB, and on a virtual machine a TLB miss walks two page tables. Backing the
heap with 2 MiB pages takes most of those walks away (docs/benchmarks.md has the figures).

Python's allocator maps its arenas one MiB at a time and glibc's malloc grows its heap in
small steps, so none of that memory gets huge pages by itself when the system setting is
``madvise`` (the usual default). After each catalog build (when GEO_PROCESS_TUNING is on:
:mod:`geo_common.tuning`), :func:`collapse_heap` asks the kernel to collapse every 2
MiB-aligned stretch of the process's private anonymous memory into huge pages (``MADV_COLLAPSE``, Linux 6.1+: synchronous, in the calling thread, whatever the
system setting short of ``never``). Stretches with nothing in them are refused by the kernel
and stay as they are. Nothing is marked ``MADV_HUGEPAGE``: that would make later page faults
there allocate (and, under the usual ``defrag`` setting, compact memory for) 2 MiB at a time
on the request path, and let ``khugepaged`` rework the heap at any moment; the next rebuild
collapses again instead. This never changes what the process computes; where the kernel says
no, the report says why and nothing else happens.

:func:`collapsible_ranges` is the pure part: which stretches of a ``/proc/self/maps`` listing
qualify.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import time
from dataclasses import dataclass

#: The huge page size this module aligns to (x86-64 and arm64 with 4 KiB base pages).
HUGE_PAGE = 2 << 20
#: Tries of a stretch the kernel refuses with EAGAIN (a resource briefly unavailable).
COLLAPSE_ATTEMPTS = 4

#: madvise(2) advice number (Linux uapi, the same on every architecture).
MADV_COLLAPSE = 25


def collapsible_ranges(maps: str, *, page: int = HUGE_PAGE) -> list[tuple[int, int]]:
    """The ``page``-aligned stretches of private, anonymous, read-write memory in a maps listing.

    Args:
        maps: the text of ``/proc/<pid>/maps``.
        page: the huge page size, bytes (a power of two).

    Returns:
        ``(start, end)`` address pairs, ascending: each mapping that is readable, writable,
        private and anonymous (no file; the ``[heap]`` included, the stacks and the kernel's
        special mappings not), trimmed inwards to ``page`` boundaries, when at least one
        whole page remains.

    Raises:
        ValueError: a line is not a maps line.
    """
    found = []
    for line in maps.splitlines():
        if not line.strip():
            continue
        parts = line.split(maxsplit=5)
        if len(parts) < 5 or "-" not in parts[0] or len(parts[1]) != 4:
            raise ValueError(f"not a /proc/<pid>/maps line: {line!r}")
        low, high = (int(x, 16) for x in parts[0].split("-", 1))
        perms, path = parts[1], parts[5].strip() if len(parts) > 5 else ""
        if perms[:2] != "rw" or perms[3] != "p" or (path and path != "[heap]"):
            continue
        start, end = (low + page - 1) & ~(page - 1), high & ~(page - 1)
        if end - start >= page:
            found.append((start, end))
    return found


@dataclass(frozen=True)
class Report:
    """What :func:`collapse_heap` did.

    Attributes:
        collapsed: bytes collapsed into huge pages.
        huge_before: bytes of the process's anonymous memory in huge pages before.
        huge_after: the same, after.
        seconds: time taken.
        problem: what the kernel refused and why, or why nothing was asked; ``None`` when
            every stretch with something in it was collapsed.
    """

    collapsed: int
    huge_before: int
    huge_after: int
    seconds: float
    problem: str | None = None

    def describe(self) -> str:
        """One line for the log."""
        mib = 1 << 20
        line = (
            f"huge pages: {self.huge_after / mib:,.0f} MiB of the heap in 2 MiB pages "
            f"(was {self.huge_before / mib:,.0f} MiB; {self.collapsed / mib:,.0f} MiB collapsed in {self.seconds:.1f} s)"
        )
        return line if self.problem is None else f"{line}; {self.problem}"


def huge_bytes() -> int:
    """Bytes of this process's anonymous memory now in huge pages (``AnonHugePages``); 0 where
    the kernel does not tell."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def collapse_heap() -> Report:
    """Back this process's private anonymous memory with huge pages, collapsing what is there.

    Call it in a worker thread (ctypes releases the interpreter during each call): it copies
    the memory it collapses, about a second per gigabyte. Reads of the memory meanwhile wait
    a moment where a stretch is being copied; nothing else is affected.

    Returns:
        What was done; a refusal (an old kernel, huge pages disabled, not Linux) is reported
        in ``problem``, never raised.
    """
    started = time.monotonic()
    before = huge_bytes()
    if not sys.platform.startswith("linux"):
        return Report(0, before, before, 0.0, "not Linux: no transparent huge pages")
    try:
        with open("/proc/self/maps") as f:
            ranges = collapsible_ranges(f.read())
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:
        return Report(0, before, before, time.monotonic() - started, f"cannot read the memory map: {exc}")
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    collapsed = 0
    refusals: dict[int, int] = {}  # errno -> bytes
    for start, end in ranges:
        # A stretch with nothing in it yet is refused (EINVAL): a library may have reserved
        # it and use little of it, so it is better left to 4 KiB pages anyway. EAGAIN (no huge
        # page free this instant, on a busy machine) is tried again, a few times.
        for attempt in range(COLLAPSE_ATTEMPTS):
            if madvise(start, end - start, MADV_COLLAPSE) == 0:
                code = 0
                break
            code = ctypes.get_errno()
            if code != errno.EAGAIN:
                break
            time.sleep(0.05 * (attempt + 1))
        if code == 0:
            collapsed += end - start
        elif code not in (errno.ENOMEM, errno.EFAULT):  # not freed or remapped since the listing
            refusals[code] = refusals.get(code, 0) + end - start
    problem = None
    if errno.EINVAL in refusals and not collapsed:
        problem = (
            "the kernel refused MADV_COLLAPSE (EINVAL): it needs Linux 6.1+ and transparent huge pages "
            "not set to never (/sys/kernel/mm/transparent_hugepage/enabled)"
        )
    elif set(refusals) - {errno.EINVAL}:
        problem = "; ".join(
            f"{refused / (1 << 20):,.0f} MiB not collapsed: {os.strerror(code)}"
            for code, refused in sorted(refusals.items())
            if code != errno.EINVAL
        )
    return Report(collapsed, before, huge_bytes(), time.monotonic() - started, problem)
