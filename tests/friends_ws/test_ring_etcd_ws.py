"""Two geo-friends servers whose ring is kept in etcd: a node added with ``geo-stack ring add``
while 200 clients exchange updates, with no delivery lost; the ring on /metrics.

etcd and the ring's Redis nodes are the test's own (tests/pubsub/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
from aiohttp.test_utils import TestServer

from deploy.stack.etcd import EtcdMember
from dataclasses import replace

from friends_ws.keys import rings_key, settings_key
from geo_common.tokens import mint_token
from location_api.app import create_app as api_app
from location_api.keys import presence_key
from tests.friends_ws.ws_helpers import SF, new_user
from tests.pubsub.conftest import throwaway_etcd  # noqa: F401 - the fixture
from tests.pubsub.pubsub_helpers import eventually, url

PAIRS = 100  # 200 clients: a viewer and a mover each


async def geo_stack_ring(member: EtcdMember, namespace: str, *args: str) -> str:
    """Run ``geo-stack ring ...`` as an operator would; its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
    env |= {"GEO_ETCD_URL": member.url, "GEO_REDIS_NAMESPACE": namespace, "GEO_ENV_FILE": os.devnull}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.stack.cli", "ring", *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out
    return out.decode()


async def test_adding_a_ring_node_through_etcd_loses_no_delivery(  # type: ignore[no-untyped-def]
    servers,
    connect,
    befriend,
    throwaway_redis,
    throwaway_etcd,  # noqa: F811 - the fixture imported above
    ws_settings,
) -> None:
    first = [url(await throwaway_redis()) for _ in range(2)]
    extra = url(await throwaway_redis())
    options = dict(
        pubsub_backend="ring",
        pubsub_ring=tuple(first),
        pubsub_ring_handoff_s=1.0,
        ws_max_updates_per_s=1000.0,
        etcd_url=throwaway_etcd.url,
    )
    one, two = await servers(**options), await servers(**options)
    found = [s.app[rings_key] for s in (one, two)]  # started by the app factory
    statuses = [d.statuses["default"] for d in found]
    await eventually(lambda: all(s.connected and s.version == 1 for s in statuses), "the seeded ring", timeout=10)
    pairs = [(new_user(), new_user()) for _ in range(PAIRS)]
    await befriend(*pairs)
    viewers = await asyncio.gather(*(connect(one, a) for a, _ in pairs))
    movers = await asyncio.gather(*(connect(two, b) for _, b in pairs))
    for group in (viewers, movers):  # the viewers are in place before the movers show up
        for client in group:
            await client.location(*SF)
        await asyncio.gather(*(client.expect("init") for client in group))
    await asyncio.gather(*(viewer.expect("friend_location", user_id=b) for viewer, (_, b) in zip(viewers, pairs)))
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
            await asyncio.sleep(0.05)

    # geo-api publishes friendship news on the ring too: it follows etcd as well.
    api = TestServer(api_app(replace(one.app[settings_key], api_role="all")), host="127.0.0.1")
    await api.start_server()
    api_bus = api.app[presence_key].buses["default"]
    task = asyncio.create_task(move())
    await asyncio.sleep(0.2)
    said = await geo_stack_ring(throwaway_etcd, ws_settings.redis_namespace, "add", extra)
    assert "added" in said
    await eventually(lambda: all(s.version == 2 for s in statuses), "both servers to apply the change", timeout=15)
    await eventually(lambda: extra in api_bus.nodes, "geo-api to apply the change", timeout=15)
    await asyncio.sleep(0.2)
    stop.set()
    await task
    assert sent >= 10  # updates flowed all through the change
    assert all(s.changes == 1 and s.nodes == 3 for s in statuses)
    assert one.hub.broker.bus("default").subscriber(extra).channels  # some channels moved there
    for viewer, (_, b) in zip(viewers, pairs):
        stamps: set[int] = set()
        while len(stamps) < sent:
            frame = await viewer.expect("friend_location", user_id=b)
            stamps.add(frame["sent_at"])
        assert stamps == set(range(1, sent + 1))
    # The ring on /metrics: its version, the change applied, its nodes, the watch up, and
    # exactly one of the two servers running the health check.
    leaders = 0
    for server in (one, two):
        async with aiohttp.ClientSession() as http, http.get(f"{server.http}/metrics") as resp:
            text = await resp.text()
        assert 'geo_friends_ring_version{region="default"} 2.0' in text
        assert 'geo_friends_ring_changes_total{region="default"} 1.0' in text
        assert 'geo_friends_ring_nodes{region="default"} 3.0' in text
        assert 'geo_friends_ring_etcd_connected{region="default"} 1.0' in text
        leaders += 'geo_friends_ring_health_leader{region="default"} 1.0' in text
    assert leaders == 1
    # Every viewer hears a friend request geo-api announces after the change, those whose
    # control channel moved to the new node included (about a third of them).
    try:
        async with aiohttp.ClientSession() as http:
            for viewer in viewers:
                asker = new_user()
                token = mint_token(ws_settings.jwt_secret, asker)
                path = f"/v1/users/{asker}/friends/{viewer.user_id}"
                async with http.post(api.make_url(path), headers={"Authorization": f"Bearer {token}"}) as resp:
                    assert resp.status == 202, await resp.text()  # requested
                await viewer.expect("friend_request", user_id=asker)
    finally:
        await api.close()
