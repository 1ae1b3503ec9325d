"""The stack's Redis: a standalone server and a three-node cluster with sharded pub/sub."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from geo_common.settings import Settings


def _nodes(settings: Settings) -> list[ClusterNode]:
    return [ClusterNode(h, int(p)) for h, p in (n.rsplit(":", 1) for n in settings.redis_cluster)]


async def test_standalone_answers(settings: Settings) -> None:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await client.set("geo:test:standalone", "1", ex=10)
        assert await client.get("geo:test:standalone") == b"1"
    finally:
        await client.delete("geo:test:standalone")
        await client.aclose()


async def test_cluster_covers_all_slots_on_three_nodes(settings: Settings) -> None:
    assert len(settings.redis_cluster) == 3
    for node in _nodes(settings):
        client = aioredis.Redis(host=node.host, port=node.port)
        try:
            info = await client.cluster("info")
            slots = await client.cluster("slots")
        finally:
            await client.aclose()
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_slots_assigned"]) == 16_384
        assert int(info["cluster_known_nodes"]) == 3
        covered = sum(int(end) - int(start) + 1 for start, end, *_ in slots)
        assert covered == 16_384


async def test_spublish_reaches_a_ssubscriber_on_the_owning_node(settings: Settings) -> None:
    cluster = RedisCluster(startup_nodes=_nodes(settings))
    await cluster.initialize()
    try:
        for channel in ("geo:test:user:1", "geo:test:user:2", "geo:test:user:3"):
            owner = cluster.get_node_from_key(channel)
            subscriber = aioredis.Redis(host=owner.host, port=owner.port)
            pubsub = subscriber.pubsub()
            try:
                await pubsub.execute_command("SSUBSCRIBE", channel)
                confirm = await pubsub.parse_response(block=True, timeout=5)
                assert confirm[0] in (b"ssubscribe", "ssubscribe")
                receivers = await cluster.execute_command("SPUBLISH", channel, f"hello {channel}")
                assert receivers == 1
                message = await asyncio.wait_for(pubsub.parse_response(block=True, timeout=5), 5)
                assert message == [b"smessage", channel.encode(), f"hello {channel}".encode()]
            finally:
                await pubsub.aclose()
                await subscriber.aclose()
    finally:
        await cluster.aclose()
