"""Bad arguments and unreachable targets: one line on stderr, exit 2, nothing run."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["search", "--url", "http://127.0.0.1:9", "--rate", "0"], "--rate must be > 0"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "-5"], "--rate must be > 0"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "ten"], "--rate must be a number"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--duration", "soon"], "cannot read duration"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--fail-if", "p99<<3"], "cannot read rule"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--points", "/no/such.csv"], "--points"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "10"], "cannot reach http://127.0.0.1:9"),
        (["search", "--url", "ftp://x", "--rate", "10"], "must start with http://"),
        (["search", "--rate", "10"], "--url"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--verify", "0"], "--verify must be > 0"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--tick", "often"], "--tick: cannot read duration"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--tick=-1ms"], "--tick: cannot read duration"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--verify", "--verify-against", "uniform"],
         "--verify-against: uniform is random points"),
        (["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--verify", "--verify-against", "/no/such.csv"],
         "--verify-against: '/no/such.csv'"),
        (["teleport"], "invalid choice"),
        ([], "required"),
    ],
)
def test_one_line_error_and_exit_2(args: list[str], needle: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
    assert lines[0].startswith("geo-loadgen: ")
    assert proc.stdout == ""
