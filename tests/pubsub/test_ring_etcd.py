"""The ring kept in etcd: the watch, etcd going away, the health check and its election.

Real etcd and real Redis nodes, all of this test's own (:mod:`tests.pubsub.conftest`).
"""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from deploy.stack import etcd, redis_nodes
from deploy.stack.binaries import ensure_binaries, ensure_etcd
from deploy.stack.etcd import EtcdMember
from pubsub import RingPubSub
from pubsub.etcd_ring import EtcdRing, etcd_client
from pubsub.ring_doc import MISSES_BEFORE_REMOVAL, RingKeys
from pubsub.ring_health import HealthCheck
from pubsub.ring_watch import RingWatch
from tests.pubsub.pubsub_helpers import FAST, Collector, RedisFactory, eventually, url

CHANNELS = [f"ring:loc:{{{i}}}" for i in range(200)]
KEYS = RingKeys("geo-test", "default")
#: The health check's probe interval and PING timeout in these tests, seconds.
CHECK_S = 0.3


def watch_for(member: EtcdMember, bus: RingPubSub, seed: list[str]) -> RingWatch:
    return RingWatch(
        functools.partial(etcd_client, member.url, timeout_s=1.0),
        KEYS,
        seed=seed,
        current=lambda: bus.nodes,
        apply=bus.set_nodes,
        check_s=0.5,
        retry_max_s=0.5,
        where=member.url,
    )


def health_check(member: EtcdMember, name: str) -> HealthCheck:
    return HealthCheck(
        functools.partial(etcd_client, member.url, timeout_s=1.0),
        KEYS,
        interval_s=CHECK_S,
        timeout_s=CHECK_S,
        ttl_s=2,
        identity=name,
    )


async def every_channel_delivers(bus: RingPubSub, got: Collector) -> None:
    got.messages.clear()
    counts = await asyncio.gather(*(bus.publish(c, c.encode()) for c in CHANNELS))
    assert set(counts) == {1}, "a channel published where nobody listens"
    await eventually(lambda: len(got.messages) == len(CHANNELS), "every channel's message")
    assert sorted(got.data()) == sorted(c.encode() for c in CHANNELS)


async def test_etcd_going_away_keeps_the_ring_and_the_watch_resumes(
    throwaway_redis: RedisFactory, throwaway_etcd: EtcdMember, caplog: pytest.LogCaptureFixture
) -> None:
    nodes = [url(await throwaway_redis()) for _ in range(3)]
    got = Collector()
    async with RingPubSub(nodes[:2], on_message=got, handoff_s=0.05, **FAST) as bus:
        await bus.subscribe(CHANNELS)
        watch = watch_for(throwaway_etcd, bus, nodes[:2])
        watch.start()
        try:
            await eventually(lambda: watch.status.connected and watch.status.version == 1, "the seeded ring")
            caplog.set_level(logging.WARNING, logger="pubsub.ring_watch")
            await asyncio.to_thread(etcd.stop, throwaway_etcd)
            await eventually(lambda: not watch.status.connected, "the watch to notice etcd is gone")
            await every_channel_delivers(bus, got)
            await asyncio.sleep(1.5)  # several retries while etcd is away
            await every_channel_delivers(bus, got)
            await asyncio.to_thread(etcd.start, ensure_etcd(), throwaway_etcd)
            await eventually(lambda: watch.status.connected, "the watch to resume", timeout=15)
            outages = [r for r in caplog.records if "unavailable" in r.getMessage()]
            assert len(outages) == 1, [r.getMessage() for r in caplog.records]  # once per outage
            # The watch is live again: a change now is applied.
            async with etcd_client(throwaway_etcd.url) as client:
                await EtcdRing(client, KEYS).edit(add=nodes[2])
            await eventually(lambda: watch.status.version == 2, "the added node to be applied")
            assert len(bus.nodes) == 3 and watch.status.changes == 1 and watch.status.nodes == 3
            await every_channel_delivers(bus, got)
            assert bus.subscriber(nodes[2]).channels  # some channels live on the new node
        finally:
            await watch.close()


async def test_a_dead_node_leaves_the_ring_within_the_bound_and_comes_back(
    throwaway_redis: RedisFactory, throwaway_etcd: EtcdMember
) -> None:
    redis = [await throwaway_redis() for _ in range(3)]
    nodes = [url(n) for n in redis]
    got = Collector()
    async with RingPubSub(nodes, on_message=got, handoff_s=0.05, **FAST) as bus:
        await bus.subscribe(CHANNELS)
        watch, check = watch_for(throwaway_etcd, bus, nodes), health_check(throwaway_etcd, "solo")
        watch.start()
        await eventually(lambda: watch.status.connected, "the watch")
        check.start()
        try:
            await eventually(lambda: check.status.leading and check.rounds > 0, "the health check to lead")
            await asyncio.to_thread(redis_nodes.stop, redis[2])
            # docs/pubsub.md: out of the live ring within misses x (interval + timeout), then
            # two handoff steps; the wait allows that plus room for a busy machine.
            bound = MISSES_BEFORE_REMOVAL * (CHECK_S + CHECK_S) + 2 * 0.05
            await eventually(lambda: len(bus.nodes) == 2, "the dead node to leave the ring", timeout=bound + 3)
            assert nodes[2] not in bus.nodes
            await every_channel_delivers(bus, got)
            await asyncio.to_thread(redis_nodes.start, ensure_binaries(), redis[2])
            await eventually(lambda: len(bus.nodes) == 3, "the node to come back", timeout=10)
            await every_channel_delivers(bus, got)
            async with etcd_client(throwaway_etcd.url) as client:
                stored = EtcdRing(client, KEYS)
                members, live = await stored.read(KEYS.members), await stored.read(KEYS.live)
            assert members.doc is not None and members.doc.nodes == tuple(nodes)  # membership untouched
            assert live.doc is not None and live.doc.nodes == tuple(nodes) and live.doc.version == 3
        finally:
            await check.close()
            await watch.close()


async def test_one_instance_checks_and_a_dead_leader_is_replaced(
    throwaway_redis: RedisFactory, throwaway_etcd: EtcdMember
) -> None:
    node = url(await throwaway_redis())
    async with etcd_client(throwaway_etcd.url) as client:
        await EtcdRing(client, KEYS).seed([node])
        first, second = health_check(throwaway_etcd, "first"), health_check(throwaway_etcd, "second")
        first.start()
        await eventually(lambda: first.status.leading, "the first candidate to lead")
        second.start()
        try:
            for _ in range(10):  # a few rounds: never two leaders, and only the leader probes
                await asyncio.sleep(CHECK_S / 2)
                assert not (first.status.leading and second.status.leading)
            assert first.rounds > 0 and second.rounds == 0
            assert await EtcdRing(client, KEYS).leader() == "first"
            # The leader dies: no resignation, its lease runs out (2 s) and the other takes over.
            await first.close(resign=False)
            await eventually(lambda: second.status.leading, "the second candidate to take over", timeout=10)
            assert await EtcdRing(client, KEYS).leader() == "second"
            # Its first round starts when it leads and ends after its probes: wait for it.
            await eventually(lambda: second.rounds > 0, "the new leader to probe", timeout=10)
        finally:
            await first.close()
            await second.close()
