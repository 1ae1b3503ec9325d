"""Nearby strangers on live connections (real PostgreSQL and Redis): who sees whom, at what
precision, across the 180th meridian and near the poles, a crowded cell, and refusals.

The attacker's view: a user who did not opt in, a friend, a blocked user (either way, before
and during a session), a user with sharing off; none of them sees or is seen, and what a
stranger is shown never carries a user id or an exact point.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from friends_ws.cells import CellNews, cell_members_key, encode_news, home_cell
from friends_ws.clock import now_ms
from friends_ws.keys import cache_key, settings_key
from friends_ws.nearby import coarsen
from geo_common.regions import parse_regions
from tests.friends_ws.consent_helpers import TcpProxy
from tests.friends_ws.ws_helpers import TIMEOUT_FACTOR, WAIT, Client, Server, new_user

Connect = Callable[..., Awaitable[Client]]
#: Long enough for a frame that should not come to have come.
SETTLE = 1.0 * TIMEOUT_FACTOR
PRECISION = 5  # of the default GEO_DISCOVER_RADIUS_M, 2 km


def _spot() -> tuple[float, float]:
    """A place of the test's own: users left in a cell by earlier tests (a drained connection
    stays until its TTL) are elsewhere."""
    rng = random.Random()
    return rng.uniform(-50.0, 50.0), rng.uniform(-170.0, 170.0)


def _strangers(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] in ("stranger", "stranger_left")]


async def _all_strangers(client: Client, settle: float = SETTLE) -> list[dict[str, Any]]:
    """Every stranger frame the client received, once nothing more came for ``settle`` seconds."""
    await client.quiet(settle)
    return _strangers(client.received)


async def _discovering(connect: Connect, server: Server, point: tuple[float, float], **discover: Any) -> Client:
    """A new user at ``point`` who turned discovery on (after their ``init``)."""
    client = await connect(server, new_user())
    await client.location(*point)
    await client.expect("init")
    await client.send(type="discover", enabled=True, **discover)
    await client.expect("discover", enabled=True)
    return client


async def _pair(connect: Connect, one: Server, two: Server, here: tuple[float, float]) -> tuple[Client, Client]:
    """Alice at ``here`` on ``one`` and Bob 220 m north on ``two``, both discovering, each
    shown the other."""
    alice = await _discovering(connect, one, here)
    bob = await _discovering(connect, two, (here[0] + 0.002, here[1]))
    await alice.expect("stranger")
    await bob.expect("stranger")
    return alice, bob


async def test_opted_in_users_nearby_see_each_other_coarsely_and_nobody_else_does(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    here = coarsen(*_spot())  # a cell's centre: Alice's small step below stays in her cell
    lurker = await connect(server, new_user())  # never opts in
    await lurker.location(here[0] + 0.002, here[1])
    await lurker.expect("init")
    a_point, b_point = here, (here[0] + 0.003, here[1] + 0.001)
    alice = await _discovering(connect, server, a_point, handle="alice.a")
    bob = await _discovering(connect, server, b_point)
    seen_by_bob = await bob.expect("stranger")
    seen_by_alice = await alice.expect("stranger")
    # Coarse points only (the centre of the geohash-6 cell), never a user id.
    assert (seen_by_bob["latitude"], seen_by_bob["longitude"]) == coarsen(*a_point)
    assert (seen_by_alice["latitude"], seen_by_alice["longitude"]) == coarsen(*b_point)
    assert seen_by_bob["handle"] == "alice.a" and seen_by_alice["handle"] is None
    for frame in (seen_by_alice, seen_by_bob):
        assert set(frame) == {"type", "id", "handle", "latitude", "longitude", "distance_m", "updated_at"}
        assert re.fullmatch("[0-9a-f]{16}", frame["id"])
        assert str(alice.user_id) not in frame["id"] and str(bob.user_id) not in frame["id"]
    # The lurker, who did not opt in, sees nobody and is seen by nobody.
    await alice.location(a_point[0] + 0.0001, a_point[1])
    assert _strangers(await lurker.quiet(SETTLE)) == []
    assert _strangers(await alice.quiet(0.1)) == [] and _strangers(await bob.quiet(0.1)) == []
    # Another connection names the same stranger differently: ids cannot follow anyone around.
    carol = await _discovering(connect, server, (here[0] - 0.002, here[1]))
    frames = [await carol.expect("stranger"), await carol.expect("stranger")]
    assert seen_by_bob["id"] not in {f["id"] for f in frames}


async def test_a_late_comer_sees_who_is_there_at_once(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    here = _spot()
    alice = await _discovering(connect, server, here, handle="early_bird")
    await alice.quiet(0.2)
    bob = await _discovering(connect, server, (here[0] + 0.004, here[1]))  # Alice says nothing more
    assert (await bob.expect("stranger"))["handle"] == "early_bird"


async def test_friends_and_blocked_users_are_never_strangers(  # type: ignore[no-untyped-def]
    servers, connect: Connect, befriend, api_for, ws_settings
) -> None:
    server = await servers()
    here = _spot()
    api = await api_for(ws_settings)
    a, friend, blocked, blocker = new_user(), new_user(), new_user(), new_user()
    await befriend((a, friend))
    status, _ = await api("PUT", f"/v1/users/{a}/blocks/{blocked}", a)
    assert status in (200, 201, 204)
    status, _ = await api("PUT", f"/v1/users/{blocker}/blocks/{a}", blocker)
    assert status in (200, 201, 204)
    clients = {}
    for user, dlat in ((a, 0.0), (friend, 0.001), (blocked, 0.002), (blocker, 0.003)):
        clients[user] = client = await connect(server, user)
        await client.location(here[0] + dlat, here[1])
        await client.expect("init")
        await client.send(type="discover", enabled=True)
        await client.expect("discover", enabled=True)
    # A stranger proper: seen by all four but the ones they know are not seen by each other.
    stranger = await _discovering(connect, server, (here[0] - 0.001, here[1]))
    for client in clients.values():
        await client.expect("stranger")
    await stranger.quiet(SETTLE)
    # Alice sees only the stranger; the others see each other (no relation) and the stranger.
    for user, client in clients.items():
        frames = await _all_strangers(client, 0.1)
        assert [f["type"] for f in frames] == ["stranger"] * (3 if user != a else 1), (user, frames)
    assert [f["type"] for f in _strangers(stranger.received)] == ["stranger"] * 4
    # A block made during the session hides both at once, and for good.
    status, _ = await api("PUT", f"/v1/users/{stranger.user_id}/blocks/{a}", stranger.user_id)
    assert status in (200, 201, 204)
    await clients[a].expect("stranger_left", reason="hidden")
    await stranger.expect(lambda f: f["type"] == "stranger_left" and f["reason"] == "hidden")
    # A friendship ended during the session: the removed friend stays hidden too.
    status, _ = await api("DELETE", f"/v1/users/{a}/friends/{friend}", a)
    assert status in (200, 204)
    await clients[a].expect("friend_left", user_id=friend, reason="unfriended")
    await clients[a].location(here[0] + 0.0005, here[1])
    await stranger.location(here[0] - 0.0015, here[1])
    await clients[friend].location(here[0] + 0.0012, here[1])
    assert [f for f in _strangers(await clients[a].quiet(SETTLE)) if f["type"] == "stranger"] == []
    # ... and Alice to them: they still know only the three others.
    assert len({f["id"] for f in await _all_strangers(clients[friend], 0.1) if f["type"] == "stranger"}) == 3


async def test_crossing_the_180th_meridian_moves_without_a_gap_or_a_duplicate(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    west, east = (-16.5, 179.993), (-16.5, -179.993)  # Fiji, either side of the meridian
    assert home_cell(*coarsen(*west), PRECISION) != home_cell(*coarsen(*east), PRECISION)
    viewer = await _discovering(connect, server, (-16.5, 179.9995))
    mover = await _discovering(connect, server, west)
    await viewer.expect("stranger", longitude=coarsen(*west)[1])
    await mover.location(*east)
    await viewer.expect("stranger", longitude=coarsen(*east)[1])
    await mover.location(*west)
    await viewer.expect("stranger", longitude=coarsen(*west)[1])
    assert [f["type"] for f in await _all_strangers(viewer, SETTLE)] == ["stranger"] * 3


async def test_near_the_poles_cells_and_the_polar_channel_hand_over_without_a_gap(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    # Svalbard: across a precision-5 row of cells (78.2226 N), then into the polar channel (80 N).
    south, north = (78.2200, 15.65), (78.2250, 15.65)
    assert home_cell(*coarsen(*south), PRECISION) != home_cell(*coarsen(*north), PRECISION)
    viewer = await _discovering(connect, server, (78.2226, 15.66))
    mover = await _discovering(connect, server, south)
    await viewer.expect("stranger", latitude=coarsen(*south)[0])
    await mover.location(*north)
    await viewer.expect("stranger", latitude=coarsen(*north)[0])
    below, above = (79.995, 20.0), (80.006, 20.0)
    assert home_cell(*coarsen(*above), PRECISION) == "pole-n" != home_cell(*coarsen(*below), PRECISION)
    polar_viewer = await _discovering(connect, server, (80.0, 20.01))
    await mover.location(*below)
    await polar_viewer.expect("stranger", latitude=coarsen(*below)[0])
    await mover.location(*above)
    await polar_viewer.expect("stranger", latitude=coarsen(*above)[0])
    assert [f["type"] for f in await _all_strangers(polar_viewer, SETTLE)] == ["stranger"] * 2
    # Alert, 82.5 N: two people there see each other.
    alert = (82.5018, -62.3481)
    one = await _discovering(connect, server, alert)
    two = await _discovering(connect, server, (alert[0] + 0.005, alert[1]))
    await one.expect("stranger")
    await two.expect("stranger")


async def test_a_crowded_cell_shows_at_most_the_cap_and_fills_a_place_that_frees(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers(discover_max_shown=3)
    here = _spot()
    viewer = await _discovering(connect, server, here)
    crowd = [await _discovering(connect, server, (here[0] + 0.001 * i, here[1])) for i in range(1, 6)]
    for _ in range(3):
        await viewer.expect("stranger")
    assert _strangers(await viewer.quiet(SETTLE)) == []
    shown = {f["id"] for f in _strangers(viewer.received)}
    assert len(shown) == 3
    for member in crowd:
        assert len({f["id"] for f in await _all_strangers(member, 0.1)}) <= 3
    # The first heard leaves: the viewer is told, and sees one who waited.
    await crowd[0].send(type="sign_out")
    await crowd[0].closed()
    left = await viewer.expect("stranger_left")
    assert left["reason"] == "offline" and left["id"] in shown
    newcomer = await viewer.expect("stranger")
    assert newcomer["id"] not in shown


async def test_sharing_off_discovery_off_and_a_closed_socket_hide_the_user(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    here = _spot()
    alice, bob = await _pair(connect, server, server, here)
    # Sharing off: nobody sees Bob, and Bob sees nobody (no watching unseen).
    await bob.send(type="sharing", enabled=False)
    await bob.expect("sharing", enabled=False)
    await alice.expect("stranger_left", reason="hidden")
    await alice.location(here[0] + 0.0003, here[1])
    await bob.location(here[0] + 0.0021, here[1])
    assert _strangers(await bob.quiet(SETTLE)) == []
    # Sharing on: both again.
    await bob.send(type="sharing", enabled=True)
    await bob.expect("stranger")  # before the acknowledgement: it is applied first
    await bob.expect("sharing", enabled=True)
    await alice.expect("stranger")
    # Discovery off.
    await bob.send(type="discover", enabled=False)
    await bob.expect("discover", enabled=False)
    await alice.expect("stranger_left", reason="hidden")
    await bob.send(type="discover", enabled=True)
    await bob.expect("discover", enabled=True)
    await alice.expect("stranger")
    # A closed socket.
    await bob.close()
    await alice.expect("stranger_left", reason="offline")


async def test_the_preference_is_stored_and_followed_by_the_users_other_connections(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    here = _spot()
    user = new_user()
    one, two = await connect(server, user), await connect(server, user)
    await two.opened()
    await one.location(*here)
    await one.expect("init")
    await one.send(type="discover", enabled=True, handle="twice_seen")
    await one.expect("discover", enabled=True, handle="twice_seen")
    await two.expect("discover", enabled=True, handle="twice_seen")
    # An absent handle keeps it; null clears it.
    await one.send(type="discover", enabled=True)
    await one.expect("discover", enabled=True, handle="twice_seen")
    await one.close()
    await two.close()
    again = await connect(server, user)
    await again.location(*here)
    await again.expect("init")
    await again.expect("discover", enabled=True, handle="twice_seen")
    await again.send(type="discover", enabled=False, handle=None)
    await again.expect("discover", enabled=False, handle=None)


async def test_bad_discover_frames_are_refused_and_change_nothing(servers, connect: Connect, primary) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    client = await connect(server, new_user())
    for bad in (
        {"enabled": "yes"},
        {},
        {"enabled": True, "handle": "x"},
        {"enabled": True, "handle": "has space"},
        {"enabled": True, "handle": 42},
        {"enabled": True, "handle": "a" * 31},
    ):
        await client.send(type="discover", **bad)
        error = await client.expect("error", code="invalid_value")
        assert "enabled" in error["detail"] or "handle" in error["detail"]
    row = await primary.fetchrow("SELECT discover, public_handle FROM users WHERE id = $1", client.user_id)
    assert row is None or (row["discover"], row["public_handle"]) == (False, None)
    # The messages' rate limit applies (GEO_WS_MAX_MESSAGES_PER_S, bursts of 5).
    for _ in range(6):
        await client.send(type="discover", enabled=False)
    await client.expect("error", code="rate_limited")


async def test_metrics_count_cells_and_strangers(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    here = _spot()
    alice, bob = await _pair(connect, server, server, here)
    async with aiohttp.ClientSession() as http, http.get(f"{server.http}/metrics") as resp:
        text = await resp.text()
    cells = float(re.search(r"^geo_friends_discovery_cells (\S+)$", text, re.M)[1])  # type: ignore[index]
    sent = float(re.search(r'^geo_friends_frames_sent_total\{type="stranger"\} (\S+)$', text, re.M)[1])  # type: ignore[index]
    assert cells >= 1 and sent >= 2


async def test_strangers_on_two_instances_over_redis_cluster(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    one, two = await servers(pubsub_backend="cluster"), await servers(pubsub_backend="cluster")
    here = _spot()
    alice, bob = await _pair(connect, one, two, here)
    await bob.location(here[0] + 0.012, here[1])  # 1.3 km: a new coarse cell, still in range
    moved = await alice.expect("stranger")
    assert moved["latitude"] == coarsen(here[0] + 0.012, here[1])[0]
    await bob.location(here[0] + 0.03, here[1])  # 3.3 km
    await alice.expect("stranger_left", reason="out_of_range")
    await bob.expect("stranger_left", reason="out_of_range")


async def test_a_discovery_change_missed_in_a_pub_sub_outage_applies_after_it(
    servers, connect: Connect, ws_settings
) -> None:  # type: ignore[no-untyped-def]
    host, port = ws_settings.redis_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    try:
        # Alice's instance reaches Redis through the proxy; Bob's and her other connection's directly.
        one = await servers(redis_url=proxy.url(ws_settings.redis_url), pubsub_probe_s=0.3)
        two = await servers()
        here = _spot()
        alice, bob = await _pair(connect, one, two, here)
        other = await connect(two, alice.user_id)
        await proxy.cut()
        await other.send(type="discover", enabled=False)  # Alice's instance does not hear it
        await other.expect("discover", enabled=False)
        await proxy.restore()
        # Re-read from the primary once pub/sub is back: she leaves Bob's view.
        await alice.expect("discover", enabled=False, timeout=3 * WAIT)
        await bob.expect("stranger_left", reason="hidden")
    finally:
        await proxy.close()


async def test_a_member_a_dead_server_left_behind_is_not_shown_and_is_removed(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    cache = server.app[cache_key]
    here = _spot()
    point = coarsen(*here)
    cell = home_cell(*point, PRECISION)
    key = cell_members_key(server.app[settings_key].redis_namespace, "default", cell)
    # Two users no live connection speaks for: one heard within the TTL, one long before it.
    fresh, stale = new_user(), new_user()
    ttl_ms = server.app[settings_key].location_ttl_s * 1000
    await cache.hold_member("default", key, fresh, encode_news(CellNews(fresh, cell, now_ms(), *point, "fresh")))
    old = encode_news(CellNews(stale, cell, now_ms() - ttl_ms - 1000, *point, "stale"))
    await cache.hold_member("default", key, stale, old)
    viewer = await _discovering(connect, server, here)
    assert [f["handle"] for f in await _all_strangers(viewer)] == ["fresh"]
    assert {user for user, _ in await cache.sample_members("default", key, 10)} == {fresh, viewer.user_id}


async def test_cells_live_in_the_region_of_their_centre_across_a_region_border(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
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
    west, east = (51.4779, -0.006), (51.4779, 0.006)  # Greenwich, either side of the meridian
    alice = await _discovering(connect, one, west)
    bob = await _discovering(connect, two, east)
    await alice.expect("stranger", longitude=coarsen(*east)[1])
    await bob.expect("stranger", longitude=coarsen(*west)[1])
    # Bob walks west across the border: Alice's instance hears his cells in both regions.
    await bob.location(west[0] + 0.004, west[1])
    await alice.expect("stranger", longitude=coarsen(west[0] + 0.004, west[1])[1])
    await bob.location(*east)
    await alice.expect("stranger", longitude=coarsen(*east)[1])
    assert [f["type"] for f in await _all_strangers(alice)] == ["stranger"] * 3


async def test_closing_one_of_two_connections_leaves_the_user_shown(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    here = _spot()
    viewer = await _discovering(connect, server, here)
    user = new_user()
    first = await connect(server, user)
    for client in (first, second := await connect(server, user)):
        await client.location(here[0] + 0.002, here[1])
        await client.expect("init")
    await first.send(type="discover", enabled=True)
    await viewer.expect("stranger")
    # The second connection speaks last; closing the first leaves the user there.
    await second.location(here[0] + 0.002, here[1])
    await second.quiet(0.2)
    await first.close()
    assert await _all_strangers(viewer) == [f for f in viewer.received if f["type"] == "stranger"]
    assert len(await _all_strangers(viewer)) == 1
    # Closing the one that spoke last takes them away.
    await second.close()
    await viewer.expect("stranger_left", reason="offline")


async def test_closing_the_last_speaker_lets_the_other_connection_speak(servers, connect: Connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    here = _spot()
    viewer = await _discovering(connect, server, here)
    user = new_user()
    first, second = await connect(server, user), await connect(server, user)
    for client in (first, second):
        await client.location(here[0] + 0.002, here[1])
        await client.expect("init")
    await first.send(type="discover", enabled=True)
    shown = await viewer.expect("stranger")
    await second.expect("discover", enabled=True)  # followed there, and said there too
    await second.location(here[0] + 0.002, here[1])
    await second.quiet(0.2)
    # The one that spoke last closes: the user leaves, and the other puts them back at once.
    await second.close()
    await viewer.expect("stranger_left", id=shown["id"], reason="offline")
    back = await viewer.expect("stranger")
    assert (back["id"], back["latitude"], back["longitude"]) == (shown["id"], shown["latitude"], shown["longitude"])
    # The last one closes: gone for good, and nobody brings them back.
    await first.close()
    await viewer.expect("stranger_left", id=shown["id"], reason="offline")
    assert [f["type"] for f in _strangers(await viewer.quiet(SETTLE))] == []
