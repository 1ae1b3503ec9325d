"""The ``cluster`` backend: the stack's 3-node cluster, and a throwaway one for slot moves."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from deploy.stack import redis_nodes
from deploy.stack.binaries import Binaries
from geo_common.settings import Settings
from pubsub import ClusterPubSub, NodeUnavailable
from tests.pubsub.pubsub_helpers import FAST, Collector, RedisFactory, eventually


async def test_shard_channels_live_on_their_slot_owner_and_deliver(settings: Settings) -> None:
    got = Collector()
    channels = [f"{settings.redis_namespace}:c:loc:{{{i}}}" for i in range(400)]
    async with ClusterPubSub(settings.redis_cluster, on_message=got) as bus:
        await bus.subscribe(channels)
        owners = {bus.node_for(c) for c in channels}
        assert len(owners) == 3
        for name in owners:
            host, port = name.rsplit(":", 1)
            client = aioredis.Redis(host=host, port=int(port))
            try:
                on_node = {
                    c.decode()
                    for c in await client.execute_command(
                        "PUBSUB", "SHARDCHANNELS", f"{settings.redis_namespace}:c:loc:*"
                    )
                }
            finally:
                await client.aclose()
            assert on_node == {c for c in channels if bus.node_for(c) == name}
            assert bus.subscriber(name).connections == 1  # one connection per node for all
        counts = await asyncio.gather(*(bus.publish(c, c.encode()) for c in channels))
        assert set(counts) == {1}
        await eventually(lambda: len(got.messages) == len(channels), "every shard message")
        bus.unsubscribe(channels[:200])
        assert await bus.publish(channels[0], b"gone") == 0
        assert bus.channels == frozenset(channels[200:])


async def _node_id(port: int) -> str:
    client = aioredis.Redis(port=port)
    try:
        node_id: bytes = await client.execute_command("CLUSTER", "MYID")
        return node_id.decode()
    finally:
        await client.aclose()


async def test_a_moved_slot_is_followed(throwaway_redis: RedisFactory, redis_bins: Binaries) -> None:
    nodes = [await throwaway_redis(cluster=True) for _ in range(3)]
    await asyncio.to_thread(redis_nodes.up_cluster, redis_bins, nodes)
    got = Collector()
    channel = "moving:{user-7}"
    slot = key_slot(channel.encode())
    async with ClusterPubSub([f"127.0.0.1:{nodes[0].port}"], on_message=got, refresh_min_s=0.05, **FAST) as bus:
        await bus.subscribe([channel, "steady:{user-8}"])
        source = bus.node_for(channel)
        target = next(n for n in nodes if f"127.0.0.1:{n.port}" != source)
        target_id = await _node_id(target.port)
        # Hand the (empty) slot to another node: target first, then everyone else.
        for node in [target, *[n for n in nodes if n is not target]]:
            client = aioredis.Redis(port=node.port)
            try:
                await client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            finally:
                await client.aclose()
        await eventually(
            lambda: bus.subscriber(f"127.0.0.1:{target.port}").has(channel),
            "the channel to be re-subscribed on the slot's new owner",
        )

        async def delivered() -> None:
            while not got.data(channel):
                await bus.publish(channel, b"after the move")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(delivered(), 5)
        assert not bus.subscriber(source).has(channel)
        assert bus.refreshes >= 1


async def test_a_closed_bus_neither_publishes_nor_opens_connections_again(settings: Settings) -> None:
    """redis-py's cluster client connects again when used after ``aclose``, and then stays
    open: a publish or a health check that races a shutdown must not reopen it."""
    got = Collector()
    bus = ClusterPubSub(settings.redis_cluster, on_message=got)
    async with bus:
        assert await bus.publish(f"{settings.redis_namespace}:c:loc:{{1}}", b"x") == 0
        assert await bus.ping()
    with pytest.raises(NodeUnavailable, match="closed"):
        await bus.publish(f"{settings.redis_namespace}:c:loc:{{1}}", b"late")
    with pytest.raises(NodeUnavailable, match="closed"):
        await bus.subscribe([f"{settings.redis_namespace}:c:loc:{{1}}"])
    assert not await bus.ping()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del bus
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]


async def test_calls_in_flight_when_the_bus_closes_leave_nothing_open(settings: Settings) -> None:
    """redis-py retries a command whose connection ``aclose`` cut, connecting again: a
    publish or a health check still running when the bus closes must not keep that open."""
    channel = f"{settings.redis_namespace}:c:loc:{{2}}"
    bus = ClusterPubSub(settings.redis_cluster, on_message=Collector())
    await bus.start()
    calls = [asyncio.ensure_future(bus.publish(channel, b"x")) for _ in range(20)]
    calls += [asyncio.ensure_future(bus.ping()) for _ in range(5)]
    await asyncio.sleep(0)  # every call is on its way to Redis
    await bus.close()
    await asyncio.gather(*calls, return_exceptions=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del bus
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
