"""Abuse limits on the socket: every frame type rate-limited per user (and a refused frame not
applied), limits that survive reconnections, and a cap on one user's sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect

from friends_ws.keys import services_key
from friends_ws.limits import MESSAGE_BURST, Buckets, UserLimits
from friends_ws.protocol import LocationUpdate, SettingsUpdate
from geo_common import friends_db
from geo_common.tokens import mint_token
from tests.friends_ws.ws_helpers import SF, WAIT, Client, Server, new_user

#: A refill this slow adds no token during a test: exactly the burst goes through.
SLOW = 0.01


async def replies(client: Client, count: int) -> list[dict[str, Any]]:
    """The next ``count`` answers to the client's frames (acknowledgements or errors)."""
    kinds = ("settings", "sharing", "auth", "error")
    return [await client.expect(lambda f: f["type"] in kinds) for _ in range(count)]


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        await asyncio.sleep(0.01)


# --- the limits themselves (pure) ----------------------------------------------------------------


def test_a_bucket_is_forgotten_only_once_full_again() -> None:
    buckets = Buckets(rate=1.0, burst=5.0)
    assert [buckets.allow(1, 0.0) for _ in range(6)] == [True] * 5 + [False]
    buckets.sweep(4.0)  # four tokens back of five: still remembered, still limiting
    assert len(buckets) == 1
    assert [buckets.allow(1, 4.0) for _ in range(5)] == [True] * 4 + [False]
    buckets.sweep(8.9)
    assert len(buckets) == 1
    buckets.sweep(9.0)  # full again: forgetting it loses nothing
    assert len(buckets) == 0


def test_sweeping_happens_as_frames_come() -> None:
    buckets = Buckets(rate=1.0, burst=1.0)
    for user in range(100):
        buckets.allow(user, 0.0)
    assert len(buckets) == 100
    buckets.allow(1000, 31.0)  # past the sweep interval: the idle ones go
    assert len(buckets) == 1


def test_location_and_other_frames_have_buckets_of_their_own() -> None:
    limits = UserLimits(updates_per_s=2.0, messages_per_s=SLOW, max_sockets=2)
    location, settings = LocationUpdate(0.0, 0.0), SettingsUpdate(1000.0)
    assert [limits.refusal(7, location, 0.0) is None for _ in range(3)] == [True, True, False]
    assert [limits.refusal(7, settings, 0.0) is None for _ in range(6)] == [True] * int(MESSAGE_BURST) + [False]
    assert "settings message was not applied" in (limits.refusal(7, settings, 0.0) or "")
    assert limits.refusal(8, settings, 0.0) is None  # another user's are theirs


def test_the_socket_cap_counts_admissions() -> None:
    limits = UserLimits(updates_per_s=1.0, messages_per_s=1.0, max_sockets=2)
    assert limits.admit(7) and limits.admit(7) and not limits.admit(7)
    assert limits.admit(8)
    limits.release(7)
    assert limits.sockets(7) == 1 and limits.admit(7)
    limits.release(7)
    limits.release(7)
    assert limits.sockets(7) == 0


# --- every frame type on a real socket -----------------------------------------------------------


async def test_settings_beyond_the_burst_are_refused(servers, connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_max_messages_per_s=SLOW)
    client = await connect(server, new_user())
    for radius in range(1000, 1008):
        await client.send(type="settings", radius_m=radius)
    got = await replies(client, 8)
    assert [f["type"] for f in got] == ["settings"] * 5 + ["error"] * 3
    assert {f["code"] for f in got[5:]} == {"rate_limited"}
    await client.location(*SF)
    assert (await client.expect("init"))["radius_m"] == 1004  # the last applied, not a refused one


async def test_sharing_beyond_the_burst_is_refused_and_not_written(servers, connect, primary) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_max_messages_per_s=SLOW)
    user = new_user()
    client = await connect(server, user)
    allowed = [(True, "coarse", False), (False, "exact", False), (True, "coarse", True), (False, "coarse", True)]
    allowed.append((True, "exact", False))  # the fifth, the last one the burst lets through
    refused = [(False, "coarse", True)] * 20
    for enabled, precision, private in allowed + refused:
        await client.send(type="sharing", enabled=enabled, precision=precision, private_history=private)
    got = await replies(client, len(allowed) + len(refused))
    assert [f["type"] for f in got] == ["sharing"] * len(allowed) + ["error"] * len(refused)
    assert {f["code"] for f in got[len(allowed) :]} == {"rate_limited"}
    stored = await friends_db.get_user(primary, user)
    assert stored is not None
    assert (stored.sharing_enabled, stored.sharing_precision, stored.private_history) == (True, "exact", False)


