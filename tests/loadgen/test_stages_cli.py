"""``--stages`` and a scenario's ``stages``: read into options, or refused in one line (exit 2)
before anything is sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadgen.mixed import ScenarioError, load_scenario
from loadgen.user_tokens import SigningKey
from loadgen.stages import Stage

URL = "http://127.0.0.1:9"  # nothing listens: every mistake here is found before it is reached
FRIENDS = ["friends", "--api", URL, "--ws", "ws://127.0.0.1:9", "--users", "10"]

#: A token source for the scenarios with a [friends] part (never loaded here).
KEY = SigningKey(path="signing.key")


def geo_loadgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadgen", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["search", "--url", URL, "--stages", "2s:5", "--rate", "10"],
            "--stages replaces --rate: give one or the other",
        ),
        (["search", "--url", URL, "--stages", "2s:5", "--duration", "3s"], "--stages replaces --duration"),
        (["search", "--url", URL, "--stages", "2s:5", "--rate", "1", "--duration", "3s"], "--rate and --duration"),
        (["search", "--url", URL], "give --rate (with --duration) or --stages"),
        (["search", "--url", URL, "--rate", "5", "--start-rate", "2"], "--start-rate is where --stages start"),
        (["search", "--url", URL, "--stages", "2s:5", "--start-rate", "-1"], "--start-rate must be a number >= 0"),
        (["search", "--url", URL, "--stages", ""], "argument --stages: needs at least one stage"),
        (["search", "--url", URL, "--stages", "2s"], "argument --stages: stage '2s' is not DURATION:TARGET"),
        (["search", "--url", URL, "--stages", "2s:5,1x:3"], "stage 2 ('1x:3'): cannot read duration '1x'"),
        (["search", "--url", URL, "--stages", "2s:-3"], "the target must be a number >= 0, got '-3'"),
        (["search", "--url", URL, "--stages", "0s:3"], "duration must be > 0"),
        (["search", "--url", URL, "--stages", "1s:0,1s:0"], "--stages: the rate is 0 in every stage"),
        ([*FRIENDS, "--stages", "2s:5", "--ramp", "1s"], "--stages replaces --ramp"),
        ([*FRIENDS, "--stages", "2s:5", "--online-fraction", "0.5"], "--stages replaces --online-fraction"),
        ([*FRIENDS, "--stages", "2s:5", "--duration", "5s"], "--stages replaces --duration"),
        ([*FRIENDS, "--stages", "2s:11"], "--stages: stage 1: 11 users is more than the 10 simulated"),
        ([*FRIENDS, "--stages", "2s:4,2s:2.5"], "--stages: stage 2: a number of users is whole, got 2.5"),
        ([*FRIENDS, "--stages", "2s:0"], "--stages: every target is 0 users"),
        ([*FRIENDS, "--start-rate", "3"], "unrecognized arguments: --start-rate"),
    ],
)
def test_a_stages_mistake_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    proc = geo_loadgen(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("geo-loadgen: ") and needle in lines[0], lines[0]
    assert proc.stdout == ""


SEARCH = "[search]\nurl = 'http://127.0.0.1:9'\n"
FRIENDS_TABLE = "[friends]\napi = 'http://127.0.0.1:9'\nws = 'ws://127.0.0.1:9'\nusers = 10\n"


@pytest.mark.parametrize(
    ("scenario", "needle"),
    [
        (SEARCH + "rate = 10\nstages = '2s:5'\n", "search.stages replaces search.rate: give one or the other"),
        (SEARCH + "stages = 5\n", "search.stages = 5: write them as a string"),
        (SEARCH + "stages = '2s'\n", "search.stages = '2s': stage '2s' is not DURATION:TARGET"),
        (SEARCH + "stages = '2s:0'\n", "search.stages: the rate is 0 in every stage"),
        (SEARCH + "rate = 10\nstart_rate = 3\n", "search.start_rate is where search.stages start"),
        (SEARCH + "stages = '2s:5'\nstart_rate = -1\n", "search.start_rate must be a number >= 0"),
        (FRIENDS_TABLE + "stages = '2s:5'\nramp = '1s'\n", "friends.stages replaces friends.ramp"),
        (FRIENDS_TABLE + "stages = '2s:5'\nonline_fraction = 0.5\n", "friends.stages replaces friends.online_fraction"),
        (FRIENDS_TABLE + "stages = '2s:50'\n", "friends.stages: stage 1: 50 users is more than the 10 simulated"),
        ("duration = '5s'\n" + SEARCH + "stages = '2s:5'\n", "duration: every part runs in stages"),
    ],
)
def test_a_scenario_stages_mistake_names_the_key(tmp_path: Path, scenario: str, needle: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(scenario)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, auth=KEY, seed=0)
    assert str(caught.value).startswith(f"--scenario {path}: ") and needle in str(caught.value)
    proc = geo_loadgen("mixed", "--scenario", str(path), "--no-progress")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr


def test_a_scenario_in_stages_runs_for_their_total_and_at_their_mean(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        SEARCH + "stages = '2s:50,2s:150,2s:0'\nstart_rate = 10\n" + FRIENDS_TABLE + "stages = '3s:10,1s:0'\n"
    )
    options = load_scenario(path, auth=KEY, seed=0)
    search, friends = options.search, options.friends
    assert search is not None and friends is not None
    assert search.stages == (Stage(2.0, 50), Stage(2.0, 150), Stage(2.0, 0)) and search.start_rate == 10.0
    assert search.duration_s == 6.0 and search.rate == pytest.approx((60 + 200 + 150) / 6)
    assert friends.stages == (Stage(3.0, 10), Stage(1.0, 0))
    assert friends.duration_s == 4.0 and friends.ramp_s == 0.0 and friends.online_fraction == 1.0
    # A part without stages still runs for the scenario's duration.
    path.write_text("duration = '9s'\n" + SEARCH + "rate = 5\n" + FRIENDS_TABLE + "stages = '3s:10'\n")
    options = load_scenario(path, auth=KEY, seed=0)
    assert options.search is not None and options.search.duration_s == 9.0 and options.search.stages == ()
