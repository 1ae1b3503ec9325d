"""``geo-loadgen strangers`` against the real services: users crowding a spot see each other
move, and the report says what was delivered; a rule on those figures can fail the run.

The API and the WebSocket tier run in this test's event loop (the ``services`` fixture of
tests/loadgen/conftest.py); geo-loadgen runs as its own process, as a user runs it. What is
asserted is counted, never timed.
"""

from __future__ import annotations

import math
from pathlib import Path

from loadgen.catalog import catalog_for
from loadgen.stranger_figures import describe_strangers, stranger_summary
from loadgen.thresholds import evaluate, parse_thresholds
from tests.loadgen.runs import Services, assert_all_outputs, loadgen

#: Every location a new point of one spot 600 m across: coarse positions keep changing.
SHORT = ("--spots", "1", "--area", "600", "--interval", "0.5s", "--ramp", "1s", "--duration", "3s")


async def strangers(services: Services, *args: str) -> tuple[int, str]:
    """Run ``geo-loadgen strangers`` against ``services``, tokens signed with their key."""
    key = ("--signing-key-file", str(services.key_file))
    return await loadgen(services, "strangers", "--ws", services.ws_url, "--api", services.api, *key, *args)


async def test_a_crowd_sees_its_strangers_move_and_the_report_says_so(services: Services, tmp_path: Path) -> None:
    out = tmp_path / "strangers"
    code, text = await strangers(
        services, "--users", "20", *SHORT, "--out", str(out), "--fail-if", "stranger_moved>0,errors==0"
    )
    assert code == 0, text
    report = assert_all_outputs(out)
    assert report["scenario"] == "strangers"
    figures = report["strangers"]
    assert isinstance(figures, dict)
    assert figures["moved"] > 0 and figures["appeared"] > 0 and figures["per_second"] > 0
    assert figures["frames"] == figures["appeared"] + figures["moved"] + figures["repeated"] == report["completed"]
    # Every user saw others, and never more than the other 19 (nor itself).
    visible = figures["visible"]
    assert visible["users"] == 20 and 1 <= visible["max"] <= 19 and visible["mean"] > 0
    metrics = report["metrics"]
    assert isinstance(metrics, dict)
    # The delivery latency is each move's age on arrival, one value per move.
    assert metrics["latency"]["count"] == figures["moved"] and math.isfinite(metrics["latency"]["p99"])
    assert metrics["appear_age"]["count"] == figures["appeared"]
    counters = report["counters"]
    assert isinstance(counters, dict)
    assert counters.get("errors", 0) == 0 and counters.get("disconnects", 0) == 0
    assert counters["operations"] >= 20  # each user's first location at least
    assert f"stranger frames: {figures['frames']} (" in text
    assert 'id="strangers"' in (out / "report.html").read_text()


async def test_a_rule_on_the_strangers_figures_fails_the_run(services: Services, tmp_path: Path) -> None:
    code, text = await strangers(
        services, "--users", "6", *SHORT, "--first-user-id", "3100000", "--fail-if", "stranger_moved==0,p99<60s"
    )
    assert code == 1, text
    assert "threshold stranger_moved==0: FAIL" in text
    assert "threshold p99<60000ms: pass" in text  # the rules that hold do not fail it


def test_rules_name_the_strangers_figures_and_read_them() -> None:
    catalog = catalog_for("strangers")
    rules = parse_thresholds("p99<200ms,appear_age.p50<1s,stranger_left_offline==0,visible_20>0", catalog)
    verdicts = evaluate(rules, {}, {"stranger_left_offline": 2, "visible_20": 3}, 0.0)
    # Nothing measured fails a latency rule; the counters are read as the run counted them.
    assert [v.passed for v in verdicts] == [False, False, False, True]


def test_the_summary_adds_up_what_the_users_saw() -> None:
    counters = {
        "stranger_appeared": 30,
        "stranger_moved": 60,
        "stranger_left_out_of_range": 4,
        "visible_20": 3,
        "visible_5": 1,
    }
    figures = stranger_summary(counters, {"ramp_s": 1.0, "duration_s": 7.0, "drain_s": 2.0})
    assert figures["frames"] == 90 and figures["per_second"] == 9.0
    assert figures["left"] == {"out_of_range": 4}
    assert figures["visible"] == {"users": 4, "mean": 16.25, "max": 20}
    assert describe_strangers(figures) == (
        "stranger frames: 90 (9.0/s): 30 appeared, 60 moved; stranger_left: out_of_range=4; "
        "strangers shown at once per user: mean 16.25, max 20 (4 users)"
    )
