"""Process tuning (geo_common.tuning): what GEO_PROCESS_TUNING turns on, and that off it changes nothing."""

from __future__ import annotations

import gc
import re

import pytest

from geo_common.huge_pages import Report
from geo_common.tuning import ProcessTuning

from .test_gc_control import _young
from .test_huge_pages import MIB, _smaps_entry, _thp_setting


def test_a_build_within_the_tuning_runs_without_the_collector_and_is_frozen_when_it_succeeds() -> None:
    tuning = ProcessTuning(enabled=True)
    assert gc.isenabled()
    try:
        with tuning.building():
            running = gc.isenabled()
            made = [[i] for i in range(100)]
        assert not running and gc.isenabled()
        assert not _young(made) and not _young(made[99])
        with pytest.raises(ValueError), tuning.building():
            failed = [[i] for i in range(100)]
            raise ValueError
        assert gc.isenabled() and _young(failed)  # after an error nothing is frozen
        gc.disable()  # a process that runs without the collector keeps it off
        with tuning.building():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()  # (what was frozen here stays so: unfreezing would hand back every catalog frozen before)


def test_with_tuning_off_a_build_runs_with_the_collector_and_nothing_is_frozen() -> None:
    tuning = ProcessTuning(enabled=False)
    frozen = gc.get_freeze_count()
    with tuning.building():
        running = gc.isenabled()
        made = [[i] for i in range(100)]
    assert running and gc.isenabled()
    # Nothing joined the permanent generation (objects frozen by earlier tests in this process
    # may leave it meanwhile, when their last reference goes).
    assert _young(made) and _young(made[99]) and gc.get_freeze_count() <= frozen


def _huge_in(block: bytearray) -> int:
    """Bytes of the mapping holding ``block`` that are in huge pages.

    The kernel may have merged the block's mapping with a neighbour that an earlier collapse in
    this process left in huge pages, so only a change of this figure speaks of the block."""
    found = re.search(r"^AnonHugePages:\s+(\d+) kB$", _smaps_entry(block, aligned=True), re.M)
    assert found
    return int(found.group(1)) * 1024


def test_with_tuning_off_nothing_is_collapsed_and_on_the_heap_is() -> None:
    setting = _thp_setting()
    if setting == "always":
        pytest.skip("transparent huge pages are 'always' here: the kernel backs the block by itself")
    block = bytearray(64 * MIB)  # its own mapping (above malloc's mmap threshold)
    for i in range(0, len(block), 4096):
        block[i] = 1
    before = _huge_in(block)
    assert ProcessTuning(enabled=False).collapse_heap() is None
    assert _huge_in(block) == before
    report = ProcessTuning(enabled=True).collapse_heap()
    assert isinstance(report, Report)
    if setting == "never":
        assert report.problem is not None and report.collapsed == 0
    else:
        assert report.problem is None, report.describe()
        assert _huge_in(block) >= before + 62 * MIB  # the whole 2 MiB pages inside the block
