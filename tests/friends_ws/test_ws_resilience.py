"""Redis restarted mid-session, a ring node added under traffic, friends in two regions.

Restarts and ring changes use throwaway redis-server processes, never the shared stack's.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import redis.asyncio as aioredis

from deploy.stack import redis_nodes
from deploy.stack.binaries import ensure_binaries
from geo_common.presence import location_key
from geo_common.regions import parse_regions
from tests.friends_ws.ws_helpers import WAIT, new_user
from tests.pubsub.pubsub_helpers import url

SF = (37.7749, -122.4194)
NEAR = (37.7849, -122.4094)


async def test_deliveries_resume_after_redis_restarts(servers, connect, befriend, throwaway_redis) -> None:  # type: ignore[no-untyped-def]
    node = await throwaway_redis()
    server = await servers(redis_url=url(node), pubsub_probe_s=0.3)
    a, b = new_user(), new_user()
    await befriend((a, b))
    alice, bob = await connect(server, a), await connect(server, b)
    await alice.location(*SF)
    await alice.expect("init")
    await bob.location(*NEAR, timestamp=1)
    await alice.expect("friend_location", user_id=b, sent_at=1)
    await asyncio.to_thread(redis_nodes.stop, node)
    await asyncio.to_thread(redis_nodes.start, ensure_binaries(), node)
    # Bob keeps moving; once the subscriber is back, Alice sees him again (no reconnection).
    for seq in range(2, 200):
        await bob.location(NEAR[0] + seq / 1e5, NEAR[1], timestamp=seq)
        frames = [f for f in await alice.quiet(0.05) if f.get("type") == "friend_location"]
        if frames:
            break
    else:
        raise AssertionError("no delivery after the restart")
    assert alice.ws.state.name == "OPEN" and bob.ws.state.name == "OPEN"
    # The reconnection is on /metrics, for the alert on a flapping pub/sub.
    async with aiohttp.ClientSession() as http, http.get(f"{server.http}/metrics") as resp:
        text = await resp.text()
    counted = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("geo_friends_pubsub_reconnections_total{region=")
    ]
    assert counted and sum(counted) >= 1, text


async def test_adding_a_ring_node_loses_no_delivery(servers, connect, befriend, throwaway_redis) -> None:  # type: ignore[no-untyped-def]
    first = [url(await throwaway_redis()) for _ in range(2)]
    extra = url(await throwaway_redis())
    options = dict(
        pubsub_backend="ring", pubsub_ring=tuple(first), pubsub_ring_handoff_s=1.0, ws_max_updates_per_s=1000.0
    )
    one, two = await servers(**options), await servers(**options)
    pairs = [(new_user(), new_user()) for _ in range(6)]
    await befriend(*pairs)
    viewers = [await connect(one, a) for a, _ in pairs]
    movers = [await connect(two, b) for _, b in pairs]
    for client in (*viewers, *movers):
        await client.location(*SF)
        await client.expect("init")
    for viewer, (_, b) in zip(viewers, pairs):
        await viewer.expect("friend_location", user_id=b)
    sent = 0
    stop = asyncio.Event()

    async def move() -> None:
        nonlocal sent
        seq = 0
        while not stop.is_set():
            seq += 1
            for mover in movers:
                await mover.location(SF[0], SF[1] + seq / 1e6, timestamp=seq)
            sent = seq
            await asyncio.sleep(0.01)

    task = asyncio.create_task(move())
    await asyncio.sleep(0.1)
    moved = await asyncio.gather(
        one.hub.broker.set_ring("default", [*first, extra]), two.hub.broker.set_ring("default", [*first, extra])
    )
    await asyncio.sleep(0.1)
    stop.set()
    await task
    assert sum(moved) > 0  # some of the channels did move to the new node
    for viewer, (_, b) in zip(viewers, pairs):
        stamps = set()
        while len(stamps) < sent:
            frame = await viewer.expect("friend_location", user_id=b)
            stamps.add(frame["sent_at"])
        assert stamps == set(range(1, sent + 1))


async def test_friends_in_two_regions_see_each_other(servers, connect, befriend, ws_settings) -> None:  # type: ignore[no-untyped-def]
    # West of Greenwich on the standalone Redis; east of it on the Redis Cluster.
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
    alice, bob = await connect(one, a), await connect(two, b)
    await alice.location(51.5, -0.2)  # west
    await alice.expect("init")
    await bob.location(51.5, 0.1)  # east, 21 km away
    await bob.expect("init")
    await bob.send(type="settings", radius_m=30_000)
    await bob.expect("settings")
    await alice.send(type="settings", radius_m=30_000)
    await alice.expect("settings")
    await bob.location(51.5, 0.05)
    # Widening the radius may first bring bob's earlier position (0.1); the move must follow.
    seen = await alice.expect("friend_location", user_id=b, longitude=0.05)
    assert seen["latitude"] == 51.5
    await alice.location(51.5, -0.1)
    await bob.expect("friend_location", user_id=a)
    # Each user's cached location lives in their home region only.
    redis = aioredis.Redis.from_url(ws_settings.redis_url)
    try:
        ns = ws_settings.redis_namespace
        assert await redis.exists(location_key(ns, "west", a), location_key(ns, "east", b)) == 2
        assert await redis.exists(location_key(ns, "east", a), location_key(ns, "west", b)) == 0
    finally:
        await redis.aclose()
    # A user in a region's home is subscribed there: Bob's channel is a shard channel.
    assert any(c.startswith(f"{ns}:east:ch:") for c in one.hub.broker.buses["east"].channels)
    assert WAIT > 0


async def test_sighup_applies_a_changed_ring(servers, throwaway_redis, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from friends_ws.__main__ import reload_ring

    nodes = [url(await throwaway_redis()) for _ in range(3)]
    server = await servers(pubsub_backend="ring", pubsub_ring=tuple(nodes[:2]), pubsub_ring_handoff_s=0.05)
    monkeypatch.setenv("GEO_PUBSUB_BACKEND", "ring")
    monkeypatch.setenv("GEO_PUBSUB_RING", ",".join(nodes))
    await reload_ring(server.app)  # what the SIGHUP handler runs
    assert set(server.hub.broker.bus("default").nodes) == set(nodes)
