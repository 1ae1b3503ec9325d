"""The attacker's view of the friends tier, end to end: geo-api's routes change the
friendship, live geo-friends connections must show exactly what the database allows.

Every test plays a user who should see nothing (a stranger who asked, a declined or
withdrawn asker, a blocked user, a removed friend, a friend hidden from) and checks that no
frame of the other user reaches them, while a control user still sees what they should.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from deploy.stack import redis_nodes
from deploy.stack.binaries import ensure_binaries
from friends_ws.nearby import coarsen
from geo_common import history_db
from geo_common.presence import location_key
from geo_common.regions import DEFAULT_REGION
from tests.friends_ws.conftest import Api
from tests.friends_ws.ws_helpers import NEAR, SF, WAIT, Client, Server, new_user
from tests.pubsub.pubsub_helpers import url

#: Long enough for a frame that should not come to have come (the changes apply within 1 s).
SETTLE = 1.5


async def _online(
    connect: Callable[..., Awaitable[Client]], server: Server, *points: tuple[float, float]
) -> list[Client]:
    clients = []
    for point in points:
        client = await connect(server, new_user())
        await client.location(*point)
        await client.expect("init")
        clients.append(client)
    return clients


def _locations_of(frames: list[dict[str, Any]], user_id: int) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("user_id") == user_id and f.get("type") in ("friend_location", "init")]


async def _friends(call: Api, a: Client, b: Client) -> None:
    assert (await call("POST", f"/v1/users/{a.user_id}/friends/{b.user_id}", a.user_id))[0] == 202
    assert (await call("POST", f"/v1/users/{b.user_id}/friends/{a.user_id}", b.user_id))[0] == 201
    await a.expect("friend_location", user_id=b.user_id)
    await b.expect("friend_location", user_id=a.user_id)


async def test_a_request_alone_declined_or_withdrawn_shows_nothing(servers, connect, api_for, ws_settings) -> None:  # type: ignore[no-untyped-def]
    call = await api_for(ws_settings)
    server = await servers()
    asker, asked, other = await _online(connect, server, SF, NEAR, NEAR)
    status, body = await call("POST", f"/v1/users/{asker.user_id}/friends/{asked.user_id}", asker.user_id)
    assert (status, body["state"]) == (202, "requested")
    await asked.expect("friend_request", user_id=asker.user_id)
    await asked.location(NEAR[0] + 1e-4, NEAR[1])
    await asker.location(SF[0] + 1e-4, SF[1])
    assert _locations_of(await asker.quiet(SETTLE), asked.user_id) == []
    assert _locations_of(await asked.quiet(0.1), asker.user_id) == []
    # Declined: still nothing, and a reconnection's init shows nothing either.
    status, body = await call("DELETE", f"/v1/users/{asked.user_id}/friends/{asker.user_id}", asked.user_id)
    assert (status, body["removed"]) == (200, "request_declined")
    again = await connect(server, asker.user_id)
    await again.location(*SF)
    assert (await again.expect("init"))["friends"] == []
    # Withdrawn: the asked user is told of the request, then sees nothing of the asker.
    await call("POST", f"/v1/users/{asker.user_id}/friends/{other.user_id}", asker.user_id)
    await other.expect("friend_request", user_id=asker.user_id)
    status, body = await call("DELETE", f"/v1/users/{asker.user_id}/friends/{other.user_id}", asker.user_id)
    assert (status, body["removed"]) == (200, "request_withdrawn")
    await asker.location(SF[0] + 2e-4, SF[1])
    assert _locations_of(await other.quiet(SETTLE), asker.user_id) == []


async def test_acceptance_is_announced_and_shares_both_ways(servers, connect, api_for, ws_settings) -> None:  # type: ignore[no-untyped-def]
    call = await api_for(ws_settings)
    one, two = await servers(), await servers()
    (alice,) = await _online(connect, one, SF)
    (bob,) = await _online(connect, two, NEAR)
    await call("PUT", f"/v1/users/{bob.user_id}/profile", bob.user_id, {"display_name": "Bob"})
    await call("POST", f"/v1/users/{bob.user_id}/friends/{alice.user_id}", bob.user_id)
    assert await alice.expect("friend_request", user_id=bob.user_id) == {
        "type": "friend_request",
        "user_id": bob.user_id,
        "display_name": "Bob",
    }
    status, body = await call("POST", f"/v1/users/{alice.user_id}/friends/{bob.user_id}", alice.user_id)
    assert (status, body["state"]) == (201, "friends")
    assert (await bob.expect("friend_added", user_id=alice.user_id))["display_name"] is None
    assert (await alice.expect("friend_added", user_id=bob.user_id))["display_name"] == "Bob"
    await alice.expect("friend_location", user_id=bob.user_id, timeout=1.0 * WAIT)
    await bob.expect("friend_location", user_id=alice.user_id, timeout=1.0 * WAIT)


async def test_a_blocked_user_sees_nothing_and_cannot_ask_again(servers, connect, api_for, ws_settings) -> None:  # type: ignore[no-untyped-def]
    call = await api_for(ws_settings)
    server = await servers()
    blocker, blocked = await _online(connect, server, SF, NEAR)
    await _friends(call, blocker, blocked)
    status, body = await call("PUT", f"/v1/users/{blocker.user_id}/blocks/{blocked.user_id}", blocker.user_id)
    assert (status, body["removed"]) == (200, "friendship")
    await blocked.expect("friend_left", user_id=blocker.user_id, reason="unfriended", timeout=1.0)
    status, body = await call("POST", f"/v1/users/{blocked.user_id}/friends/{blocker.user_id}", blocked.user_id)
    assert (status, body["state"]) == (202, "requested")  # answered like any request
    await blocker.location(SF[0] + 1e-4, SF[1])
    frames = await blocked.quiet(SETTLE)
    assert _locations_of(frames, blocker.user_id) == []
    assert [f for f in await blocker.quiet(0.1) if f.get("type") == "friend_request"] == []
    status, body = await call("GET", f"/v1/users/{blocker.user_id}/friends?state=incoming", blocker.user_id)
    assert body["incoming"] == []
    status, body = await call("GET", f"/v1/users/{blocked.user_id}/friends?state=outgoing", blocked.user_id)
    assert body["outgoing"] == []


async def test_hidden_from_one_friend_while_another_still_sees(servers, connect, api_for, ws_settings) -> None:  # type: ignore[no-untyped-def]
    call = await api_for(ws_settings)
    one, two = await servers(), await servers()
    (sharer,) = await _online(connect, one, SF)
    hidden_from, coarse_for = await _online(connect, two, NEAR, NEAR)
    (watcher,) = await _online(connect, one, NEAR)
    for friend in (hidden_from, coarse_for, watcher):
        await _friends(call, sharer, friend)
    path = f"/v1/users/{sharer.user_id}/friends/{{}}/sharing"
    status, body = await call("PUT", path.format(hidden_from.user_id), sharer.user_id, {"sharing": "hidden"})
    assert (status, body["sharing"]) == (200, "hidden")
    # Hiding reads like going away: the friend cannot tell it from the user leaving.
    await hidden_from.expect("friend_left", user_id=sharer.user_id, reason="offline", timeout=1.0)
    await call("PUT", path.format(coarse_for.user_id), sharer.user_id, {"sharing": "coarse"})
    cell = coarsen(*SF)
    seen = await coarse_for.expect("friend_location", user_id=sharer.user_id, timeout=1.0)
    assert (seen["latitude"], seen["longitude"]) == cell
    moved = (SF[0] + 2e-4, SF[1] + 2e-4)
    await sharer.location(*moved)
    exact = await watcher.expect("friend_location", user_id=sharer.user_id, latitude=moved[0])
    assert exact["longitude"] == moved[1]
    for frame in _locations_of(await coarse_for.quiet(SETTLE), sharer.user_id):
        assert (frame["latitude"], frame["longitude"]) == coarsen(*moved)
    assert _locations_of(await hidden_from.quiet(0.1), sharer.user_id) == []
    reconnected = await connect(two, hidden_from.user_id)
    await reconnected.location(*NEAR)
    assert (await reconnected.expect("init"))["friends"] == []
    # The hidden friend still lists the sharer as a friend, and nothing says hidden.
    status, body = await call("GET", f"/v1/users/{hidden_from.user_id}/friends", hidden_from.user_id)
    assert [f["user_id"] for f in body["friends"]] == [sharer.user_id]
    assert body["friends"][0]["sharing"] == "exact"  # what the hidden friend shares, not what they see


async def test_unfriended_while_redis_is_down_then_retried_no_frame_after(  # type: ignore[no-untyped-def]
    servers, connect, api_for, ws_settings, throwaway_redis
) -> None:
    node = await throwaway_redis()
    own = replace(ws_settings, redis_url=url(node), pubsub_probe_s=0.3, breaker_failures=2, breaker_reset_s=0.3)
    call = await api_for(own)
    server = await servers(redis_url=url(node), pubsub_probe_s=0.3, breaker_failures=2, breaker_reset_s=0.3)
    alice, bob = await _online(connect, server, SF, NEAR)
    await _friends(call, alice, bob)
    await asyncio.to_thread(redis_nodes.stop, node)
    status, body = await call("DELETE", f"/v1/users/{bob.user_id}/friends/{alice.user_id}", bob.user_id)
    assert status == 503 and body["type"] == "/problems/presence-unavailable"
    await asyncio.to_thread(redis_nodes.start, ensure_binaries(), node)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:  # retried until Redis answers: the retry still tells the connections
        status, body = await call("DELETE", f"/v1/users/{bob.user_id}/friends/{alice.user_id}", bob.user_id)
        if status == 200:
            break
        assert status == 503 and loop.time() < deadline, body
        await asyncio.sleep(0.1)
    assert body["removed"] == "nothing"
    await alice.expect("friend_left", user_id=bob.user_id, reason="unfriended", timeout=WAIT)
    for seq in range(5):
        await bob.location(NEAR[0] + seq / 1e4, NEAR[1], timestamp=seq)
        await asyncio.sleep(0.1)
    assert _locations_of(await alice.quiet(SETTLE), bob.user_id) == []


async def test_unfriended_while_redis_is_down_and_never_retried(  # type: ignore[no-untyped-def]
    servers, connect, api_for, ws_settings, throwaway_redis
) -> None:
    node = await throwaway_redis()
    own = replace(ws_settings, redis_url=url(node), pubsub_probe_s=0.3)
    call = await api_for(own)
    server = await servers(redis_url=url(node), pubsub_probe_s=0.3)
    alice, bob = await _online(connect, server, SF, NEAR)
    await _friends(call, alice, bob)
    await asyncio.to_thread(redis_nodes.stop, node)
    status, _ = await call("DELETE", f"/v1/users/{bob.user_id}/friends/{alice.user_id}", bob.user_id)
    assert status == 503
    await asyncio.to_thread(redis_nodes.start, ensure_binaries(), node)
    # The instance re-reads its users' friends from the primary once pub/sub is back.
    await alice.expect("friend_left", user_id=bob.user_id, reason="unfriended", timeout=WAIT)
    for seq in range(5):
        await bob.location(NEAR[0] + seq / 1e4, NEAR[1], timestamp=seq)
    assert _locations_of(await alice.quiet(SETTLE), bob.user_id) == []


async def test_history_keeps_what_is_shared(servers, connect, ws_settings, primary: asyncpg.Connection) -> None:  # type: ignore[no-untyped-def]
    server = await servers(history_flush_ms=20)
    coarse, off, private = await _online(connect, server, SF, SF, SF)
    await coarse.send(type="sharing", enabled=True, precision="coarse")
    await off.send(type="sharing", enabled=False)
    await private.send(type="sharing", enabled=False, private_history=True)
    for client in (coarse, off, private):
        await client.expect("sharing")
        await client.location(*NEAR)
    await asyncio.sleep(0.5)

    async def points(client: Client) -> list[tuple[float, float]]:
        return [(r.latitude, r.longitude) for r in await history_db.history_of(primary, client.user_id)]

    # The first location of each was sent while sharing exactly (the default).
    assert await points(coarse) == [SF, coarsen(*NEAR)]
    assert await points(off) == [SF]
    assert await points(private) == [SF, NEAR]


async def test_erased_locations_do_not_come_back(  # type: ignore[no-untyped-def]
    servers, connect, api_for, ws_settings, primary: asyncpg.Connection
) -> None:
    call = await api_for(ws_settings)
    server = await servers(history_flush_ms=3000, history_flush_rows=10_000)
    (user,) = await _online(connect, server, SF)
    for i in range(3):
        await user.location(SF[0] + i / 1e4, SF[1])
    await user.quiet(0.2)
    status, body = await call("DELETE", f"/v1/users/{user.user_id}/locations", user.user_id)
    assert status == 200, body
    assert body["cached_location_deleted"] is True and body["instances_notified"] >= 1
    await asyncio.sleep(5.0)  # past the writer's next flush of what it held
    assert await history_db.history_of(primary, user.user_id) == []
    assert await primary.fetchval("SELECT home_region FROM users WHERE id = $1", user.user_id) is None
    status, body = await call("GET", f"/v1/users/{user.user_id}/locations/export", user.user_id)
    assert (status, body["locations"]) == (200, [])
    redis = aioredis.Redis.from_url(ws_settings.redis_url)
    try:
        assert not await redis.exists(location_key(ws_settings.redis_namespace, DEFAULT_REGION, user.user_id))
    finally:
        await redis.aclose()
