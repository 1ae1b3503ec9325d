"""The live panel does not disturb what a run measures: geo-loadgen search against the real API,
once on a pseudo-terminal (so the panel draws) and once with --no-progress, at the same rate.

A refresh that walks whole histograms on the sending loop stalls it for tens of milliseconds
twice a second, and the requests due meanwhile carry the stall, so every second's p99 shows
it. The comparison is of the medians over the seconds of the two runs, so a few seconds
disturbed by the rest of the machine (two cores shared with other work) do not decide it; the
margin (15 ms) is far above what a cheap refresh adds and below the stall of one walk of a
histogram's counts in Python, even on a fast machine.
"""

from __future__ import annotations

import asyncio
import csv
import fcntl
import json
import os
import pty
import statistics
import struct
import sys
import termios
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from geo_common.settings import Settings
from location_api.app import create_app
from tests.conftest import TIMEOUT_FACTOR
from tests.location_api.conftest import drop_database, small_database

RATE = 300
DURATION_S = 8
MARGIN_MS = 15.0


@pytest.fixture(scope="module")
async def api(settings: Settings) -> AsyncIterator[str]:
    """The search API on port 0 over a database of 3,000 real places."""
    small = await small_database(settings, "progress", places=3_000)
    server = TestServer(create_app(replace(small, api_role="all")), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()
    await drop_database(settings.pg_primary, small.pg_primary.rpartition("/")[2])


def search_args(url: str, out: Path) -> list[str]:
    return [
        "-m",
        "loadgen",
        "search",
        "--url",
        url,
        "--rate",
        str(RATE),
        "--duration",
        f"{DURATION_S}s",
        "--out",
        str(out),
    ]


async def run_without_progress(url: str, out: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *search_args(url, out),
        "--no-progress",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    text, _ = await asyncio.wait_for(proc.communicate(), 60 * TIMEOUT_FACTOR)
    assert proc.returncode == 0, text.decode()


async def run_on_a_terminal(url: str, out: Path) -> str:
    """Run with stderr on a pseudo-terminal, as a user at a terminal does; what it drew there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    drawn = bytearray()
    closed = asyncio.get_running_loop().create_future()

    def read() -> None:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the last holder of the terminal's other end has gone
            chunk = b""
        if chunk:
            drawn.extend(chunk)
            return
        loop.remove_reader(leader)
        if not closed.done():
            closed.set_result(None)

    loop = asyncio.get_running_loop()
    loop.add_reader(leader, read)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *search_args(url, out),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=follower,
            env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"},
        )
        os.close(follower)
        follower = -1
        text, _ = await asyncio.wait_for(proc.communicate(), 60 * TIMEOUT_FACTOR)
        assert proc.returncode == 0, text.decode() + drawn.decode(errors="replace")
        await asyncio.wait_for(closed, 10 * TIMEOUT_FACTOR)
    finally:
        loop.remove_reader(leader)
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    return drawn.decode(errors="replace")


def per_second_p99_ms(out: Path) -> list[float]:
    """Each whole second's p99 from timeseries.csv, but the first (start-up) and the last (partial)."""
    with (out / "timeseries.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    values = [float(r["p99_ms"]) for r in rows[1:-1] if r["p99_ms"]]
    assert len(values) >= DURATION_S - 2, rows
    return values


def loop_lag_p99_ms(out: Path) -> float:
    report = json.loads((out / "report.json").read_text())
    return float(report["metrics"]["loop_lag"]["p99"])


async def test_the_live_panel_does_not_disturb_the_measurement(api: str, tmp_path: Path) -> None:
    await run_without_progress(api, tmp_path / "off")
    drawn = await run_on_a_terminal(api, tmp_path / "on")

    # The panel did draw, in place, refresh after refresh (else there was nothing to compare).
    assert drawn.count("geo-loadgen search") >= DURATION_S, drawn[-2000:]
    assert "p99 ms" in drawn and "\x1b[" in drawn

    off, on = per_second_p99_ms(tmp_path / "off"), per_second_p99_ms(tmp_path / "on")
    assert statistics.median(on) < statistics.median(off) + MARGIN_MS, (
        f"per-second p99 (ms) with the panel {on}, without {off}; loop lag p99 "
        f"{loop_lag_p99_ms(tmp_path / 'on')} ms with, {loop_lag_p99_ms(tmp_path / 'off')} ms without"
    )
