"""Bad arguments and unreachable targets: one line on stderr, exit 2, nothing run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
        (
            ["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--verify", "--verify-against", "uniform"],
            "--verify-against: uniform is random points",
        ),
        (
            ["search", "--url", "http://127.0.0.1:9", "--rate", "10", "--verify", "--verify-against", "/no/such.csv"],
            "--verify-against: '/no/such.csv'",
        ),
        (["friends", "--api", "http://a", "--ws", "ws://b", "--users", "9", "--near-share", "2"], "in [0, 1]"),
        (["friends", "--api", "http://a", "--ws", "ws://b", "--users", "9", "--near-share", "x"], "must be a number"),
        (["friends", "--api", "http://a", "--ws", "ws://b", "--users", "9", "--disconnect-every", "often"], "duration"),
        (["strangers", "--ws", "ws://b", "--users", "0"], "--users must be > 0"),
        (["strangers", "--ws", "ws://b", "--users", "1", "--signing-key-file", "k"], "--users must be at least 2"),
        (["strangers", "--ws", "ws://b", "--users", "9", "--interval", "1s", "--rate", "5"], "not allowed with"),
        (["strangers", "--ws", "ws://b", "--users", "9", "--spots", "10", "--signing-key-file", "k"], "--spots 10"),
        (["strangers", "--ws", "ws://b", "--users", "9"], "strangers acts as its simulated users"),
        (["strangers", "--ws", "ws://b", "--users", "9", "--fail-if", "stranger_movd>0"], "'stranger_moved'"),
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


@pytest.mark.parametrize(
    ("scenario", "needle"),
    [
        (
            "[search]\nurl = 'http://127.0.0.1:9'\nrate = 10\npoints = '/no/such.csv'\n",
            "s.toml: search.points: '/no/such.csv' is not geonames, uniform, or a readable file",
        ),
        (
            "[search]\nurl = 'http://127.0.0.1:9'\nrate = 10\nverify = 5\nverify_against = 'uniform'\n",
            "s.toml: search.verify_against: uniform is random points",
        ),
        ("[search]\nurl = 'http://127.0.0.1:9'\nrate = 10\ntcik = '1ms'\n", "s.toml: search.tcik is not a key here"),
        ("[search]\nurl = 'http://127.0.0.1:9'\nrate = 10\n", "cannot reach http://127.0.0.1:9"),
    ],
)
def test_mixed_scenario_mistakes_are_one_line_before_anything_runs(tmp_path: Path, scenario: str, needle: str) -> None:
    assert_one_line_refusal(tmp_path, scenario, [], needle)


def test_a_mixed_run_takes_its_length_from_the_scenario_only(tmp_path: Path) -> None:
    scenario = "duration = '2s'\n[search]\nurl = 'http://127.0.0.1:9'\nrate = 10\n"
    assert_one_line_refusal(tmp_path, scenario, ["--duration", "5s"], "--duration: a mixed run lasts the scenario's")


def assert_one_line_refusal(tmp_path: Path, scenario: str, args: list[str], needle: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(scenario)
    proc = subprocess.run(
        [sys.executable, "-m", "loadgen", "mixed", "--scenario", str(path), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("geo-loadgen: ") and needle in lines[0]
    assert proc.stdout == ""
