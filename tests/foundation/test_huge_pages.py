"""Backing the heap with huge pages (geo_common.huge_pages): which stretches qualify, and
what this machine's kernel does when asked."""

from __future__ import annotations

import ctypes
import mmap
import re
from pathlib import Path

import pytest

from geo_common.huge_pages import HUGE_PAGE, Report, collapse_heap, collapsible_ranges, huge_bytes

MIB = 1 << 20

MAPS = """\
55d0c8a00000-55d0c8a2c000 r--p 00000000 08:01 1311  /usr/bin/python3.11
55d0c8a2c000-55d0c8c00000 r-xp 0002c000 08:01 1311  /usr/bin/python3.11
55d0ca000000-55d0cb100000 rw-p 00000000 00:00 0     [heap]
7f0000100000-7f0000900000 rw-p 00000000 00:00 0
7f0000900000-7f0000a00000 rw-p 00000000 00:00 0
7f0001000000-7f0001400000 rw-s 00000000 00:01 77    /dev/zero (deleted)
7f0002000000-7f0002400000 r--p 00000000 00:00 0
7f0003000000-7f0003400000 rw-p 00000000 08:01 99    /usr/lib/libfoo.so
7f0004000000-7f0004400000 rw-p 00000000 00:00 0     [anon:glibc: malloc arena]
7ffd00000000-7ffd00400000 rw-p 00000000 00:00 0     [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]
"""


def test_only_private_anonymous_writable_stretches_trimmed_to_whole_pages() -> None:
    assert collapsible_ranges(MAPS) == [
        (0x55D0CA000000, 0x55D0CB000000),  # the heap, its last 1 MiB cut off
        (0x7F0000200000, 0x7F0000800000),  # trimmed at both ends to 2 MiB boundaries
    ]


def test_a_mapping_shorter_than_one_aligned_page_is_left_out() -> None:
    # 2.5 MiB, but straddling a boundary so that no whole aligned 2 MiB page lies inside.
    assert collapsible_ranges("7f0000100000-7f0000380000 rw-p 00000000 00:00 0\n") == []
    assert collapsible_ranges("7f0000000000-7f0000200000 rw-p 00000000 00:00 0\n") == [(0x7F0000000000, 0x7F0000200000)]
    assert collapsible_ranges("7f0000000000-7f0000400000 rw-p 00000000 00:00 0\n", page=4 * MIB) == [
        (0x7F0000000000, 0x7F0000400000)
    ]


@pytest.mark.parametrize("line", ["garbage", "7f00-7f01 rw", "7f0000000000 rw-p 0 00:00 0", "zz-yy rw-p 0 00:00 0"])
def test_a_line_that_is_not_a_maps_line_is_an_error(line: str) -> None:
    with pytest.raises(ValueError):
        collapsible_ranges(line)


def test_this_process_own_listing_parses() -> None:
    ranges = collapsible_ranges(Path("/proc/self/maps").read_text())
    assert all(start % HUGE_PAGE == 0 and end % HUGE_PAGE == 0 and end > start for start, end in ranges)
    assert ranges == sorted(ranges)


def _thp_setting() -> str:
    text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    found = re.search(r"\[(\w+)\]", text)
    assert found, text
    return found.group(1)


def test_collapse_backs_filled_memory_with_huge_pages_and_keeps_its_contents() -> None:
    block = bytearray(64 * MIB)  # its own mapping (above malloc's mmap threshold)
    for i in range(0, len(block), 4096):
        block[i] = i // 4096 % 251
    before = huge_bytes()
    report = collapse_heap()
    assert isinstance(report, Report) and report.huge_before == before
    if _thp_setting() == "never":
        assert report.problem is not None and "never" in report.problem and report.collapsed == 0
        return
    assert report.problem is None, report.describe()
    # The 62 MiB or more of whole 2 MiB pages inside the block are now huge pages.
    assert report.collapsed >= 62 * MIB
    assert report.huge_after - report.huge_before >= 62 * MIB
    assert all(block[i] == i // 4096 % 251 for i in range(0, len(block), 4096))
    # Collapsed, not marked: later faults there stay 4 KiB (no compaction on the request path).
    assert "hg" not in _vm_flags(_smaps_entry(block, aligned=True))
    assert "MiB of the heap in 2 MiB pages" in report.describe()
    # Asking again changes nothing that was collapsed.
    again = collapse_heap()
    assert again.problem is None and again.huge_after >= report.huge_after - 2 * MIB


def test_empty_reserved_memory_is_left_alone() -> None:
    reserved = mmap.mmap(-1, 16 * MIB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # nothing touched
    try:
        report = collapse_heap()
        assert report.problem is None or _thp_setting() == "never"
        # Nothing was in it: it stays unbacked (the kernel may have merged the mapping with a
        # neighbour, so its own pages are asked for), and it is not marked for huge pages.
        assert _resident_pages(reserved) == 0
        assert "hg" not in _vm_flags(_smaps_entry(reserved))
    finally:
        reserved.close()


def _resident_pages(block: mmap.mmap) -> int:
    """How many pages of the whole huge pages inside a mapping are in memory (mincore(2)).

    Only those: a huge page straddling the mapping's edge may share a merged neighbour's
    memory, and a collapse rightly fills it."""
    libc = ctypes.CDLL(None, use_errno=True)
    pointer = ctypes.c_char.from_buffer(block)
    address = ctypes.addressof(pointer)
    del pointer
    start = (address + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
    end = (address + len(block)) & ~(HUGE_PAGE - 1)
    assert end - start >= 2 * HUGE_PAGE
    resident = (ctypes.c_ubyte * ((end - start) // mmap.PAGESIZE))()
    assert libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(end - start), resident) == 0, ctypes.get_errno()
    return sum(flag & 1 for flag in resident)


def _vm_flags(entry: str) -> list[str]:
    flags = re.search(r"^VmFlags:(.*)$", entry, re.M)
    assert flags, entry
    return flags.group(1).split()


def _smaps_entry(block: mmap.mmap | bytearray, *, aligned: bool = False) -> str:
    """The smaps entry of the mapping holding the block's start (``aligned``: its first whole
    huge page, where a collapse acts)."""
    pointer = ctypes.c_char.from_buffer(block)
    address = ctypes.addressof(pointer)
    del pointer  # the mapping can be closed again
    if aligned:
        address = (address + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
    for entry in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", Path("/proc/self/smaps").read_text()):
        low, high = (int(x, 16) for x in entry.split()[0].split("-"))
        if low <= address < high:
            return entry
    raise AssertionError("mapping not found")
