"""Loopback ports for the servers the tests start, kept out of the kernel's ephemeral range.

A port the kernel hands out for ``bind(0)`` lies in its ephemeral range (32768-60999 on
Linux), where any outgoing connection may take it as its local end at any moment: a server
started on it a little later, or started again on it after a kill, then finds it taken. The
tests' ports come from 16000-22599 instead, whose Redis Cluster bus ports (port + 10000) stay
below that range too, and above the development stack's own (15400 and up). Each pytest
process starts in its own part of the span (by its pid), so two runs side by side rarely meet;
a port something listens on is skipped, and no port is handed out twice in one run.
"""

from __future__ import annotations

import os

from deploy.stack.procs import port_is_free

FIRST, END = 16_000, 22_600
#: Redis Cluster's bus listens on the node's port + 10000.
BUS_OFFSET = 10_000
_PARTS = 11
_given: set[int] = set()
_cursor = FIRST + os.getpid() % _PARTS * ((END - FIRST) // _PARTS)


def free_block(count: int, *, cluster: bool = False) -> int:
    """The first of ``count`` consecutive ports nothing listens on (a stack's port base).

    Args:
        count: how many ports.
        cluster: the bus ports (each + 10000) must be free too, for Redis Cluster nodes.

    Raises:
        RuntimeError: the whole span is in use.
    """
    global _cursor
    for _ in range(END - FIRST):
        start = _cursor if _cursor + count <= END else FIRST
        _cursor = start + 1
        block = range(start, start + count)
        if all(_usable(port, cluster) for port in block):
            _given.update(block)
            _cursor = start + count
            return start
    raise RuntimeError(f"no {count} free consecutive ports in {FIRST}-{END - 1}")


def free_port(*, cluster: bool = False) -> int:
    """A port nothing listens on, never handed out before in this run."""
    return free_block(1, cluster=cluster)


def _usable(port: int, cluster: bool) -> bool:
    if port in _given or not port_is_free(port):
        return False
    return not cluster or port_is_free(port + BUS_OFFSET)
