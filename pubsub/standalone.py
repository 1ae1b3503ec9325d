"""The ``redis`` backend: one Redis node (or a Sentinel-managed primary), ``SUBSCRIBE``/``PUBLISH``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pubsub.address import without_credentials
from pubsub.base import PubSub, unique
from pubsub.client import RedisClient
from pubsub.node import MessageHandler, NodeSubscriber
from pubsub.sentinel import node_for_url
from pubsub.protocol import DEFAULT_BATCH, DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_PROBE_INTERVAL_S, DEFAULT_PROBE_TIMEOUT_S


class RedisPubSub(PubSub):
    """Every channel on one Redis node.

    Args:
        url: the node, ``redis://[user:password@]host:port[/db]``, or ``rediss://...`` for
            TLS (the db does not matter: Redis pub/sub ignores it); or a Sentinel-managed
            primary, ``redis+sentinel://[user:password@]host:port,.../name`` (both
            connections follow a failover, :mod:`pubsub.sentinel`).
        on_message: called with ``(channel, data)`` for each message; must not block.
        on_restored: called when subscriptions are back after a reconnection (messages
            published meanwhile were lost).
        probe_interval_s: probe an idle subscriber connection after this many seconds.
        probe_timeout_s: reconnect when a probe stays unanswered this long.
        connect_timeout_s: give up one connection attempt after this long.
        batch: the most channels in one ``SUBSCRIBE``.
        tls_ca: the CA bundle a ``rediss://`` node's certificate is checked against (empty
            or None: the system's).
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        on_message: MessageHandler,
        on_restored: Callable[[], None] | None = None,
        probe_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
        probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        batch: int = DEFAULT_BATCH,
        tls_ca: str | None = None,
    ) -> None:
        address, locate = node_for_url(url, tls_ca=tls_ca)
        #: The node (its credentials left out).
        self.url = without_credentials(url)
        self._subscriber = NodeSubscriber(
            address,
            on_message=on_message,
            batch=batch,
            on_restored=None if on_restored is None else (lambda _node: on_restored()),
            probe_interval_s=probe_interval_s,
            probe_timeout_s=probe_timeout_s,
            connect_timeout_s=connect_timeout_s,
            locate=locate,
        )
        self._publisher = RedisClient(address, connect_timeout_s=connect_timeout_s, locate=locate)

    @property
    def subscriber(self) -> NodeSubscriber:
        """The one subscriber connection (tests and metrics read it)."""
        return self._subscriber

    async def start(self) -> None:
        # The subscriber connection opens with the first subscription: a process that only
        # publishes (the HTTP API) holds no idle subscriber connection.
        pass

    async def close(self) -> None:
        await self._subscriber.close()
        await self._publisher.close()

    async def publish(self, channel: str, data: bytes) -> int:
        return int(await self._publisher.execute("PUBLISH", channel, data))

    async def subscribe(self, channels: Iterable[str]) -> None:
        self._subscriber.start()
        await self._subscriber.subscribe(unique(channels))

    def unsubscribe(self, channels: Iterable[str]) -> None:
        self._subscriber.unsubscribe(unique(channels))

    @property
    def channels(self) -> frozenset[str]:
        return self._subscriber.channels

    async def ping(self) -> bool:
        try:
            await self._publisher.execute("PING")
        except Exception:  # noqa: BLE001 - a health check: any failure is an unhealthy answer
            return False
        return self._subscriber.connected or not self._subscriber.channels
