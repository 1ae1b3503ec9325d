"""Is this machine quiet enough to measure a 10 ms tail? Pauses that any process on it would see.

For ``--duration`` seconds one process per core spins on the clock, pinned to its core, and
notes every gap between two readings longer than ``--gap-ms``: time its core was given to
something else (another process, a kernel thread) or taken by the host. Meanwhile a sleeper
wakes every millisecond under ``SCHED_FIFO`` (real-time: it preempts every ordinary process
and kernel thread) and notes every wake-up later than ``--gap-ms``. So:

* a spinner's gap with the sleeper on time means other work on this machine took the core
  (the processes that used the most CPU meanwhile are listed, from ``/proc``);
* a gap that the sleeper also saw, or host steal (``/proc/stat``), means the host paused it.

A server sharing the cores pauses as the spinners do, and a request that arrives during a
pause waits it out: at 10,000 requests a second, two 30 ms pauses in a 10 s run are enough
for a p99 above 10 ms. docs/benchmarks.md (location_api) has what it found.

Usage::

    .venv/bin/python bench/hiccups.py                 # 30 s, gaps over 5 ms
    .venv/bin/python bench/hiccups.py --duration 60 --gap-ms 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from host_steal import StealMeter  # noqa: E402

OUT = REPO / "bench" / "out" / "hiccups"
SLEEP_S = 0.001


@dataclass(frozen=True)
class Gap:
    """A pause seen by one meter: when (seconds since the start) and how long, in milliseconds."""

    at_s: float
    ms: float


def spin(core: int, duration_s: float, gap_s: float) -> list[Gap]:
    """Read the clock on ``core`` without pause for ``duration_s``; the gaps longer than ``gap_s``."""
    os.sched_setaffinity(0, {core})
    gaps = []
    start = last = time.perf_counter()
    while last - start < duration_s:
        now = time.perf_counter()
        if now - last > gap_s:
            gaps.append(Gap(round(now - start, 3), round((now - last) * 1000, 2)))
        last = now
    return gaps


def sleep_real_time(duration_s: float, gap_s: float) -> tuple[list[Gap], str | None]:
    """Wake every millisecond under SCHED_FIFO; the wake-ups later than ``gap_s``, and why it
    could not run real-time (None when it did)."""
    problem = None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    except (OSError, AttributeError) as exc:
        problem = f"not real-time ({exc}): its lateness includes ordinary scheduling"
    gaps = []
    start = time.perf_counter()
    while (before := time.perf_counter()) - start < duration_s:
        time.sleep(SLEEP_S)
        late = time.perf_counter() - before - SLEEP_S
        if late > gap_s:
            gaps.append(Gap(round(before - start, 3), round(late * 1000, 2)))
    return gaps, problem


@dataclass(frozen=True)
class ProcCpu:
    """One process as ``/proc/PID/stat`` shows it: name, parent, CPU time so far (user +
    system) and when it started, in clock ticks."""

    name: str
    ppid: int
    ticks: int
    started: int


def cpu_by_process(proc: Path = Path("/proc")) -> dict[int, ProcCpu]:
    """Every process, by pid."""
    out = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        out[int(entry.name)] = parse_stat(stat)
    return out


def parse_stat(stat: str) -> ProcCpu:
    """One ``/proc/PID/stat`` line (the name may hold spaces and parentheses)."""
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    # state, ppid, ... utime, stime, ... starttime: fields 3, 4, 14, 15 and 22 of the line
    return ProcCpu(name, int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19]))


def family(processes: Mapping[int, ProcCpu], root: int) -> set[int]:
    """``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for pid, proc in processes.items():
        children.setdefault(proc.ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def top_consumers(
    before: Mapping[int, ProcCpu], after: Mapping[int, ProcCpu], *, exclude: set[int], ticks_per_s: int, count: int = 10
) -> list[tuple[str, int, float]]:
    """The ``count`` processes that used the most CPU between two snapshots: (name, pid, milliseconds).

    A process that started in between (a new pid, or one reused: another start time) counts
    from zero, one that ended is not seen; ``exclude`` leaves out the meters. Names are not
    compared: a kernel worker's changes with the work it does.
    """
    used = []
    for pid, proc in after.items():
        if pid in exclude:
            continue
        earlier = before.get(pid)
        delta = proc.ticks - (earlier.ticks if earlier is not None and earlier.started == proc.started else 0)
        if delta > 0:
            used.append((proc.name, pid, delta * 1000 / ticks_per_s))
    used.sort(key=lambda row: -row[2])
    return used[:count]


class OthersCpu:
    """The CPU that processes outside this one's family (itself and its descendants) used
    while the block ran: what took the cores from a measurement besides what it measures.

    ``total_ms`` and ``busiest`` (name, pid, milliseconds; the top ``count``) are set on the
    way out. A process that ended inside the block is not counted. :meth:`used_ms` reads the
    same two snapshots for given processes (those the block measured, say).
    """

    def __init__(self, count: int = 5) -> None:
        self.count = count
        self.total_ms: float | None = None
        self.busiest: list[tuple[str, int, float]] = []
        self._before: dict[int, ProcCpu] = {}
        self._after: dict[int, ProcCpu] = {}

    def __enter__(self) -> OthersCpu:
        self._before = cpu_by_process()
        return self

    def __exit__(self, *_exc: object) -> None:
        after = self._after = cpu_by_process()
        used = top_consumers(
            self._before,
            after,
            exclude=family(after, os.getpid()),
            ticks_per_s=os.sysconf("SC_CLK_TCK"),
            count=len(after),
        )
        self.total_ms = sum(ms for _, _, ms in used)
        self.busiest = used[: self.count]

    def used_ms(self, pids: Iterable[int]) -> float:
        """The CPU the processes ``pids`` used inside the block, milliseconds (after it ended)."""
        wanted = set(pids)
        return sum(
            ms
            for _, _, ms in top_consumers(
                self._before,
                self._after,
                exclude=set(self._after) - wanted,
                ticks_per_s=os.sysconf("SC_CLK_TCK"),
                count=len(wanted),
            )
        )


def measure(duration_s: float, gap_s: float) -> dict[str, Any]:
    """Run the spinners and the sleeper at once; what each saw, the steal, and the busiest other processes."""
    cores = sorted(os.sched_getaffinity(0))
    ctx = mp.get_context("fork")
    # The meters are this process's pool, alive until the block ends: its family, left out.
    with ctx.Pool(len(cores) + 1) as pool, StealMeter() as steal, OthersCpu(count=10) as others:
        spinners = [pool.apply_async(spin, (core, duration_s, gap_s)) for core in cores]
        sleeper = pool.apply_async(sleep_real_time, (duration_s, gap_s))
        spun = [s.get(timeout=duration_s + 30) for s in spinners]
        slept, problem = sleeper.get(timeout=duration_s + 30)
    return {
        "duration_s": duration_s,
        "gap_ms": gap_s * 1000,
        "spinners": {str(core): [asdict(g) for g in gaps] for core, gaps in zip(cores, spun)},
        "sleeper": [asdict(g) for g in slept],
        "sleeper_problem": problem,
        "host_steal": steal.share,
        "busiest": [{"name": n, "pid": p, "cpu_ms": round(ms)} for n, p, ms in others.busiest],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Pauses on this machine that any process would see (module docstring)."
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--gap-ms", type=float, default=5.0, help="report pauses longer than this (default 5)")
    args = parser.parse_args(argv)
    if not args.duration > 0 or not args.gap_ms > 0:
        parser.error("--duration and --gap-ms must be positive")
    print(
        f"hiccups: {args.duration:g} s, one spinner per core and a real-time sleeper; pauses over {args.gap_ms:g} ms",
        file=sys.stderr,
        flush=True,
    )
    result = measure(args.duration, args.gap_ms / 1000)
    for core, gaps in result["spinners"].items():
        longest = max((g["ms"] for g in gaps), default=0.0)
        print(
            f"core {core}: {len(gaps)} pauses, {sum(g['ms'] for g in gaps):.0f} ms in all, longest {longest:.1f} ms"
            + (f"; at {', '.join(str(g['at_s']) for g in gaps[:10])} s" if gaps else "")
        )
    late = result["sleeper"]
    print(
        f"real-time sleeper: {len(late)} late wake-ups"
        + (f", longest {max(g['ms'] for g in late):.1f} ms" if late else "")
        + (f" ({result['sleeper_problem']})" if result["sleeper_problem"] else "")
    )
    steal = result["host_steal"]
    print("host steal: " + ("unknown" if steal is None else f"{steal:.1%}"))
    print(
        "busiest other processes: " + ", ".join(f"{b['name']} ({b['pid']}) {b['cpu_ms']} ms" for b in result["busiest"])
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(
        json.dumps({"command": " ".join([Path(sys.executable).name, *sys.argv]), **result}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
