"""The ``ring`` backend on two (then three) throwaway Redis nodes."""

from __future__ import annotations

import asyncio

import pytest

from pubsub import NodeUnavailable, RingPubSub
from tests.pubsub.pubsub_helpers import FAST, Collector, RedisFactory, eventually, url

CHANNELS = [f"ring:loc:{{{i}}}" for i in range(300)]


async def test_channels_spread_over_the_nodes_and_deliver(throwaway_redis: RedisFactory) -> None:
    nodes = [url(await throwaway_redis()) for _ in range(2)]
    got = Collector()
    async with RingPubSub(nodes, on_message=got, **FAST) as bus:
        await bus.subscribe(CHANNELS)
        per_node = {n: bus.subscriber(n).channels for n in nodes}
        assert all(len(chs) > 100 for chs in per_node.values())  # about half each
        assert per_node[nodes[0]].isdisjoint(per_node[nodes[1]])
        assert all(c in per_node[bus.node_for(c)] for c in CHANNELS)
        counts = await asyncio.gather(*(bus.publish(c, c.encode()) for c in CHANNELS))
        assert set(counts) == {1}
        await eventually(lambda: len(got.messages) == len(CHANNELS), "every message")
        assert sorted(got.data()) == sorted(c.encode() for c in CHANNELS)


async def test_adding_a_node_rehomes_subscriptions_without_losing_a_message(throwaway_redis: RedisFactory) -> None:
    first = [url(await throwaway_redis()) for _ in range(2)]
    extra = url(await throwaway_redis())
    got = Collector()
    # A publishing process and a subscribing process, switching rings at about the same time.
    async with (
        RingPubSub(first, on_message=lambda c, d: None, handoff_s=0.3, **FAST) as publisher,
        RingPubSub(first, on_message=got, handoff_s=0.3, **FAST) as subscriber,
    ):
        await subscriber.subscribe(CHANNELS)
        sent: list[bytes] = []
        stop = asyncio.Event()

        async def publish_continuously() -> None:
            seq = 0
            while not stop.is_set():
                channel = CHANNELS[seq % len(CHANNELS)]
                data = f"{channel}#{seq}".encode()
                await publisher.publish(channel, data)
                sent.append(data)
                seq += 1
                if seq % 20 == 0:
                    await asyncio.sleep(0.005)

        task = asyncio.create_task(publish_continuously())
        await asyncio.sleep(0.1)
        moved, _ = await asyncio.gather(subscriber.set_nodes([*first, extra]), publisher.set_nodes([*first, extra]))
        await asyncio.sleep(0.1)
        stop.set()
        await task
        await eventually(lambda: len(got.messages) >= len(sent), f"all {len(sent)} messages")
        assert sorted(got.data()) == sorted(sent)  # none lost, none twice
        assert 0.2 < len(moved) / len(CHANNELS) < 0.5
        assert all(subscriber.node_for(c) == extra for c in moved)
        assert subscriber.subscriber(extra).channels == frozenset(moved)
        for node in first:  # the moved channels left their old nodes after the handoff
            assert subscriber.subscriber(node).channels.isdisjoint(moved)


async def test_removing_a_node_moves_its_channels_to_the_others(throwaway_redis: RedisFactory) -> None:
    nodes = [url(await throwaway_redis()) for _ in range(3)]
    got = Collector()
    async with RingPubSub(nodes, on_message=got, handoff_s=0.05, **FAST) as bus:
        await bus.subscribe(CHANNELS)
        leaving = bus.subscriber(nodes[2]).channels
        moved = await bus.set_nodes(nodes[:2])
        assert set(moved) == leaving
        assert bus.nodes == tuple(nodes[:2])
        await asyncio.gather(*(bus.publish(c, b"x") for c in CHANNELS))
        await eventually(lambda: len(got.messages) == len(CHANNELS), "every message after the removal")
        bus.unsubscribe(CHANNELS)
        assert bus.channels == frozenset()


async def test_a_closed_ring_refuses_work_rather_than_failing_on_a_missing_node(throwaway_redis: RedisFactory) -> None:
    nodes = [url(await throwaway_redis()) for _ in range(2)]
    bus = RingPubSub(nodes, on_message=Collector(), **FAST)
    async with bus:
        await bus.subscribe(CHANNELS[:10])
        assert await bus.ping()
    assert not await bus.ping()
    for late in (bus.publish(CHANNELS[0], b"late"), bus.subscribe(CHANNELS[10:20]), bus.set_nodes(nodes[:1])):
        with pytest.raises(NodeUnavailable, match="ring pub/sub is closed"):
            await late
