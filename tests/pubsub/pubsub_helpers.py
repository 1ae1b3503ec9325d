"""Helpers of the pub/sub tests (imported by the tests and their conftest)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable

from deploy.stack.redis_nodes import RedisNode

#: Multiply every wait by this on a slow machine (the same variable as the root conftest).
TIMEOUT_FACTOR = float(os.environ.get("GEO_TEST_TIMEOUT_FACTOR", "1"))

#: Short probe and timeout settings: failures are detected in well under a second.
FAST = {"probe_interval_s": 0.2, "probe_timeout_s": 0.3, "connect_timeout_s": 1.0}


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` (scaled)."""
    deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Collector:
    """An ``on_message`` callback that records what arrives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, channel: str, data: bytes) -> None:
        self.messages.append((channel, data))

    def data(self, channel: str | None = None) -> list[bytes]:
        return [d for c, d in self.messages if channel is None or c == channel]


RedisFactory = Callable[..., Awaitable[RedisNode]]


def os_resume(node: RedisNode) -> None:
    """SIGCONT a node a test may have paused (stopping a stopped process would hang)."""
    pid = node.pid()
    if pid is not None:
        os.kill(pid, signal.SIGCONT)


def url(node: RedisNode) -> str:
    return f"redis://127.0.0.1:{node.port}/0"
