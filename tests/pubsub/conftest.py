"""Fixtures of the pub/sub tests: throwaway redis-server and etcd processes.

Tests that stop, restart, pause or re-shard Redis (or stop etcd) use their own processes on
free ports (in tmp folders), never the shared stack's, which other test sessions use at the
same time. Tests that only publish and subscribe use the stack's Redis with this
session's namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.stack import etcd, redis_nodes
from deploy.stack.binaries import Binaries, ensure_binaries, ensure_etcd
from deploy.stack.etcd import EtcdMember
from deploy.stack.redis_nodes import RedisNode
from tests.pubsub.pubsub_helpers import RedisFactory, os_resume
from tests.ports import free_port


@pytest.fixture(scope="session")
def redis_bins() -> Binaries:
    return ensure_binaries()


@pytest.fixture
async def throwaway_redis(redis_bins: Binaries, tmp_path: Path) -> AsyncIterator[RedisFactory]:
    """Start redis-server processes on free ports; all are stopped at the end of the test."""
    started: list[RedisNode] = []

    async def start(*, cluster: bool = False) -> RedisNode:
        port = free_port(cluster=cluster)
        node = RedisNode(f"test-{port}", tmp_path / str(port), port, cluster=cluster)
        await asyncio.to_thread(redis_nodes.start, redis_bins, node)
        started.append(node)
        return node

    yield start
    for node in started:
        os_resume(node)
        await asyncio.to_thread(redis_nodes.stop, node)


@pytest.fixture
async def throwaway_etcd(tmp_path: Path) -> AsyncIterator[EtcdMember]:
    """An etcd member of this test's own on free ports (tests stop and restart it); stopped after."""
    member = EtcdMember(tmp_path / "etcd", free_port(), free_port())
    await asyncio.to_thread(etcd.start, ensure_etcd(), member)
    yield member
    await asyncio.to_thread(etcd.stop, member)
