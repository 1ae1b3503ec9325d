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


def proc(name: str, ticks: int, ppid: int = 1, started: int = 0) -> hiccups.ProcCpu:
    return hiccups.ProcCpu(name, ppid, ticks, started)


def test_the_busiest_processes_come_first_new_ones_count_from_zero_and_meters_are_left_out() -> None:
    before = {
        1: proc("init", 100),
        2: proc("postgres", 50),
        3: proc("meter", 0),
        6: proc("old", 900, started=5),
        7: proc("kworker/0:1-events", 800),
    }
    # pid 6 was reused by another program meanwhile: it counts from zero. A kernel worker's
    # name changes with its work (pid 7): it is the same process.
    after = {
        1: proc("init", 103),
        2: proc("postgres", 90),
        3: proc("meter", 500),
        4: proc("new", 7),
        5: proc("idle", 0),
        6: proc("reused", 20, started=700),
        7: proc("kworker/0:1-mm_percpu_wq", 801),
    }
    busiest = hiccups.top_consumers(before, after, exclude={3}, ticks_per_s=100, count=4)
    assert busiest == [("postgres", 2, 400.0), ("reused", 6, 200.0), ("new", 4, 70.0), ("init", 1, 30.0)]


def test_a_family_is_a_process_and_all_its_descendants() -> None:
    procs = {
        1: proc("init", 0, 0),
        10: proc("bench", 0, 1),
        11: proc("server", 0, 10),
        12: proc("worker", 0, 11),
        20: proc("postgres", 0, 1),
        21: proc("backend", 0, 20),
    }
    assert hiccups.family(procs, 10) == {10, 11, 12}


def test_others_cpu_counts_a_busy_stranger_and_not_this_process_s_own_children(tmp_path: Path) -> None:
    # Each busy process spins 0.4 s of CPU, says so, and stays alive until released, so the
    # figures are read while both are there however long a loaded machine takes to run them.
    busy = (
        "import os, sys, time\nfrom pathlib import Path\nout = Path(sys.argv[1])\n"
        "end = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
        "out.with_suffix('.tmp').write_text(str(os.getpid()))\nout.with_suffix('.tmp').rename(out)\nrelease = out.with_name('release')\n"
        "deadline = time.monotonic() + 120\n"
        "while not release.exists() and time.monotonic() < deadline: time.sleep(0.02)\n"
    )
    script = tmp_path / "busy.py"
    script.write_text(busy)
    ready = (tmp_path / "stranger", tmp_path / "child")
    try:
        with hiccups.OthersCpu() as others:
            # A grandchild whose parent exits at once is adopted by another process: a stranger.
            subprocess.run(["sh", "-c", f"{sys.executable} {script} {ready[0]} > /dev/null 2>&1 &"], check=True)
            child = subprocess.Popen([sys.executable, str(script), str(ready[1])])
            deadline = time.monotonic() + 60
            while not all(p.exists() for p in ready):
                assert time.monotonic() < deadline, "the busy processes did not finish their work in 60 s"
                time.sleep(0.02)
    finally:
        (tmp_path / "release").touch()
    child.wait(30)
    stranger = int(ready[0].read_text())
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
