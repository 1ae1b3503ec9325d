"""Scenario files for ``geo-loadgen mixed``: what they hold, and clear errors for what they get wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadgen.friends_options import EventKind
from loadgen.mixed import ScenarioError, load_scenario
from loadgen.user_tokens import SigningKey
from loadgen.movement import Movement
from loadgen.schedule import Arrivals
from loadgen.search import DEFAULT_TICK_S

FULL = """
duration = "45s"
[search]
url = "http://127.0.0.1:8080"
rate = 120
radius = 2000
[friends]
api = "http://127.0.0.1:8080"
ws = "ws://127.0.0.1:8081"
users = 300
friends_per_user = 5
interval = "2s"
movement = "commute"
ramp = "3s"
[[events]]
at = "10s"
kind = "reconnect_storm"
fraction = 0.25
[[events]]
at = "20s"
kind = "background"
fraction = 0.5
interval = "1m"
"""

#: A token source for the scenarios with a [friends] part (never loaded here).
KEY = SigningKey(path="signing.key")


def load(tmp_path: Path, text: str) -> Any:
    f = tmp_path / "s.toml"
    f.write_text(text)
    return load_scenario(f, auth=KEY, seed=4)


def test_full_scenario(tmp_path: Path) -> None:
    opts = load(tmp_path, FULL)
    assert opts.search.rate == 120 and opts.search.radius_m == 2000 and opts.search.duration_s == 45
    assert opts.friends.users == 300 and opts.friends.interval_s == 2 and opts.friends.movement is Movement.COMMUTE
    assert [(e.kind, e.at_s, e.fraction, e.interval_s) for e in opts.friends.events] == [
        (EventKind.RECONNECT_STORM, 10.0, 0.25, 30.0),
        (EventKind.BACKGROUND, 20.0, 0.5, 60.0),
    ]
    worker = opts.for_worker(1, 2)
    assert worker.search.rate == 60 and worker.friends.worker_index == 1 and worker.friends.setup is False


def test_friends_take_the_phones_options_and_a_background_spell(tmp_path: Path) -> None:
    text = FRIENDS + "paced = true\nnear_share = 0.2\ndisconnect_every = '20s'\n"
    text += "[[events]]\nat='5s'\nkind='background'\nfraction=0.3\ninterval='4s'\nfor='30s'\n"
    friends = load(tmp_path, text).friends
    assert (friends.paced, friends.near_share, friends.disconnect_every_s) == (True, 0.2, 20.0)
    (event,) = friends.events
    assert (event.kind, event.interval_s, event.lasts_s) == (EventKind.BACKGROUND, 4.0, 30.0)
    plain = load(tmp_path, FRIENDS).friends
    assert (plain.paced, plain.near_share, plain.disconnect_every_s) == (False, 1.0, None)


def test_search_takes_the_search_commands_options(tmp_path: Path) -> None:
    opts = load(
        tmp_path,
        """
