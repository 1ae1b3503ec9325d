"""Location history: batched writes, nothing lost on a clean shutdown, retention purge."""

from __future__ import annotations

import datetime as dt

import aiohttp
import asyncpg

from friends_ws.__main__ import purge
from friends_ws.keys import history_key
from geo_common import history_db
from tests.friends_ws.ws_helpers import new_user


async def test_every_update_is_in_the_history_after_a_clean_shutdown(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    # Long flush interval and big batches: rows are still waiting when the server stops.
    server = await servers(history_flush_ms=60_000, history_flush_rows=10_000, ws_max_updates_per_s=1000.0)
    users = [new_user() for _ in range(3)]
    clients = [await connect(server, u) for u in users]
    for i in range(40):
        for client in clients:
            await client.location(10.0 + i / 1000, 20.0, timestamp=1_700_000_000_000 + i)
    for client in clients:
        await client.expect("init")
        await client.send(type="settings", radius_m=1000)  # a round trip: every update was handled
        await client.expect("settings")
    history = server.app[history_key]
    assert history.waiting == 120 and history.written == 0
    await server.stop()
    assert history.written == 120 and history.batches == 1  # one COPY, not 120 INSERTs
    conn = await asyncpg.connect(ws_settings.pg_primary)
    try:
        for user in users:
            rows = await history_db.history_of(conn, user)
            assert [r.latitude for r in rows] == [10.0 + i / 1000 for i in range(40)]
            assert rows[0].sent_at == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)
    finally:
        await conn.close()


async def test_rows_are_flushed_by_count_and_by_time(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(history_flush_ms=100, history_flush_rows=5, ws_max_updates_per_s=1000.0)
    client = await connect(server, new_user())
    history = server.app[history_key]
    for i in range(12):
        await client.location(1.0, 1.0 + i / 100)
    await client.expect("init")
    await client.send(type="settings", radius_m=1000)
    await client.expect("settings")
    await client.quiet(0.3)  # longer than the flush interval
    assert history.written == 12 and history.waiting == 0
    assert history.batches >= 2


async def test_purge_deletes_only_rows_past_retention(settings, primary) -> None:  # type: ignore[no-untyped-def]
    user = new_user()
    now = dt.datetime.now(dt.UTC)
    await history_db.insert_history(
        primary,
        [
            history_db.HistoryRow(user, 1.0, 1.0, now - dt.timedelta(days=40)),
            history_db.HistoryRow(user, 2.0, 2.0, now - dt.timedelta(days=31)),
            history_db.HistoryRow(user, 3.0, 3.0, now - dt.timedelta(days=1)),
        ],
    )
    deleted = await purge(settings, days=30, now=now)
    assert deleted >= 2  # other tests' rows are recent
    assert [r.latitude for r in await history_db.history_of(primary, user)] == [3.0]


async def test_health_readiness_and_metrics(servers, connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    client = await connect(server, new_user())
    await client.location(1.0, 1.0)
    await client.expect("init")
    await client.send(type="settings", radius_m=2000)
    await client.expect("settings")
    await client.ws.send("not json")
    await client.expect("error")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.http}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{server.http}/readyz") as resp:
            body = await resp.json()
            assert resp.status == 200, body
            assert body["checks"] == {"postgres": True, "cache": True, "pubsub:default": True}
        async with http.get(f"{server.http}/metrics") as resp:
            text = await resp.text()
    assert "geo_friends_updates_total 1.0" in text
    assert "geo_friends_sessions 1.0" in text
    # Frames by type, both ways (the server's own process only: these tests' server is fresh).
    for line in (
        'geo_friends_frames_received_total{type="location"} 1.0',
        'geo_friends_frames_received_total{type="settings"} 1.0',
        'geo_friends_frames_received_total{type="invalid"} 1.0',
        'geo_friends_frames_sent_total{type="init"} 1.0',
        'geo_friends_frames_sent_total{type="settings"} 1.0',
        'geo_friends_frames_sent_total{type="error"} 1.0',
        'geo_friends_frames_sent_total{type="friend_location"} 0.0',
    ):
        assert line in text, line


def test_the_purge_command(settings, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from friends_ws.__main__ import main

    monkeypatch.setenv("GEO_PG_PRIMARY", settings.pg_primary)
    assert main(["purge-history", "--days", "3650"]) == 0
    assert "deleted 0 row(s) recorded more than 3650 day(s) ago" in capsys.readouterr().out
