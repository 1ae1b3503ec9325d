"""Sharing off and on, coarse precision, friendships changing while both users are online."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as aioredis

from friends_ws.nearby import coarsen
from geo_common import friends_db
from geo_common.presence import location_key
from geo_common.control_messages import FriendAdded, FriendRemoved
from tests.friends_ws.ws_helpers import NEAR, SF, new_user


async def test_sharing_off_hides_the_user_and_on_shows_them_again(servers, connect, in_view, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    a, b, alice, bob = await in_view(server)
    await bob.send(type="sharing", enabled=False)
    assert await bob.expect("sharing") == {
        "type": "sharing",
        "enabled": False,
        "precision": "exact",
        "private_history": False,
    }
    await alice.expect("friend_left", user_id=b, reason="sharing_off")
    redis = aioredis.Redis.from_url(ws_settings.redis_url)
    try:
        assert await redis.exists(location_key(ws_settings.redis_namespace, "default", b)) == 0
    finally:
        await redis.aclose()
    await bob.location(*NEAR)  # not shared while off
    assert [f for f in await alice.quiet(0.3) if f.get("user_id") == b] == []
    # The preference survives a reconnection, and the new connection's init says so.
    await bob.close()
    bob = await connect(server, b)
    await bob.location(*NEAR)
    assert (await bob.expect("init"))["sharing"] == {"enabled": False, "precision": "exact", "private_history": False}
    assert [f for f in await alice.quiet(0.3) if f.get("user_id") == b] == []
    await bob.send(type="sharing", enabled=True)
    await bob.expect("sharing", enabled=True)
    await alice.expect("friend_location", user_id=b)  # shown again at once, at the last location


async def test_coarse_precision_shares_the_geohash6_cell_centre(servers, connect, befriend) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice, bob = await connect(server, a), await connect(server, b)
    await alice.location(*SF)
    await alice.expect("init")
    await bob.send(type="sharing", enabled=True, precision="coarse")
    await bob.expect("sharing", precision="coarse")
    await bob.location(*NEAR)
    seen = await alice.expect("friend_location", user_id=b)
    assert (seen["latitude"], seen["longitude"]) == coarsen(*NEAR) != NEAR
    fresh = await connect(server, a)  # the cache holds the coarse point too
    await fresh.location(*SF)
    init = await fresh.expect("init")
    (friend,) = init["friends"]
    assert (friend["latitude"], friend["longitude"]) == coarsen(*NEAR)
    assert init["sharing"] == {"enabled": True, "precision": "exact", "private_history": False}  # Alice's own
    bob_again = await connect(server, b)
    await bob_again.location(*NEAR)
    assert (await bob_again.expect("init"))["sharing"] == {
        "enabled": True,
        "precision": "coarse",
        "private_history": False,
    }


async def test_friendship_changes_reach_live_connections(online, servers, connect, ws_settings) -> None:  # type: ignore[no-untyped-def]
    one, two = await servers(), await servers()
    a, b, alice, bob = await online(one, two)
    # What geo-api does on POST /v1/users/{a}/friends/{b}: the rows, then a control message to each.
    conn = await asyncpg.connect(ws_settings.pg_primary)
    try:
        await friends_db.add_friendship(conn, a, b)
    finally:
        await conn.close()
    hub = one.hub
    await hub.publisher.publish_control(None, a, FriendAdded(b, None))
    await hub.publisher.publish_control(None, b, FriendAdded(a, None))
    await alice.expect("friend_location", user_id=b, timeout=1.0)  # Bob is in the cache: shown at once
    await bob.expect("friend_location", user_id=a, timeout=1.0)
    await bob.location(*SF)
    await alice.expect("friend_location", user_id=b)
    await hub.publisher.publish_control(None, a, FriendRemoved(b))
    await hub.publisher.publish_control(None, b, FriendRemoved(a))
    await alice.expect("friend_left", user_id=b, reason="unfriended", timeout=1.0)
    await bob.expect("friend_left", user_id=a, reason="unfriended", timeout=1.0)
    await bob.location(*NEAR)
    await asyncio.sleep(0.05)
    assert [f for f in await alice.quiet(0.3) if f.get("user_id") == b] == []
    assert b not in one.hub.fanout.listeners and a not in two.hub.fanout.listeners
