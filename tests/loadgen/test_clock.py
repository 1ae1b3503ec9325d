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

import pytest

from loadgen.clock import MIN_SLEEP_S, Pacer, sleep_until
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


def pace(offsets: list[float], fire: Any = None) -> tuple[list[tuple[int, float, float]], float, float]:
    """Run a :class:`Pacer` over ``offsets`` from a little after now: each firing's index,
    intended time and lateness; the CPU and wall time the pacing took."""
    fired: list[tuple[int, float, float]] = []

    def record(i: int, intended: float) -> None:
        fired.append((i, intended, clock_now() - intended))
        if fire is not None:
            fire(i, intended)

    async def run() -> tuple[float, float]:
        cpu, start = time.process_time(), clock_now()
        await Pacer(start + 0.01, offsets, record).run()
        return time.process_time() - cpu, clock_now() - start

    cpu, wall = run_loop(run())
    return fired, cpu, wall


def test_a_pacer_fires_a_quarter_millisecond_apart_in_order_without_spinning_or_firing_early() -> None:
    offsets = [i * 0.00025 for i in range(2000)]  # 4,000 a second for half a second
    fired, cpu, wall = pace(offsets)
    assert [i for i, _, _ in fired] == list(range(2000))
    late = [lateness for _, _, lateness in fired]
    assert min(late) >= 0
    # A tick late at most, but for the odd preemption: well under the millisecond sleeps'
    # three quarters of a millisecond on average.
    assert sorted(late)[len(late) // 2] < MIN_SLEEP_S / 2
    assert wall >= 0.5
    assert cpu < wall / 2, f"{cpu:.2f} s of CPU in {wall:.2f} s of pacing"


def test_a_pacer_waits_out_far_gaps_and_fires_what_fell_due_together_at_once() -> None:
    # A gap of 80 ms, then ten due at the same instant, then one more.
    offsets = [0.0, 0.08] + [0.1] * 10 + [0.15]
    fired, _cpu, wall = pace(offsets)
    assert [i for i, _, _ in fired] == list(range(len(offsets)))
    assert all(lateness >= 0 for _, _, lateness in fired)
    assert [round(intended - fired[0][1], 6) for _, intended, _ in fired] == [round(o, 6) for o in offsets]
    assert 0.15 <= wall < 1.0


def test_a_pacer_that_fires_slower_than_its_schedule_fires_the_backlog_back_to_back_and_shows_the_lateness() -> None:
    # Each firing takes 2 ms of CPU and the schedule asks for one every 0.5 ms: the pacer
    # falls behind, and fires what is due back to back, each firing late by all it waited.
    def slow(_i: int, _intended: float) -> None:
        end = time.process_time() + 0.002
        while time.process_time() < end:
            pass

    fired, _cpu, _wall = pace([i * 0.0005 for i in range(100)], slow)
    assert [i for i, _, _ in fired] == list(range(100))
    late = [lateness for _, _, lateness in fired]
    assert late[-1] > 0.1  # behind by about 150 ms at the end: the lateness is shown, not hidden


def test_a_pacer_with_a_tick_wakes_at_most_once_a_tick_and_sends_nothing_early() -> None:
    # 10,000 a second for 0.3 s, with a 5 ms tick: firings come in bursts a tick apart.
    offsets = [i * 0.0001 for i in range(3000)]
    tick = 0.005
    fired: list[tuple[int, float, float]] = []

    def record(i: int, intended: float) -> None:
        fired.append((i, intended, clock_now()))

    async def run() -> Pacer:
        pacer = Pacer(clock_now() + 0.01, offsets, record, tick_s=tick)
        await pacer.run()
        return pacer

    pacer = run_loop(run())
    assert [i for i, _, _ in fired] == list(range(3000))
    assert all(at >= intended for _, intended, at in fired)
    # About one wake-up a tick (fewer when the loop was held up), never one a request.
    assert 0.3 / tick / 2 <= pacer.wake_ups <= 0.3 / tick + 2
    late = sorted(at - intended for _, intended, at in fired)
    assert late[len(late) // 2] < tick  # late by up to a tick, half a tick on average


def test_an_error_in_a_firing_stops_the_pacer_and_is_raised() -> None:
    def boom(i: int, _intended: float) -> None:
        if i == 3:
            raise RuntimeError("firing 3 failed")

    fired: list[int] = []

    async def run() -> None:
        await Pacer(clock_now(), [i * 0.001 for i in range(10)], lambda i, t: (fired.append(i), boom(i, t))).run()

    with pytest.raises(RuntimeError, match="firing 3 failed"):
        run_loop(run())
    assert fired == [0, 1, 2, 3]


def test_latencies_are_measured_to_the_microsecond(stall_server_class: Any, tmp_path: Path) -> None:
    # On uvloop's own clock (whole milliseconds) every latency would read as a whole number of
    # milliseconds (or the 1 µs floor), whatever the server took.
    with stall_server_class(stall_after=10**9) as server:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "loadgen",
                "search",
                "--url",
                server.url,
                "--rate",
                "200",
                "--duration",
                "2s",
                "--points",
                "uniform",
                "--no-progress",
                "--out",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "report.json").read_text())["metrics"]
    readings = [
        v for name in ("service_time", "latency") for k, v in metrics[name].items() if k.startswith("p") or k == "max"
    ]
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
