"""Friendship by consent on live connections: requests, acceptance, removal, forged messages,
home regions moving, and what a pub/sub reconnection re-reads from the primary.

geo-api's part is played by the tests: the change on the primary with ``consent_db`` /
``friends_db``, then the :class:`~geo_common.announcements.Announcer`'s publications, in order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg

from friends_ws.clock import now_ms
from geo_common import consent_db, friends_db
from geo_common.announcements import Publication
from geo_common.presence import Access, Location, encode_access, encode_location, location_channel
from geo_common.regions import parse_regions
from tests.friends_ws.consent_helpers import Publisher, TcpProxy, frames_of, homes
from tests.friends_ws.ws_helpers import NEAR, SF, TIMEOUT_FACTOR, WAIT, Client, Server, new_user

#: Long enough for a frame that should not come to have come (changes apply within 1 s).
SETTLE = 1.0 * TIMEOUT_FACTOR
LIMITS = consent_db.Limits(max_friends=100, max_pending=100)

Connect = Callable[..., Awaitable[Client]]


async def _online(connect: Connect, server: Server, *points: tuple[float, float]) -> list[Client]:
    """New users connected to ``server``, one at each point, each with their ``init``."""
    clients = []
    for point in points:
        client = await connect(server, new_user())
        await client.location(*point)
        await client.expect("init")
        clients.append(client)
    return clients


def _about(client: Client, user_id: int) -> list[dict[str, Any]]:
    """Every frame ``client`` received about ``user_id`` so far, in order."""
    return frames_of(client.received, user_id)


async def test_a_request_alone_shows_the_request_and_nothing_else(  # type: ignore[no-untyped-def]
    servers, connect, primary: asyncpg.Connection, publisher: Publisher
) -> None:
    server = await servers()
    asker, asked = await _online(connect, server, SF, NEAR)
    a, b = asker.user_id, asked.user_id
    await friends_db.set_display_name(primary, a, "Ada")
    assert await consent_db.request_friendship(primary, a, b, LIMITS) is consent_db.Outcome.REQUESTED
    await publisher.publish(publisher.announcer.request_sent(a, b, await homes(primary, a, b), "Ada"))
    assert await asked.expect("friend_request") == {"type": "friend_request", "user_id": a, "display_name": "Ada"}
    # Both keep moving, reconnect and leave: neither learns where the other is, nor whether
    # they are online.
    await asker.location(SF[0] + 1e-4, SF[1])
    await asked.location(NEAR[0] + 1e-4, NEAR[1])
    for user, point in ((asker, SF), (asked, NEAR)):
        again = await connect(server, user.user_id)
        await again.location(*point)
        assert (await again.expect("init"))["friends"] == []
        await again.close()
    await asker.close()
    await asked.quiet(SETTLE)
    assert _about(asked, a) == [{"type": "friend_request", "user_id": a, "display_name": "Ada"}]
    assert _about(asker, b) == []
    assert a not in server.hub.fanout.listeners and b not in server.hub.fanout.listeners


async def test_acceptance_is_announced_to_both_with_a_friend_added_frame(  # type: ignore[no-untyped-def]
    servers, connect, primary: asyncpg.Connection, publisher: Publisher
) -> None:
    one, two = await servers(), await servers()
    (alice,) = await _online(connect, one, SF)
    (bob,) = await _online(connect, two, NEAR)
    a, b = alice.user_id, bob.user_id
    await friends_db.set_display_name(primary, b, "Bob")
    assert await consent_db.request_friendship(primary, a, b, LIMITS) is consent_db.Outcome.REQUESTED
    await publisher.publish(publisher.announcer.request_sent(a, b, await homes(primary, a, b), None))
    assert await bob.expect("friend_request") == {"type": "friend_request", "user_id": a, "display_name": None}
    assert await consent_db.request_friendship(primary, b, a, LIMITS) is consent_db.Outcome.ACCEPTED
    started = publisher.announcer.friendship_started(a, b, await homes(primary, a, b), {a: None, b: "Bob"})
    await publisher.publish(started)
    assert await alice.expect("friend_added", timeout=1.0 * WAIT) == {
        "type": "friend_added",
        "user_id": b,
        "display_name": "Bob",
    }
    assert await bob.expect("friend_added") == {"type": "friend_added", "user_id": a, "display_name": None}
    # Each is in the other's cache: shown at once, after the announcement.
    await alice.expect("friend_location", user_id=b)
    await bob.expect("friend_location", user_id=a)
    assert [f["type"] for f in _about(alice, b)] == ["friend_added", "friend_location"]
    # A repeated announcement (geo-api retried) is no news.
    await publisher.publish(started)
    await bob.location(NEAR[0] + 1e-4, NEAR[1])
    await alice.expect("friend_location", user_id=b, latitude=NEAR[0] + 1e-4)
    assert [f for f in await alice.quiet(SETTLE) if f["type"] == "friend_added"] == []


async def test_forged_or_stale_grants_for_strangers_show_nothing(  # type: ignore[no-untyped-def]
    servers, connect, primary: asyncpg.Connection, publisher: Publisher
) -> None:
    server = await servers()
    alice, mallory = await _online(connect, server, SF, NEAR)
    a, m = alice.user_id, mallory.user_id
    # Announcements of a friendship and of exact sharing the database never had.
    where = await homes(primary, a, m)
    await publisher.publish(publisher.announcer.friendship_started(a, m, where, {a: None, m: "Mallory"}))
    await publisher.publish(publisher.announcer.sharing_with(m, a, "exact", where))
    await publisher.publish(publisher.announcer.sharing_with(a, m, "coarse", where))
    for step in range(3):
        await mallory.location(NEAR[0] + step / 1e4, NEAR[1])
        await alice.location(SF[0] + step / 1e4, SF[1])
    await alice.quiet(SETTLE)
    await mallory.quiet(0.1)
    assert _about(alice, m) == [] and _about(mallory, a) == []
    assert m not in server.hub.fanout.listeners and a not in server.hub.fanout.listeners


async def test_no_location_published_after_the_removal_is_delivered(  # type: ignore[no-untyped-def]
    servers, in_view, primary: asyncpg.Connection, publisher: Publisher, ws_settings
) -> None:
    server = await servers()
    a, b, alice, bob = await in_view(server)
    channel = location_channel(ws_settings.redis_namespace, "default", b)

    def location(latitude: float) -> Publication:
        return Publication("default", channel, encode_location(Location(b, latitude, NEAR[1], now_ms())))

    # A location published on Bob's channel reaches Alice...
    await publisher.publish([location(NEAR[0] + 1e-4)])
    await alice.expect("friend_location", user_id=b, latitude=NEAR[0] + 1e-4)
    # ...but not one published right after the access message that ends the friendship.
    assert await consent_db.remove_relation(primary, a, b) is consent_db.Removed.FRIENDSHIP
    removed = Publication("default", channel, encode_access(Access(b, a, "removed")))
    await publisher.publish([removed, location(NEAR[0] + 2e-4)])
    await alice.expect("friend_left", user_id=b, reason="unfriended")
    await alice.quiet(SETTLE)
    assert [f for f in _about(alice, b) if f.get("latitude") == NEAR[0] + 2e-4] == []
    assert _about(alice, b)[-1] == {"type": "friend_left", "user_id": b, "reason": "unfriended"}
    assert b not in server.hub.fanout.listeners


async def test_grants_are_re_read_from_the_primary_after_a_pub_sub_reconnection(  # type: ignore[no-untyped-def]
    servers, connect, befriend, primary: asyncpg.Connection, publisher: Publisher, ws_settings
) -> None:
    host, port = ws_settings.redis_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    try:
        # Alice's instance reaches Redis through the proxy; everyone else's directly.
        one = await servers(redis_url=proxy.url(ws_settings.redis_url), pubsub_probe_s=0.3)
        two = await servers()
        a, b, c, d = (new_user() for _ in range(4))
        await befriend((a, b), (a, c))
        alice = await connect(one, a)
        await alice.location(*SF)
        await alice.expect("init")
        bob, carol, dave = [await connect(two, u) for u in (b, c, d)]
        for client in (bob, carol, dave):
            await client.location(*NEAR)
            await client.expect("init")
        await alice.expect("friend_location", user_id=b)
        await alice.expect("friend_location", user_id=c)
        other = await connect(two, a)  # Alice's other connection, on the instance that hears
        await proxy.cut()
        # Meanwhile, what Alice's instance does not hear: Alice turns sharing off on her other
        # connection, Bob ends the friendship, Carol hides from Alice, Dave becomes her friend.
        await other.send(type="sharing", enabled=False)
        await other.expect("sharing", enabled=False)
        where = await homes(primary, a, b, c, d)
        assert await consent_db.remove_relation(primary, b, a) is consent_db.Removed.FRIENDSHIP
        await publisher.publish(publisher.announcer.relation_ended(b, a, where))
        assert await friends_db.set_friend_sharing(primary, c, a, "hidden")
        await publisher.publish(publisher.announcer.sharing_with(c, a, "hidden", where))
        assert await consent_db.befriend_directly(primary, a, d) is True
        await publisher.publish(publisher.announcer.friendship_started(a, d, where, {}))
        await bob.expect("friend_left", user_id=a, reason="sharing_off")  # heard where pub/sub was up
        accepted = await proxy.restore()
        # Within a second of Redis accepting the instance again (its reconnection).
        deadline = await asyncio.wait_for(accepted, WAIT) + 1.0 * TIMEOUT_FACTOR
        departures = {b: "unfriended", c: "offline"}  # hiding reads like going away
        for _ in departures:
            left = max(0.01, deadline - time.monotonic())
            frame = await alice.expect(lambda f: f["type"] == "friend_left" and f["user_id"] in departures, left)
            assert frame["reason"] == departures[frame["user_id"]]
        await alice.expect("friend_added", user_id=d, display_name=None)
        for step in range(1, 100):  # Dave moves until his channel is followed
            await dave.location(NEAR[0] + step / 1e5, NEAR[1])
            if [f for f in await alice.quiet(0.05) if f.get("user_id") == d and f["type"] == "friend_location"]:
                break
        else:
            raise AssertionError("the new friend is not followed after the reconnection")
        for client in (bob, carol):
            await client.location(NEAR[0] + 3e-4, NEAR[1])
        # Alice's own row is re-read too: sharing is off on this connection as well.
        turned_off = {"type": "sharing", "enabled": False, "precision": "exact", "private_history": False}
        for _ in range(int(WAIT / 0.1)):
            if turned_off in alice.received:
                break
            await alice.quiet(0.1)
        assert turned_off in alice.received
        await alice.location(SF[0] + 1e-4, SF[1])
        await alice.quiet(SETTLE)
        for friend in (b, c):
            assert [f["type"] for f in _about(alice, friend)][-1:] == ["friend_left"]
            assert friend not in one.hub.fanout.listeners
        await dave.quiet(0.1)
        assert [f["type"] for f in _about(dave, a)] == ["friend_added"]
    finally:
        await proxy.close()


async def test_a_claimed_home_region_reaches_followers_the_user_does_not_see(  # type: ignore[no-untyped-def]
    servers, connect, befriend, primary: asyncpg.Connection, ws_settings
) -> None:
    # West of Greenwich on the standalone Redis (the default); east of it on the Redis Cluster.
    regions = parse_regions(
        json.dumps(
            {
                "west": {"boxes": [[-90, -180, 90, 0]], "pubsub": {"backend": "redis"}},
                "east": {"boxes": [[-90, 0, 90, 180]], "pubsub": {"backend": "cluster"}},
            }
        )
    )
    one, two = await servers(regions=regions), await servers(regions=regions)
    a, b = new_user(), new_user()
    await befriend((a, b))
    # Alice hides from Bob: Bob's connections do not follow her, but she follows him.
    assert await friends_db.set_friend_sharing(primary, a, b, "hidden")
    alice, bob = await connect(one, a), await connect(two, b)
    await alice.location(51.5, 0.05)
    await alice.expect("init")
    await bob.location(51.5, 0.1)  # Bob's first location: his home is the east now
    assert (await bob.expect("init"))["friends"] == []
    await alice.expect("friend_location", user_id=b, longitude=0.1)
    await bob.location(51.5, 0.11)  # published in the east only
    await alice.expect("friend_location", user_id=b, longitude=0.11)
    assert (await friends_db.get_user(primary, b)).home_region == "east"  # type: ignore[union-attr]
    publisher = Publisher(replace(ws_settings, regions=regions))
    try:
        # Bob erases his locations (geo-api's DELETE): his home region is forgotten...
        assert await friends_db.clear_home_region(primary, b) == "east"
        await publisher.publish(publisher.announcer.locations_erased(b, "east"))
        await alice.expect("friend_left", user_id=b, reason="offline")
        # (Alice's instance follows Bob's channels in the default region now.)
        west = location_channel(ws_settings.redis_namespace, "west", b)
        for _ in range(100):
            if one.hub.fanout.friend_region(b) == "west":
                break
            await asyncio.sleep(0.02)
        assert one.hub.fanout.friend_region(b) == "west"
        await one.hub.broker.confirmed([west])
        # ...and his next location claims it again, and Alice follows him there once more.
        sent = set()
        for step in range(100):  # (Bob's stale 0.11 may still be in the east's cache)
            sent.add(0.12 + step / 100_000)
            await bob.location(51.5, 0.12 + step / 100_000)
            if [f for f in await alice.quiet(0.05) if f.get("user_id") == b and f.get("longitude") in sent]:
                break
        else:
            raise AssertionError("the follower lost the user after the erasure")
        assert (await friends_db.get_user(primary, b)).home_region == "east"  # type: ignore[union-attr]
    finally:
        await publisher.close()
    assert _about(bob, a) == []
