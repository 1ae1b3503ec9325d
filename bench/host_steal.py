"""CPU time the host took from this machine while a measurement ran: the ``steal`` of /proc/stat.

On a virtual machine the hypervisor may run something else on a core this machine believes
it has; the guest kernel counts that time as *steal*. During steal no process of the guest
runs, however idle the guest looks, so a server's latency tail grows with it and its
throughput drops, through no fault of its own. The benchmarks record the share stolen
during each measurement beside the figures, so that a run on a contended host can be told
from a slow server. On a machine that is not virtual, steal stays at zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class CpuTimes:
    """All cores' time since boot, in clock ticks (USER_HZ): stolen, and in all."""

    steal: int
    total: int


def parse_cpu_times(proc_stat: str) -> CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat's text.

    Its fields are user, nice, system, idle, iowait, irq, softirq, steal, then guest and
    guest_nice, which are already counted in user and nice and so are not added again.

    Raises:
        ValueError: when the text has no aggregate ``cpu`` line with a steal field
            (kernels before 2.6.11).
    """
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            if len(fields) < 9:
                raise ValueError(f"/proc/stat's cpu line has no steal field: {line!r}")
            ticks = [int(f) for f in fields[1:9]]
            return CpuTimes(steal=ticks[7], total=sum(ticks))
    raise ValueError("/proc/stat has no aggregate cpu line")


def stolen_share(before: CpuTimes, after: CpuTimes) -> float:
    """The share of all cores' time between two readings that the host took (0..1)."""
    elapsed = after.total - before.total
    return (after.steal - before.steal) / elapsed if elapsed > 0 else 0.0


def read_cpu_times() -> CpuTimes | None:
    """This machine's reading, or None where there is no /proc/stat (not Linux)."""
    try:
        return parse_cpu_times(PROC_STAT.read_text())
    except (OSError, ValueError):
        return None


class StealMeter:
    """``with StealMeter() as meter: ...`` then ``meter.share``: the share stolen meanwhile.

    ``share`` is None where steal cannot be read.
    """

    def __init__(self) -> None:
        self._before: CpuTimes | None = None
        self.share: float | None = None

    def __enter__(self) -> StealMeter:
        self._before = read_cpu_times()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        after = read_cpu_times()
        if self._before is not None and after is not None:
            self.share = stolen_share(self._before, after)
