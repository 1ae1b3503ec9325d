"""Phones against the real services: paced updates, backgrounded uploads, resumes after drops.

The API and the WebSocket tier run in this test's event loop, with short paces (1 s near a
friend, 10 s otherwise) so that a run of seconds shows what minutes would; geo-loadgen runs as
its own process, as a user runs it. What is asserted is counted, never timed: the ledger's
accounting (nothing lost, nothing sent twice) and how many updates each run sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from geo_common.settings import Settings
from location_api.app import create_app
from tests.friends_ws.ws_helpers import start_server
from tests.loadgen.runs import Services, friends, loadgen, read_report, write_key
from tests.location_api.conftest import drop_database, small_database

#: A short run: a second of ramp, eight of updates.
RUN = ("--interval", "1s", "--duration", "8s", "--ramp", "1s", "--friends-per-user", "5")


@pytest.fixture(scope="module")
async def services(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Services]:
    small = await small_database(settings, "lgphones", places=10)
    small = replace(
        small,
        api_role="all",
        history_flush_ms=50,
        ws_max_updates_per_s=50.0,
        pace_fast_s=1,
        pace_slow_s=10,
        upload_max_per_min=600.0,
    )
    api = TestServer(create_app(small), host="127.0.0.1")
    await api.start_server()
    ws = await start_server(small)
    folder = tmp_path_factory.mktemp("phones")
    key_file = write_key(folder / "signing.key", small.jwt_secret)
    yield Services(str(api.make_url("")).rstrip("/"), ws, small, folder / "unused.csv", key_file)
    await ws.stop()
    await api.close()
    await drop_database(settings.pg_primary, small.pg_primary.rpartition("/")[2])


def counters(out: Path) -> dict[str, int]:
    found: dict[str, int] = read_report(out)["counters"]
    return found


async def test_paced_phones_far_from_their_friends_send_far_fewer_updates(services: Services, tmp_path: Path) -> None:
    sent = {}
    for first, paced in ((4_000_000, ()), (4_100_000, ("--paced",))):
        out = tmp_path / ("paced" if paced else "unpaced")
        code, text = await friends(
            services,
            "--users",
            "60",
            *RUN,
            "--near-share",
            "0.2",
            "--first-user-id",
            str(first),
            *paced,
            "--out",
            str(out),
            "--fail-if",
            "lost==0,errors==0,duplicates==0",
        )
        assert code == 0, text
        c = counters(out)
        assert c["pace_frames"] >= 60  # one after each init at least
        sent[bool(paced)] = c["updates_sent"]
        metrics = read_report(out)["metrics"]
        assert metrics["position_age"]["count"] > 0, "friends in range were shown positions"
    # Four users in five have nobody near: paced, they send once a slow pace (10 s), not every second.
    assert sent[True] * 2 <= sent[False], sent


async def test_backgrounded_phones_upload_and_friends_still_see_them(services: Services, tmp_path: Path) -> None:
    scenario = tmp_path / "background.toml"
    scenario.write_text(
        f"""
duration = "8s"
[friends]
api = "{services.api}"
ws = "{services.ws_url}"
users = 40
friends_per_user = 5
interval = "1s"
ramp = "1s"
paced = true
first_user_id = 4200000

[[events]]
at = "1s"
kind = "background"
fraction = 0.5
interval = "2s"
for = "3s"
"""
    )
    out = tmp_path / "background"
    code, text = await loadgen(
        services,
        "mixed",
        "--scenario",
        str(scenario),
        "--signing-key-file",
        str(services.key_file),
        "--out",
        str(out),
        "--fail-if",
        "lost==0,errors==0,duplicates==0",
    )
    assert code == 0, text
    c = counters(out)
    assert c["backgrounded"] == c["event_background"] > 0
    assert c["foregrounds"] == c["backgrounded"]  # each came back within the window
    assert c["uploads"] >= c["backgrounded"] and c["upload_points"] >= c["uploads"]
    assert c["resumes"] >= c["foregrounds"] and c.get("resume_refused", 0) == 0
    assert c["delivered"] > 0


async def test_dropped_sockets_resume_with_nothing_lost_or_sent_twice(services: Services, tmp_path: Path) -> None:
    out = tmp_path / "drops"
    code, text = await friends(
        services,
        "--users",
        "40",
        *RUN,
        "--disconnect-every",
        "3s",
        "--first-user-id",
        "4300000",
        "--out",
        str(out),
        "--fail-if",
        "lost==0,errors==0,duplicates==0,resume_refused==0",
    )
    assert code == 0, text
    print(text)
    c = counters(out)
    assert c["forced_disconnects"] > 0 and c["resumes"] > 0
    assert c["disconnects"] >= c["forced_disconnects"]
    d = read_report(out)["deliveries"]
    assert d["expected"] == d["delivered"] + d["lost"] + d["cut_off"] + d["superseded"]
    assert d["superseded"] + d["delivered"] > 0
