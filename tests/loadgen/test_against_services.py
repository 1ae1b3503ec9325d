"""geo-loadgen against the real services: a short search run with --verify, a short friends
run, and a subscriber that loses one user's deliveries, reported as lost.

The API and the WebSocket tier run in this test's event loop over a database of 3,000 real
places; geo-loadgen runs as its own process, as a user runs it.
"""

from __future__ import annotations

import csv
from pathlib import Path

from geo_common.places import load_places
from tests.loadgen.conftest import PLACES
from tests.loadgen.runs import Services, assert_all_outputs, friends, search
from tests.loadgen.ws_proxies import DroppingProxy


async def test_search_run_meets_thresholds_and_every_sampled_answer_is_exact(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "search"
    code, text = await search(
        services,
        "--rate",
        "100",
        "--duration",
        "3s",
        "--radius",
        "20000",
        "--points",
        str(services.places_csv),
        "--verify",
        "60",
        "--verify-against",
        str(services.places_csv),
        "--out",
        str(out),
        "--fail-if",
        "errors==0,verify_mismatches==0,p99<2s",
    )
    assert code == 0, text
    report = assert_all_outputs(out)
    verification = report["verification"]
    assert isinstance(verification, dict)
    assert verification["answers"] == 60 and verification["recall"] == 1.0 and verification["mismatches"] == 0
    counters = report["counters"]
    assert isinstance(counters, dict) and counters["status_200"] == 300
    assert counters["verify_expected"] > 60  # the answers were not empty: places were found and checked
    assert "verified 60 answers against brute force: recall 100.0000%" in text


async def test_verify_reports_places_the_api_does_not_return(services: Services, tmp_path: Path) -> None:
    # The ground truth holds one more place 10 m from each query point; the API never had them.
    queries = [(p.latitude, p.longitude) for p in load_places()[:PLACES:300]]
    points = tmp_path / "points.csv"
    truth = tmp_path / "truth.csv"
    with points.open("w", newline="") as fh:
        csv.writer(fh).writerows(queries)
    with truth.open("w", newline="") as fh:
        extra = [(lat + 0.00009, lon) for lat, lon in queries]
        csv.writer(fh).writerows([*((p.latitude, p.longitude) for p in load_places()[:PLACES]), *extra])
    code, text = await search(
        services,
        "--rate",
        "50",
        "--duration",
        "1s",
        "--points",
        str(points),
        "--verify",
        "20",
        "--verify-against",
        str(truth),
        "--fail-if",
        "verify_mismatches==0",
    )
    assert code == 1, text
    assert "threshold verify_mismatches==0: FAIL" in text
    assert "recall 100.0000%" not in text


async def test_friends_run_meets_thresholds_with_nothing_lost(services: Services, tmp_path: Path) -> None:
    out = tmp_path / "friends"
    code, text = await friends(
        services,
        "--users",
        "40",
        "--friends-per-user",
        "5",
        "--interval",
        "1s",
        "--duration",
        "4s",
        "--ramp",
        "1s",
        "--movement",
        "random-walk",
        "--first-user-id",
        "2000000",
        "--out",
        str(out),
        "--fail-if",
        "lost==0,errors==0,duplicates==0",
    )
    assert code == 0, text
    report = assert_all_outputs(out)
    counters = report["counters"]
    assert isinstance(counters, dict)
    assert counters["expected"] > 50 and counters["delivered"] >= counters["expected"]
    metrics = report["metrics"]
    assert isinstance(metrics, dict) and metrics["init"]["count"] == 40 and metrics["connect"]["count"] == 40


async def test_a_subscriber_that_drops_one_users_messages_is_reported_as_lost(services: Services) -> None:
    first = 3_000_000
    proxy = await DroppingProxy(f"http://127.0.0.1:{services.ws.port}", victim=first).start()
    try:
        code, text = await friends(
            services,
            "--users",
            "20",
            "--friends-per-user",
            "5",
            "--interval",
            "1s",
            "--duration",
            "4s",
            "--ramp",
            "1s",
            "--first-user-id",
            str(first),
            "--fail-if",
            "lost==0",
            ws=proxy.ws_base,
        )
    finally:
        await proxy.stop()
    assert proxy.dropped > 0 and proxy.passed > 0
    assert code == 1, text
    lost = int(text.split("lost=")[1].split(",")[0].split()[0])
    # Every loss is one the proxy made (deliveries inside the radius's guard band are not judged).
    assert 0 < lost <= proxy.dropped, (lost, proxy.dropped)
