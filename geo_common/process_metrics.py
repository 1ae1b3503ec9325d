"""The process's own metrics, registered in each app's registry: memory, CPU, file
descriptors, the garbage collector, and the memory limit the process runs under.

prometheus_client's :class:`~prometheus_client.ProcessCollector` (``process_resident_memory_bytes``,
``process_cpu_seconds_total``, ``process_open_fds``...), :class:`~prometheus_client.PlatformCollector`
(``python_info``) and :class:`~prometheus_client.GCCollector` (``python_gc_*``) are registered
in the app's registry rather than used from the global one, so each app exports them on its own
``/metrics`` and several apps in one process (tests) never clash.

``geo_process_memory_limit_bytes`` is the limit of the process's cgroup (a container's memory
limit: ``memory.max`` of cgroup v2, ``memory.limit_in_bytes`` of cgroup v1), read at each
scrape; without a limit (``max``, or no cgroup file readable) it has no sample, so an alert
on ``process_resident_memory_bytes / geo_process_memory_limit_bytes`` stays silent rather
than dividing by a made-up number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Where cgroup file systems are mounted.
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: A cgroup v1 limit at or above this many bytes means "no limit" (the kernel writes the
#: largest multiple of the page size below 2**63).
_V1_UNLIMITED = 1 << 62


def memory_limit_bytes(*, root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """The memory limit of this process's cgroup, bytes; None without one.

    Args:
        root: where the cgroup file systems are mounted.
        proc_cgroup: the process's cgroup membership (``/proc/self/cgroup``).

    Returns:
        The limit, or None when there is none or it cannot be read.
    """
    for path in _limit_files(root, proc_cgroup):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            value = int(text)
        except ValueError:
            continue
        return value if value < _V1_UNLIMITED else None
    return None


def _limit_files(root: Path, proc_cgroup: Path) -> Iterator[Path]:
    """The files that may hold the limit, most specific first."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        relative = path.lstrip("/")
        if hierarchy == "0" and not controllers:  # cgroup v2: one unified hierarchy
            yield root / relative / "memory.max"
        elif "memory" in controllers.split(","):
            yield root / "memory" / relative / "memory.limit_in_bytes"
    # A container with its own cgroup namespace sees its cgroup at the root.
    yield root / "memory.max"
    yield root / "memory" / "memory.limit_in_bytes"


class MemoryLimitCollector(Collector):
    """``geo_process_memory_limit_bytes``, read at each scrape (a limit can change live)."""

    def collect(self) -> Iterator[Metric]:
        limit = GaugeMetricFamily(
            "geo_process_memory_limit_bytes",
            "memory limit of the process's cgroup (container), bytes; no sample without a limit",
        )
        value = memory_limit_bytes()
        if value is not None:
            limit.add_metric([], float(value))
        yield limit


def register_process_metrics(registry: CollectorRegistry) -> None:
    """Register the process, platform, garbage-collector and memory-limit collectors.

    Args:
        registry: an app's own registry.
    """
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(MemoryLimitCollector())
