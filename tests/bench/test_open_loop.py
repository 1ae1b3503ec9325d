"""The benchmarks' open-loop driver: every request sent at its time, and no core spent waiting.

The driver shares the machine with the servers it measures, so a driver that spun between
sends would take a core from them; these tests hold it to sleeping between wake-ups, and
the one-shot timerfd it wakes by (geo-loadgen's Pacer) to its times.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import location_api_bench as bench  # noqa: E402
from loadgen.timerfd import arm, arm_at, expirations, new_timerfd  # noqa: E402


def test_a_one_shot_timerfd_expires_once_and_rearming_replaces_the_pending_time() -> None:
    fd = new_timerfd()
    try:
        assert expirations(fd) == 0  # not armed: never expires
        arm(fd, 0.02)
        time.sleep(0.1)
        assert expirations(fd) == 1  # once, not every 20 ms
        arm(fd, 10.0)
        arm(fd, 0.01)  # the second arming replaces the first
        time.sleep(0.05)
        assert expirations(fd) == 1
        arm(fd, 0.05)
        assert expirations(fd) == 0  # a read before the time counts nothing
    finally:
        os.close(fd)


def test_a_timerfd_armed_at_a_perf_counter_time_expires_then_and_not_before() -> None:
    fd = new_timerfd()
    try:
        deadline = time.perf_counter() + 0.03
        arm_at(fd, deadline)
        while not expirations(fd):
            time.sleep(0.0005)
        # On the clock of perf_counter: the expiry is seen at or after the deadline, and not
        # long after it (a clock off by as much as a second would show here).
        assert 0 <= time.perf_counter() - deadline < 0.02
        arm_at(fd, time.perf_counter() - 1.0)  # a time already passed: at once
        time.sleep(0.005)
        assert expirations(fd) == 1
    finally:
        os.close(fd)


def test_driver_sends_every_request_and_sleeps_between_ticks(tmp_path: Path) -> None:
    paths = tmp_path / "paths.txt"
    paths.write_text("".join(f"/v1/search/nearby?latitude={lat}&longitude=2.35\n" for lat in (48.1, 48.5, 48.9)))
    rate, duration = 1000.0, 3.0
    servers = bench.start_servers("hello", 1, dict(os.environ))
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = bench.drive(servers.port, paths, rate, duration)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        servers.stop()
    assert result["completed"] == rate * duration
    assert result["errors"] == 0
    assert result["rate"] == rate
    assert result["host_steal"] is not None and 0.0 <= result["host_steal"] <= 1.0
    # Other processes' CPU leaves out the bench's own: the server it drove is its child.
    assert result["others_cpu_ms"] is not None and result["others_cpu_ms"] >= 0
    assert not {b["pid"] for b in result["others_busiest"]} & {p.pid for p in servers.procs}
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["p999_ms"] <= result["max_ms"]
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    # A driver that spun between sends would use a whole core for the run (3 s); this one
    # starts Python (well under a second of CPU, more on a busy machine) and then mostly sleeps.
    assert cpu < 0.8 * duration, f"the driver used {cpu:.2f} s of CPU in a {duration:.0f} s run"
    assert 0 < result["cpu_s"] <= cpu  # its own count, from connecting to the last answer