async def test_auth_frames_beyond_the_burst_are_refused(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_max_messages_per_s=SLOW)
    user = new_user()
    client = await connect(server, user)
    for _ in range(7):
        await client.send(type="auth", token=mint_token(ws_settings.jwt_secret, user, ttl_s=3600))
    got = await replies(client, 7)
    assert [f["type"] for f in got] == ["auth"] * 5 + ["error"] * 2
    assert {f["code"] for f in got[5:]} == {"rate_limited"}
    assert server.hub.stats.reauths == 5


async def test_settings_sharing_and_auth_share_one_bucket(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_max_messages_per_s=SLOW)
    user = new_user()
    client = await connect(server, user)
    for radius in (1000, 1001, 1002):
        await client.send(type="settings", radius_m=radius)
    await client.send(type="sharing", enabled=True)
    await client.send(type="auth", token=mint_token(ws_settings.jwt_secret, user))
    await client.send(type="sharing", enabled=False)
    got = await replies(client, 6)
    assert [f["type"] for f in got] == ["settings"] * 3 + ["sharing", "auth", "error"]
    # Locations have their own bucket: still served.
    await client.location(*SF)
    await client.expect("init")


async def test_the_limits_outlive_the_socket(servers, connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_max_messages_per_s=SLOW)
    user = new_user()
    first = await connect(server, user)
    for radius in range(1000, 1005):
        await first.send(type="settings", radius_m=radius)
    await replies(first, 5)
    await first.close()
    await until(lambda: not server.hub.subscriptions.sessions, "the first socket closed")
    again = await connect(server, user)
    await again.send(type="settings", radius_m=2000)
    assert (await again.expect("error"))["code"] == "rate_limited"


async def test_a_reconnect_storm_gets_rate_limited(servers, connect) -> None:  # type: ignore[no-untyped-def]
    rate = 2.0
    server: Server = await servers(ws_max_updates_per_s=rate)
    stats = server.hub.stats
    user = new_user()
    started = time.monotonic()
    for _ in range(20):
        client = await connect(server, user)
        await client.location(*SF)
        await client.location(*SF)
        await client.expect(lambda f: f["type"] in ("init", "error"))  # the first was handled
        await client.close()
    await until(lambda: stats.updates + stats.errors["rate_limited"] == 40, "all 40 locations handled")
    elapsed = time.monotonic() - started
    # A burst of `rate`, then `rate` a second, however many sockets the updates came over.
    most = rate + rate * elapsed + 1
    assert stats.updates <= most, f"{stats.updates} updates accepted in {elapsed:.2f} s"
    assert stats.errors["rate_limited"] >= 40 - most


# --- the socket cap ------------------------------------------------------------------------------


async def test_a_socket_beyond_the_cap_is_refused_with_429(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_max_sockets_per_user=3)
    user = new_user()
    held = [await connect(server, user) for _ in range(3)]
    token = mint_token(ws_settings.jwt_secret, user)
    for options in (
        {"additional_headers": {"Authorization": f"Bearer {token}"}},
        {"subprotocols": ["geo.v1", f"bearer.{token}"]},
    ):
        with pytest.raises(websockets.InvalidStatus) as info:
            await ws_connect(server.url, open_timeout=WAIT, **options)
        response = info.value.response
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert token.encode() not in response.body
    assert server.hub.stats.refused["too_many_sockets"] == 2
    await connect(server, new_user())  # another user is not affected
    # One closes: its place is free again (once the server has seen it go).
    await held.pop().close()
    limits = server.app[services_key].limits
    await until(lambda: limits.sockets(user) == 2, "the closed socket released")
    await connect(server, user)


async def test_a_handshake_that_fails_after_its_token_holds_no_place(servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_max_sockets_per_user=1)
    user = new_user()
    headers = {"Authorization": f"Bearer {mint_token(ws_settings.jwt_secret, user)}"}
    async with aiohttp.ClientSession() as http:
        for _ in range(3):  # a valid token, then no upgrade: refused by the upgrade itself
            async with http.get(server.http + "/v1/friends/ws", headers=headers) as resp:
                assert resp.status == 400
    assert server.app[services_key].limits.sockets(user) == 0
    await connect(server, user)
