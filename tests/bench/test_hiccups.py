"""The machine-pause meter: a core taken from its spinner shows as a gap of that length, and
the processes that took CPU meanwhile are named."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import hiccups  # noqa: E402


def test_a_stat_line_gives_the_name_and_user_plus_system_ticks_even_with_odd_names() -> None:
    line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1 0 100 0 0\n"
    assert hiccups.parse_stat(line) == ("my (odd) name", 42)


def test_the_busiest_processes_come_first_new_ones_count_from_zero_and_meters_are_left_out() -> None:
    before = {1: ("init", 100), 2: ("postgres", 50), 3: ("meter", 0)}
    after = {1: ("init", 103), 2: ("postgres", 90), 3: ("meter", 500), 4: ("new", 7), 5: ("idle", 0)}
    busiest = hiccups.top_consumers(before, after, exclude={3}, ticks_per_s=100, count=2)
    assert busiest == [("postgres", 2, 400.0), ("new", 4, 70.0)]


def _hog(core: int, after_s: float, for_s: float) -> None:
    os.sched_setaffinity(0, {core})
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))  # preempts the ordinary spinner
    time.sleep(after_s)
    end = time.perf_counter() + for_s
    while time.perf_counter() < end:
        pass


def _spin(core: int, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    queue.put(hiccups.spin(core, 1.0, 0.005))


def test_a_core_taken_from_the_spinner_shows_as_a_gap_about_that_long() -> None:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    spinner = ctx.Process(target=_spin, args=(0, queue))
    hog = ctx.Process(target=_hog, args=(0, 0.3, 0.06))
    spinner.start()
    hog.start()
    gaps = queue.get(timeout=30)
    spinner.join(10)
    hog.join(10)
    assert hog.exitcode == 0, "the hog could not run real-time on core 0"
    assert any(55 <= g.ms <= 200 and 0.2 <= g.at_s <= 0.9 for g in gaps), gaps


def test_the_sleeper_runs_real_time_and_is_on_time_on_a_quiet_loop() -> None:
    with mp.get_context("fork").Pool(1) as pool:  # real-time in a process of its own, not this one
        late, problem = pool.apply(hiccups.sleep_real_time, (0.3, 0.05))
    assert problem is None  # root here: SCHED_FIFO allowed
    assert late == []  # nothing here holds a real-time task off a core for 50 ms
