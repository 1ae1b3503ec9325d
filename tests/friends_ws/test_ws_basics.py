"""Connecting, exchanging locations, and the distance filter, against the real app."""

from __future__ import annotations

import pytest
import websockets

from friends_ws.clock import now_ms
from geo_index import haversine_m
from tests.friends_ws.ws_helpers import NEAR, SF, new_user


async def test_two_friends_see_each_other(servers, connect, befriend) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice, bob = await connect(server, a), await connect(server, b)
    await alice.location(*SF)
    init = await alice.expect("init")
    assert abs(init.pop("at") - now_ms()) < 60_000  # the server's clock: how old positions are
    assert init == {
        "type": "init",
        "radius_m": 8047.0,
        "friends": [],
        "sharing": {"enabled": True, "precision": "exact", "private_history": False},
    }
    await bob.location(*NEAR, timestamp=1_763_890_000_123)
    bob_init = await bob.expect("init")
    assert [f["user_id"] for f in bob_init["friends"]] == [a]
    assert bob_init["friends"][0]["distance_m"] == pytest.approx(haversine_m(*NEAR, *SF), abs=0.1)
    seen = await alice.expect("friend_location", user_id=b)
    assert seen["latitude"] == NEAR[0] and seen["longitude"] == NEAR[1]
    assert seen["sent_at"] == 1_763_890_000_123
    assert seen["distance_m"] == pytest.approx(haversine_m(*SF, *NEAR), abs=0.1)
    assert isinstance(seen["updated_at"], int)


async def test_three_clients_only_friends_receive(servers, connect, befriend) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    a, b, c = new_user(), new_user(), new_user()
    await befriend((a, b), (a, c))  # b and c are not friends
    alice, bob, carol = await connect(server, a), await connect(server, b), await connect(server, c)
    for client in (alice, bob, carol):
        await client.location(*SF)
        await client.expect("init")
    await carol.location(*NEAR)
    await alice.expect("friend_location", user_id=c)
    await bob.location(*NEAR)
    await alice.expect("friend_location", user_id=b)
    assert [f for f in await bob.quiet(0.3) if f.get("user_id") == c] == []
    assert [f for f in await carol.quiet(0.1) if f.get("user_id") == b] == []


async def test_friends_on_two_instances_see_each_other(servers, connect, befriend) -> None:  # type: ignore[no-untyped-def]
    one, two = await servers(), await servers()
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice, bob = await connect(one, a), await connect(two, b, subprotocol=True)
    await alice.location(*SF)
    await alice.expect("init")
    await bob.location(*NEAR)
    assert [f["user_id"] for f in (await bob.expect("init"))["friends"]] == [a]
    await alice.expect("friend_location", user_id=b)
    await alice.location(*NEAR)
    await bob.expect("friend_location", user_id=a)


async def test_out_of_range_with_hysteresis(servers, connect, befriend) -> None:  # type: ignore[no-untyped-def]
    server = await servers(friend_radius_m=1000.0, friend_hysteresis_m=200.0)
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice, bob = await connect(server, a), await connect(server, b)
    await alice.location(0.0, 0.0)
    await alice.expect("init")
    await bob.location(0.0, 0.0)
    await bob.expect("init")
    assert (await alice.expect("friend_location", user_id=b))["distance_m"] == 0.0
    # Metres east of (0, 0) on the equator: longitude = metres / 111,195.08 m per degree.
    per_degree = haversine_m(0, 0, 0, 1)

    async def bob_at(metres: float) -> None:
        await bob.location(0.0, metres / per_degree)

    await bob_at(900)
    assert (await alice.expect("friend_location", user_id=b))["distance_m"] == pytest.approx(900, abs=0.5)
    await bob_at(1150)  # past the radius but inside the margin: still in view
    assert (await alice.expect("friend_location", user_id=b))["distance_m"] == pytest.approx(1150, abs=0.5)
    await bob_at(1250)  # past radius + margin
    await alice.expect("friend_left", user_id=b, reason="out_of_range")
    await bob_at(1100)  # back inside the margin, outside the radius: not in view yet
    await bob_at(1300)
    assert [f for f in await alice.quiet(0.3) if f.get("user_id") == b] == []
    await bob_at(999)
    await alice.expect("friend_location", user_id=b)
    # The viewer moving counts too: Alice walks away from Bob.
    await alice.location(0.0, -400 / per_degree)
    await alice.expect("friend_left", user_id=b, reason="out_of_range")


async def test_a_friend_whose_socket_closes_stays_in_view_as_last_seen(servers, connect, in_view) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    a, b, alice, bob = await in_view(server)
    await bob.location(*NEAR)
    last = await alice.expect("friend_location", user_id=b)
    await bob.close()  # the app went to the background: Bob has not left
    assert [f for f in await alice.quiet(0.5) if f["type"] == "friend_left"] == []
    # A reconnecting Alice still finds Bob, with when he was last heard of.
    again = await connect(server, a)
    await again.location(*SF)
    init = await again.expect("init")
    (shown,) = init["friends"]
    assert (shown["user_id"], shown["updated_at"]) == (b, last["updated_at"])
    assert init["at"] >= shown["updated_at"]


async def test_a_friend_who_signs_out_goes_offline(servers, connect, in_view) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    a, b, alice, bob = await in_view(server)
    await bob.send(type="sign_out")
    assert await bob.closed() == 1000
    await alice.expect("friend_left", user_id=b, reason="offline")
    # And a reconnecting Alice no longer finds Bob in the cache.
    again = await connect(server, a)
    await again.location(*SF)
    assert (await again.expect("init"))["friends"] == []


async def test_a_silent_friend_expires_after_the_ttl(servers, connect, befriend) -> None:  # type: ignore[no-untyped-def]
    server = await servers(location_ttl_s=2, pace_fast_s=1, pace_slow_s=1)
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice, bob = await connect(server, a), await connect(server, b)
    await bob.location(*NEAR)
    await bob.expect("init")
    await alice.location(*SF)
    assert [f["user_id"] for f in (await alice.expect("init"))["friends"]] == [b]  # from the cache
    left = await alice.expect("friend_left", user_id=b, timeout=4.0)
    assert left["reason"] == "expired"  # Bob is still connected, but silent for a TTL


async def test_the_handshake_refuses_bad_tokens(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    from geo_common.tokens import mint_token

    server = await servers()
    expired = mint_token(ws_settings.jwt_secret, 5, ttl_s=60, now=0)
    forged = mint_token("another-secret-that-is-long-enough-0123456789", 5)
    for headers, query in [
        ({}, ""),
        ({"Authorization": "Basic abc"}, ""),
        ({"Authorization": f"Bearer {expired}"}, ""),
        ({"Authorization": f"Bearer {forged}"}, ""),
        ({}, "?token=garbage"),
    ]:
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(server.url + query, additional_headers=headers)
        assert info.value.response.status_code == 401
        assert info.value.response.headers["WWW-Authenticate"].startswith("Bearer")
