"""The generator's clock and sleeps on uvloop: readings to the microsecond, no wake-up
before a deadline, and no core spun on sleeps shorter than uvloop's millisecond timers; and
the CPU a run counts for the generator."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from loadgen.clock import MIN_SLEEP_S, FineTimer, sleep_until
from loadgen.clock import now as clock_now
from loadgen.runner import run_in_process, run_loop
from loadgen.stats import Recorder


def test_the_generator_runs_on_uvloop() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_loop(loop_module()).startswith("uvloop")


def test_a_sleep_never_ends_before_its_deadline_even_under_a_millisecond() -> None:
    # uvloop rounds a timer of under half a millisecond down to none.
    async def lateness() -> list[float]:
        late = []
        for delay in (0.0001, 0.0003, 0.0006, 0.0015, 0.002):
            deadline = clock_now() + delay
            await sleep_until(deadline)
            late.append(clock_now() - deadline)
        return late

    assert all(late >= 0 for late in run_loop(lateness()))


def test_a_deadline_already_passed_returns_without_yielding_to_the_loop() -> None:
    async def others_ran() -> list[int]:
        ran: list[int] = []
        asyncio.get_running_loop().call_soon(ran.append, 1)
        await sleep_until(clock_now() - 1.0)
        return list(ran)  # as it stands now: the loop runs the callback later, on its way out

    assert run_loop(others_ran()) == []


def test_pacing_finer_than_the_timers_sleeps_instead_of_spinning() -> None:
    async def pace() -> tuple[float, float]:
        cpu = time.process_time()
        start = clock_now()
        for i in range(1, 2001):  # 4,000 deadlines a second for half a second
            await sleep_until(start + i * 0.00025)
        return time.process_time() - cpu, clock_now() - start

    cpu, wall = run_loop(pace())
    assert wall >= 0.5
    # Sleeps that uvloop turned into none would keep this process on a core all along.
    assert cpu < wall / 2, f"{cpu:.2f} s of CPU in {wall:.2f} s of pacing"


def test_a_fine_timer_paces_a_quarter_millisecond_apart_without_spinning_or_waking_early() -> None:
    async def pace() -> tuple[bool, list[float], float, float]:
        late = []
        async with FineTimer() as timer:
            cpu = time.process_time()
            start = clock_now()
            for i in range(1, 2001):  # 4,000 deadlines a second for half a second
                deadline = start + i * 0.00025
                await timer.until(deadline)
                late.append(clock_now() - deadline)
            return timer.fine, late, time.process_time() - cpu, clock_now() - start

    fine, late, cpu, wall = run_loop(pace())
    assert fine  # Linux: a timerfd
    assert min(late) >= 0
    # A tick late at most, but for the odd preemption: well under the millisecond sleeps'
    # three quarters of a millisecond on average.
    assert sorted(late)[len(late) // 2] < MIN_SLEEP_S / 2
    assert cpu < wall / 2, f"{cpu:.2f} s of CPU in {wall:.2f} s of pacing"


def test_a_fine_timer_waits_out_a_far_deadline_and_closes_its_timer() -> None:
    async def far() -> tuple[float, bool]:
        async with FineTimer() as timer:
            deadline = clock_now() + 0.05
            await timer.until(deadline)
            late = clock_now() - deadline
        return late, timer.fine

    late, fine = run_loop(far())
    assert late >= 0
    assert not fine  # the timerfd is closed on the way out


def test_latencies_are_measured_to_the_microsecond(stall_server_class: Any, tmp_path: Path) -> None:
    # On uvloop's own clock (whole milliseconds) every latency would read as a whole number of
    # milliseconds (or the 1 µs floor), whatever the server took.
    with stall_server_class(stall_after=10**9) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "loadgen", "search", "--url", server.url, "--rate", "200", "--duration", "2s",
             "--points", "uniform", "--no-progress", "--out", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "report.json").read_text())["metrics"]
    readings = [v for name in ("service_time", "latency") for k, v in metrics[name].items()
                if k.startswith("p") or k == "max"]
    fractional = [v for v in readings if v > 0.002 and abs(v - round(v)) > 0.01]
    assert fractional, f"every reading a whole number of milliseconds: {readings}"


def test_a_run_counts_the_cpu_the_generator_used_while_its_scenario_ran() -> None:
    async def busy(_options: object, _recorder: Recorder, _live: object) -> None:
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass

    async def idle(_options: object, _recorder: Recorder, _live: object) -> None:
        await asyncio.sleep(0.3)

    def cpu_ms(scenario: Any) -> int:
        recorder = Recorder()
        run_loop(run_in_process(scenario, None, None, recorder, name="t", progress=False, progress_interval_s=1.0))
        return recorder.counters["generator_cpu_ms"]

    assert 300 <= cpu_ms(busy) < 1000
    assert cpu_ms(idle) < 100  # asleep: the watchers' few wake-ups only
