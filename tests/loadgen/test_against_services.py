"""geo-loadgen against the real services: a short search run with --verify, a short friends
run, and a subscriber that loses one user's deliveries, reported as lost.

The API and the WebSocket tier run in this test's event loop over a database of 3,000 real
places; geo-loadgen runs as its own process, as a user runs it.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from geo_common.places import load_places
from geo_common.settings import Settings
from location_api.app import create_app
from loadgen.report import PLOTS
from tests.conftest import TIMEOUT_FACTOR
from tests.friends_ws.ws_helpers import Server, start_server
from tests.loadgen.dropping_proxy import DroppingProxy
from tests.location_api.conftest import drop_database, small_database

PLACES = 3_000


@dataclass
class Services:
    api: str
    ws: Server
    settings: Settings
    places_csv: Path


@pytest.fixture(scope="module")
async def services(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Services]:
    small = await small_database(settings, "loadgen", places=PLACES)
    small = replace(small, api_role="all", history_flush_ms=50, ws_max_updates_per_s=50.0)
    api = TestServer(create_app(small), host="127.0.0.1")
    await api.start_server()
    ws = await start_server(small)
    places_csv = tmp_path_factory.mktemp("places") / "places.csv"
    with places_csv.open("w", newline="") as fh:
        csv.writer(fh).writerows([("lat", "lon"), *((p.latitude, p.longitude) for p in load_places()[:PLACES])])
    yield Services(str(api.make_url("")).rstrip("/"), ws, small, places_csv)
    await ws.stop()
    await api.close()
    await drop_database(settings.pg_primary, small.pg_primary.rpartition("/")[2])


async def loadgen(services: Services, *args: str, timeout_s: float = 90.0) -> tuple[int, str]:
    """Run geo-loadgen to its end without blocking this loop; (exit code, stdout + stderr)."""
    env = {**os.environ, "GEO_JWT_SECRET": services.settings.jwt_secret}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loadgen",
        *args,
        "--no-progress",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s * TIMEOUT_FACTOR)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def assert_all_outputs(out: Path) -> dict[str, object]:
    for name in ("report.json", "timeseries.csv", "report.html", *PLOTS):
        assert (out / name).stat().st_size > 0, name
    report: dict[str, object] = json.loads((out / "report.json").read_text())
    return report


async def test_search_run_meets_thresholds_and_every_sampled_answer_is_exact(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "search"
    code, text = await loadgen(
        services,
        "search",
        "--url",
        services.api,
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
    code, text = await loadgen(
        services,
        "search",
        "--url",
        services.api,
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
    code, text = await loadgen(
        services,
        "friends",
        "--api",
        services.api,
        "--ws",
        f"ws://127.0.0.1:{services.ws.port}",
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
        code, text = await loadgen(
            services,
            "friends",
            "--api",
            services.api,
            "--ws",
            proxy.ws_base,
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
        )
    finally:
        await proxy.stop()
    assert proxy.dropped > 0 and proxy.passed > 0
    assert code == 1, text
    lost = int(text.split("lost=")[1].split(",")[0].split()[0])
    # Every loss is one the proxy made (deliveries inside the radius's guard band are not judged).
    assert 0 < lost <= proxy.dropped, (lost, proxy.dropped)
