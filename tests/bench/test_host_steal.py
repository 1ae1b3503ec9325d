"""The host's steal, read beside every benchmark figure: parsed from /proc/stat's own format."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import location_api_bench as bench  # noqa: E402
from host_steal import CpuTimes, StealMeter, parse_cpu_times, read_cpu_times, stolen_share  # noqa: E402

# The head of a real /proc/stat (Linux 6.x, two cores): user nice system idle iowait irq
# softirq steal guest guest_nice.
PROC_STAT = """\
cpu  9387 0 8761 1579220 823 0 415 72755 40 7
cpu0 4242 0 3911 789835 298 0 77 38715 0 0
cpu1 5144 0 4850 789385 524 0 338 34039 0 0
intr 1234 0 0
ctxt 98765
"""


def test_the_aggregate_line_gives_steal_and_every_tick_but_guest_time_once() -> None:
    times = parse_cpu_times(PROC_STAT)
    assert times.steal == 72755
    # guest (40) and guest_nice (7) are already inside user and nice.
    assert times.total == 9387 + 0 + 8761 + 1579220 + 823 + 0 + 415 + 72755


def test_the_per_core_lines_are_not_taken_for_the_aggregate() -> None:
    only_cores = "\n".join(line for line in PROC_STAT.splitlines() if not line.startswith("cpu "))
    with pytest.raises(ValueError, match="no aggregate cpu line"):
        parse_cpu_times(only_cores)


def test_a_kernel_without_a_steal_field_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no steal field"):
        parse_cpu_times("cpu  9387 0 8761 1579220 823 0 415\n")


@pytest.mark.parametrize(
    ("before", "after", "share"),
    [
        (CpuTimes(100, 1000), CpuTimes(150, 1200), 0.25),
        (CpuTimes(100, 1000), CpuTimes(100, 1200), 0.0),
        (CpuTimes(100, 1000), CpuTimes(100, 1000), 0.0),  # no tick passed: nothing stolen
    ],
)
def test_the_share_stolen_is_steal_over_all_time_between_readings(
    before: CpuTimes, after: CpuTimes, share: float
) -> None:
    assert stolen_share(before, after) == share


def test_this_machine_is_read_and_its_clock_ticks_on() -> None:
    first = read_cpu_times()
    assert first is not None
    with StealMeter() as meter:
        spent = sum(i * i for i in range(3_000_000))  # over a tick (10 ms) of CPU
    second = read_cpu_times()
    assert second is not None and spent > 0
    assert second.total > first.total and second.steal >= first.steal
    assert meter.share is not None and 0.0 <= meter.share <= 1.0


def test_a_machine_without_proc_stat_gives_no_share(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import host_steal

    monkeypatch.setattr(host_steal, "PROC_STAT", tmp_path / "absent")
    assert read_cpu_times() is None
    with StealMeter() as meter:
        pass
    assert meter.share is None


def test_open_loop_medians_carry_the_steal_only_when_every_run_has_it() -> None:
    run = {"rate": 100.0, "p50_ms": 1.0, "p99_ms": 5.0, "p999_ms": 9.0, "max_ms": 12.0, "completed": 1000, "errors": 0}
    shares = [0.01, 0.30, 0.02]
    summary = bench.median_of_runs([{**run, "host_steal": s} for s in shares])
    assert summary["host_steal"] == 0.02
    unknown = bench.median_of_runs([{**run, "host_steal": 0.01}, {**run, "host_steal": None}])
    assert unknown["host_steal"] is None
    assert bench.steal_text(None) == "host steal unknown"
    assert bench.steal_text(0.0125) == "host steal 1.2%"
