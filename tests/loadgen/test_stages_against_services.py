"""geo-loadgen in stages against the real services: a search rate that ramps up and down, and
users that connect and leave as their stages say, without the departures counting against
the friends tier.

The services are the ``services`` fixture's (conftest.py): the API and the WebSocket tier in
this test's event loop over a database of real places, geo-loadgen as its own process.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from tests.loadgen.runs import Services, assert_all_outputs, friends, search

#: What the stages below are in report.json.
SEARCH_MARKS = [
    {"start_s": 0.0, "end_s": 2.0, "from": 0, "to": 50},
    {"start_s": 2.0, "end_s": 4.0, "from": 50, "to": 150},
    {"start_s": 4.0, "end_s": 6.0, "from": 150, "to": 0},
]


def columns(out: Path) -> dict[str, list[str]]:
    with (out / "timeseries.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return {name: [row[name] for row in rows] for name in rows[0]}


def users_at(marks: list[dict[str, Any]], t: float) -> float:
    """The users the stages ask for at ``t`` (seconds since the start)."""
    for mark in marks:
        if mark["start_s"] <= t < mark["end_s"]:
            share = (t - mark["start_s"]) / (mark["end_s"] - mark["start_s"])
            return float(mark["from"] + (mark["to"] - mark["from"]) * share)
    return 0.0


async def test_a_search_rate_in_stages_sends_what_each_stage_integrates_to(services: Services, tmp_path: Path) -> None:
    out = tmp_path / "staged"
    code, text = await search(
        services,
        "--stages",
        "2s:50,2s:150,2s:0",
        "--workers",
        "2",
        "--points",
        str(services.places_csv),
        "--out",
        str(out),
        "--fail-if",
        "errors==0",
    )
    assert code == 0, text
    report = assert_all_outputs(out)
    assert report["stages"] == SEARCH_MARKS
    options = report["options"]
    assert isinstance(options, dict) and options["duration_s"] == 6.0 and options["rate"] == 400 / 6
    # The searches due in each second, as the schedule meant them (intended, so not a matter
    # of how fast this machine is): 0->50/s over 2 s is 50, 50->150/s is 200, 150->0/s is 150.
    offered = [int(v) for v in columns(out)["offered"]]
    per_stage = [sum(offered[0:2]), sum(offered[2:4]), sum(offered[4:6])]
    for sent, expected in zip(per_stage, (50, 200, 150), strict=True):
        assert abs(sent - expected) <= 0.05 * expected, per_stage
    assert per_stage == [50, 200, 150]  # constant arrivals: exactly the integral
    assert offered[1] > offered[0] and offered[3] > offered[2] and offered[5] < offered[4]
    assert sum(offered) == 400
    counters = report["counters"]
    assert isinstance(counters, dict) and counters["status_200"] == 400 and counters["operations"] == 400


async def test_users_in_stages_connect_and_leave_as_planned_and_leaving_is_not_a_finding(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "users"
    code, text = await friends(
        services,
        "--users",
        "40",
        "--friends-per-user",
        "5",
        "--interval",
        "1s",
        "--stages",
        "2s:20,2s:40,2s:0",
        "--first-user-id",
        "7100000",
        "--out",
        str(out),
        "--fail-if",
        "lost==0,cut_off==0,errors==0,disconnects==0,disconnected_at_end==0",
    )
    assert code == 0, text
    report = assert_all_outputs(out)
    marks = report["stages"]
    assert isinstance(marks, list)
    assert marks == [
        {"start_s": 0.0, "end_s": 2.0, "from": 0, "to": 20},
        {"start_s": 2.0, "end_s": 4.0, "from": 20, "to": 40},
        {"start_s": 4.0, "end_s": 6.0, "from": 40, "to": 0},
    ]
    # Every user connected once, and 39 of them left before the end; the one left (the level
    # reaches 0 only at the end) stays through the drain. Closing a socket is not leaving: the
    # others keep them in view (last seen) until their position expires, long after the run.
    counters, metrics = report["counters"], report["metrics"]
    assert isinstance(counters, dict) and isinstance(metrics, dict)
    assert metrics["connect"]["count"] == 40 and metrics["init"]["count"] == 40
    assert counters.get("reconnects", 0) == 0
    assert counters["delivered"] == counters["expected"] > 20
    assert counters.get("friend_left_offline", 0) == 0
    # The clients connected, read at the middle of each second, follow the stages' shape: what
    # the schedule planned exactly, and what was measured within wide margins (connecting and
    # leaving take time, more of it on a busy machine).
    series = columns(out)
    planned = [int(v) for v in series["connected_target"]]
    assert planned[:6] == [5, 15, 25, 35, 30, 10]
    readings = {s: int(v) for s, v in enumerate(series["connected"][:6]) if v != ""}
    assert len(readings) >= 4, series["connected"]  # a reading may be skipped when the loop is late
    for second, connected in readings.items():
        target = users_at(marks, second + 0.5)
        assert abs(connected - target) <= 5 + 0.4 * target, (second, connected, target, readings)
    peak = max(readings, key=lambda s: readings[s])
    assert peak in (2, 3, 4), readings