[search]
url = "http://127.0.0.1:8080"
rate = 50
limit = 7
points = "uniform"
max_in_flight = 16
arrivals = "poisson"
timeout = "2s"
tick = "0"
verify = 30
verify_against = "places.csv"
""",
    )
    s = opts.search
    assert (s.limit, s.points, s.max_in_flight, s.arrivals, s.timeout_s, s.tick_s, s.verify, s.truth) == (
        7,
        "uniform",
        16,
        Arrivals.POISSON,
        2.0,
        0.0,
        30,
        "places.csv",
    )
    assert opts.for_worker(0, 2).search.verify == 15


def test_search_defaults_are_the_search_commands(tmp_path: Path) -> None:
    s = load(tmp_path, "[search]\nurl='http://a'\nrate=5\n").search
    assert (s.radius_m, s.limit, s.max_in_flight, s.arrivals, s.timeout_s, s.tick_s, s.verify) == (
        5_000.0,
        20,
        1_000,
        Arrivals.CONSTANT,
        10.0,
        DEFAULT_TICK_S,
        0,
    )
    assert load(tmp_path, "[search]\nurl='http://a'\nrate=5\ntick='1ms'\n").search.tick_s == 0.001


SEARCH = "[search]\nurl='http://a'\nrate=1\n"
FRIENDS = "[friends]\napi='http://a'\nws='ws://b'\nusers=10\n"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (SEARCH + "tcik = '1ms'\n", "search.tcik is not a key here (known: url, rate,"),
        (FRIENDS + "user = 3\n", "friends.user is not a key here"),
        ("durration = '1s'\n" + SEARCH, "durration is not a key here"),
        (FRIENDS + "[[events]]\nat='1s'\nkind='background'\nfraction=0.5\nshare=1\n", "events.share is not a key here"),
        ("search = 5\n", "search must be a table"),
        ("events = 5\n" + FRIENDS, "events must be an array of tables"),
        (FRIENDS + "paced = 'yes'\n", "friends.paced = 'yes'"),
        (FRIENDS + "near_share = 1.5\n", "friends.near_share must be in [0, 1]"),
        (FRIENDS + "disconnect_every = 'often'\n", "friends.disconnect_every"),
        (SEARCH + "radius = 0\n", "search.radius must be > 0"),
        (SEARCH + "limit = -3\n", "search.limit must be > 0"),
        (SEARCH + "max_in_flight = 0\n", "search.max_in_flight must be > 0"),
        (SEARCH + "arrivals = 'bursty'\n", "search.arrivals"),
        (SEARCH + "timeout = '0s'\n", "search.timeout"),
        (SEARCH + "tick = 'soon'\n", "search.tick"),
        (SEARCH + "verify = -1\n", "search.verify must be >= 0"),
        (FRIENDS.replace("users=10", "users=0"), "friends.users must be > 0"),
        (FRIENDS + "friends_per_user = 0\n", "friends.friends_per_user must be > 0"),
        (FRIENDS + "online_fraction = 1.5\n", "friends.online_fraction must be in (0, 1]"),
        (FRIENDS + "online_fraction = 0\n", "friends.online_fraction must be > 0"),
        (FRIENDS + "graph = 'tree'\n", "friends.graph"),
        (FRIENDS + "interval = '-1s'\n", "friends.interval"),
    ],
)
def test_unknown_keys_and_out_of_range_values_are_named(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load(tmp_path, text)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("duration = 'x'\n[search]\nurl='http://a'\nrate=1\n", "duration"),
        ("[search]\nrate=1\n", "search.url is required"),
        ("[search]\nurl='http://a'\nrate=-1\n", "search.rate must be > 0"),
        ("[friends]\napi='http://a'\nws='ws://b'\nusers=10\nmovement='fly'\n", "friends.movement"),
        (
            "[friends]\napi='http://a'\nws='ws://b'\nusers=10\n[[events]]\nat='1s'\nkind='meteor'\nfraction=0.1\n",
            "events.kind",
        ),
        (
            "[friends]\napi='http://a'\nws='ws://b'\nusers=10\n[[events]]\nat='1s'\nkind='background'\nfraction=2\n",
            "fraction",
        ),
        ("[[events]]\nat='1s'\nkind='background'\nfraction=0.5\n", "need a [friends]"),
        ("duration = '10s'\n", "give a [search] or a [friends]"),
        ("title = 'nothing'\n", "title is not a key here"),
        ("[search\n", "s.toml"),
    ],
)
def test_bad_scenarios_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load(tmp_path, text)
    assert needle in str(info.value)


def test_mixed_search_only_run(stall_server: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'duration = "2s"\n[search]\nurl = "{stall_server.url}"\nrate = 50\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgen",
            "mixed",
            "--scenario",
            str(scenario),
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["counters"]["search.status_200"] == 100
    assert report["metrics"]["search.latency"]["count"] == 100


def test_a_friends_part_takes_its_tokens_from_the_command_line_only(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(FULL)
    assert load_scenario(f, auth=KEY, seed=0).friends.auth is KEY  # type: ignore[union-attr]
    with pytest.raises(ScenarioError) as info:
        load_scenario(f, auth=None, seed=0)
    message = str(info.value)
    assert message.startswith(f"--scenario {f}: [friends] acts as its simulated users and needs their tokens")
    assert all(flag in message for flag in ("--token-file", "--token-command", "--signing-key-file"))
    f.write_text('duration = "5s"\n[search]\nurl = "http://127.0.0.1:8080"\nrate = 10\n')
    assert load_scenario(f, auth=None, seed=0).friends is None  # a search-only run needs none
