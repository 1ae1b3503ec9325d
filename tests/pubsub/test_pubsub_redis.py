"""The ``redis`` backend against real Redis: the stack's (namespaced) and throwaway nodes."""

from __future__ import annotations

import asyncio
import os
import signal

import redis.asyncio as aioredis

from tests.pubsub.pubsub_helpers import FAST, Collector, RedisFactory, eventually, url
from geo_common.settings import Settings
from pubsub import RedisPubSub, create_pubsub


async def test_published_messages_reach_the_subscriber(settings: Settings) -> None:
    got = Collector()
    channel = f"{settings.redis_namespace}:t:one"
    async with RedisPubSub(settings.redis_url, on_message=got) as bus:
        await bus.subscribe([channel])
        assert await bus.publish(channel, b"hello") == 1
        await eventually(lambda: got.data() == [b"hello"], "the message")
        assert got.messages[0][0] == channel


async def test_a_thousand_channels_share_one_connection(settings: Settings) -> None:
    got = Collector()
    channels = [f"{settings.redis_namespace}:t:many:{i}" for i in range(1000)]
    async with RedisPubSub(settings.redis_url, on_message=got, batch=256) as bus:
        await bus.subscribe(channels)
        assert bus.channels == frozenset(channels)
        assert bus.subscriber.connections == 1
        await asyncio.gather(*(bus.publish(c, c.encode()) for c in channels[::50]))
        await eventually(lambda: len(got.messages) == 20, "20 messages")
        assert sorted(got.data()) == sorted(c.encode() for c in channels[::50])
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            numsub = dict(await client.pubsub_numsub(*channels[:10]))
        finally:
            await client.aclose()
        assert set(numsub.values()) == {1}


async def test_unsubscribed_channels_stop_delivering(settings: Settings) -> None:
    got = Collector()
    keep, drop = f"{settings.redis_namespace}:t:keep", f"{settings.redis_namespace}:t:drop"
    async with create_pubsub("redis", [settings.redis_url], on_message=got) as bus:
        await bus.subscribe([keep, drop])
        bus.unsubscribe([drop])
        await bus.subscribe([keep])  # a round trip after the UNSUBSCRIBE was written
        assert await bus.publish(drop, b"x") == 0
        await bus.publish(keep, b"y")
        await eventually(lambda: got.data() == [b"y"], "only the kept channel's message")


async def test_a_restarted_redis_gets_its_subscriptions_back(throwaway_redis: RedisFactory) -> None:
    from deploy.stack import redis_nodes
    from deploy.stack.binaries import ensure_binaries

    node = await throwaway_redis()
    got = Collector()
    restored: list[bool] = []
    async with RedisPubSub(url(node), on_message=got, on_restored=lambda: restored.append(True), **FAST) as bus:
        await bus.subscribe(["a", "b"])
        await bus.publish("a", b"before")
        await eventually(lambda: got.data() == [b"before"], "the first message")
        await asyncio.to_thread(redis_nodes.stop, node)
        await asyncio.to_thread(redis_nodes.start, ensure_binaries(), node)
        await eventually(lambda: bus.subscriber.connections == 2, "the reconnection")

        async def delivered() -> None:
            while not got.data("b"):
                await bus.publish("b", b"after")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(delivered(), 5)
        assert bus.subscriber.channels == {"a", "b"}
        assert restored == [True]  # the owner heard that messages may have been missed


async def test_a_silent_redis_is_detected_by_probing(throwaway_redis: RedisFactory) -> None:
    node = await throwaway_redis()
    got = Collector()
    async with RedisPubSub(url(node), on_message=got, **FAST) as bus:
        await bus.subscribe(["quiet"])
        pid = node.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the socket stays open; nothing answers
        try:
            await eventually(
                lambda: not bus.subscriber.connected or bus.subscriber.connections > 1,
                "the probe to give up on the silent node",
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        await eventually(lambda: bus.subscriber.connected, "the reconnection")
        await bus.subscribe(["quiet"])

        async def delivered() -> None:
            while not got.data():
                await bus.publish("quiet", b"back")
                await asyncio.sleep(0.05)

        await asyncio.wait_for(delivered(), 5)
        assert bus.subscriber.connections >= 2
