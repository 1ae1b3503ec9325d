"""Pub/sub over Redis: one node, a hash ring of nodes, or Redis Cluster sharded pub/sub.

One interface (:class:`PubSub`), three backends chosen by name::

    bus = create_pubsub("ring", ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"], on_message=handle)
    await bus.start()
    await bus.subscribe(["geo:eu:loc:{42}", "geo:eu:loc:{43}"])
    await bus.publish("geo:eu:loc:{42}", b"...")

Each process holds one subscriber connection per Redis node, multiplexing every channel;
messages arrive through the synchronous ``on_message(channel, data)`` callback.

Nodes are named by URL, ``redis://[user:password@]host:port`` (``AUTH`` on every connection
and reconnection) or ``rediss://...`` (TLS, the server's certificate checked against the
``tls_ca`` option's CA bundle or the system's); a refused login raises
:class:`AuthenticationFailed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pubsub.address import NodeAddress
from pubsub.base import PubSub
from pubsub.cluster import ClusterPubSub
from pubsub.errors import AuthenticationFailed, InvalidChannel, NodeUnavailable, PubSubError, SubscribeError
from pubsub.hashring import HashRing
from pubsub.node import MessageHandler, NodeSubscriber
from pubsub.redis_py import open_redis
from pubsub.ring import RingPubSub
from pubsub.standalone import RedisPubSub

__all__ = [
    "BACKENDS",
    "AuthenticationFailed",
    "ClusterPubSub",
    "HashRing",
    "InvalidChannel",
    "MessageHandler",
    "NodeAddress",
    "NodeSubscriber",
    "NodeUnavailable",
    "PubSub",
    "PubSubError",
    "RedisPubSub",
    "RingPubSub",
    "SubscribeError",
    "create_pubsub",
    "open_redis",
]

#: The backend names ``GEO_PUBSUB_BACKEND`` accepts.
BACKENDS = ("redis", "ring", "cluster")


def create_pubsub(backend: str, nodes: Sequence[str], *, on_message: MessageHandler, **options: Any) -> PubSub:
    """Build a backend by name (not started; call :meth:`PubSub.start`).

    Args:
        backend: ``redis`` (one node), ``ring`` (consistent hashing over standalone nodes)
            or ``cluster`` (Redis Cluster sharded pub/sub).
        nodes: ``redis`` takes one URL; ``ring`` one URL per node; ``cluster`` seed
            ``[user:password@]host:port`` items (or URLs).
        on_message: called with ``(channel, data)`` for each message; must not block.
        **options: keyword options of the backend (``probe_interval_s``, ``handoff_s``,
            ``tls_ca``, ...).

    Returns:
        The backend.

    Raises:
        ValueError: an unknown backend, or nodes that do not fit it.
    """
    if backend == "redis":
        if len(nodes) != 1:
            raise ValueError(f"the redis backend takes exactly one node, got {len(nodes)}")
        return RedisPubSub(nodes[0], on_message=on_message, **options)
    if backend == "ring":
        return RingPubSub(nodes, on_message=on_message, **options)
    if backend == "cluster":
        return ClusterPubSub(nodes, on_message=on_message, **options)
    raise ValueError(f"unknown pub/sub backend {backend!r}; expected one of {', '.join(BACKENDS)}")
