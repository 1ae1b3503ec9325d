"""The machine-pause meter: a core taken from its spinner shows as a gap of that length, and
the processes that took CPU meanwhile are named."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import hiccups  # noqa: E402


def test_a_stat_line_gives_the_name_parent_and_user_plus_system_ticks_even_with_odd_names() -> None:
    line = "4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1 0 123 0 0\n"
    assert hiccups.parse_stat(line) == hiccups.ProcCpu("my (odd) name", 17, 42, 123)


def P(name: str, ticks: int, ppid: int = 1, started: int = 0) -> hiccups.ProcCpu:
    return hiccups.ProcCpu(name, ppid, ticks, started)


def test_the_busiest_processes_come_first_new_ones_count_from_zero_and_meters_are_left_out() -> None:
    before = {
        1: P("init", 100),
        2: P("postgres", 50),
        3: P("meter", 0),
        6: P("old", 900, started=5),
        7: P("kworker/0:1-events", 800),
    }
    # pid 6 was reused by another program meanwhile: it counts from zero. A kernel worker's
    # name changes with its work (pid 7): it is the same process.
    after = {
        1: P("init", 103),
        2: P("postgres", 90),
        3: P("meter", 500),
        4: P("new", 7),
        5: P("idle", 0),
        6: P("reused", 20, started=700),
        7: P("kworker/0:1-mm_percpu_wq", 801),
    }
    busiest = hiccups.top_consumers(before, after, exclude={3}, ticks_per_s=100, count=4)
    assert busiest == [("postgres", 2, 400.0), ("reused", 6, 200.0), ("new", 4, 70.0), ("init", 1, 30.0)]


def test_a_family_is_a_process_and_all_its_descendants() -> None:
    procs = {
        1: P("init", 0, 0),
        10: P("bench", 0, 1),
        11: P("server", 0, 10),
        12: P("worker", 0, 11),
        20: P("postgres", 0, 1),
        21: P("backend", 0, 20),
    }
    assert hiccups.family(procs, 10) == {10, 11, 12}


def test_others_cpu_counts_a_busy_stranger_and_not_this_process_s_own_children(tmp_path: Path) -> None:
    busy = (
        "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "end = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(2)\n"
    )
    script = tmp_path / "busy.py"
    script.write_text(busy)
    with hiccups.OthersCpu() as others:
        # A grandchild whose parent exits at once is adopted by another process: a stranger.
        subprocess.run(
            ["sh", "-c", f"{sys.executable} {script} {tmp_path / 'stranger'} > /dev/null 2>&1 &"], check=True
        )
        child = subprocess.Popen([sys.executable, str(script), str(tmp_path / "child")])
        time.sleep(1.2)  # both have done their work and sleep
    child.wait(10)
    stranger = int((tmp_path / "stranger").read_text())
    used = {pid: ms for _, pid, ms in others.busiest}
    assert used.get(stranger, 0) >= 350, others.busiest
    assert child.pid not in used
    assert others.total_ms is not None and others.total_ms >= used[stranger]
    # The block's own child is left out of the others, but its CPU is there when asked for.
    assert 350 <= others.used_ms([child.pid]) < 1000
    assert others.used_ms([]) == 0


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
