"""The ``ring`` backend: standalone Redis nodes, channels spread by consistent hashing.

Each channel lives on the node :class:`~pubsub.hashring.HashRing` assigns it; publisher and
subscribers compute the same owner, so no node sees traffic for channels it does not own.
Changing the ring (:meth:`RingPubSub.set_nodes`) moves about 1/N of the channels, and the
live subscriptions of the moved ones are re-homed in three steps, so that processes which
switch at slightly different moments lose nothing:

1. subscribe the moved channels on their new nodes (confirmed), keeping the old ones;
2. after ``handoff_s``, publish on the new ring;
3. after another ``handoff_s``, drop the old subscriptions and close removed nodes.

A publisher on either ring reaches a subscriber that is in step 1 or 2, so every process
of a deployment must start the change within ``handoff_s`` of the others.

A node's place on the ring is its URL without user and password
(:func:`~pubsub.address.without_credentials`): processes that log in differently, or a new
password, place every channel where it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from pubsub.address import NodeAddress, without_credentials
from pubsub.client import RedisClient
from pubsub.hashring import DEFAULT_VNODES, HashRing
from pubsub.multinode import MultiNodePubSub
from pubsub.node import MessageHandler, NodeSubscriber
from pubsub.protocol import DEFAULT_BATCH, DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_PROBE_INTERVAL_S, DEFAULT_PROBE_TIMEOUT_S

log = logging.getLogger(__name__)


class RingPubSub(MultiNodePubSub):
    """Channels spread over standalone Redis nodes by consistent hashing.

    Args:
        urls: the nodes, ``redis://[user:password@]host:port`` (or ``rediss://...``) each.
        on_message: called with ``(channel, data)`` for each message; must not block.
        on_restored: called when a node's subscriptions are back after a reconnection
            (messages published meanwhile were lost).
        vnodes: points per node on the ring.
        handoff_s: the length of each re-homing step (see the module docstring).
        probe_interval_s: probe an idle subscriber connection after this many seconds.
        probe_timeout_s: reconnect when a probe stays unanswered this long.
        connect_timeout_s: give up one connection attempt after this long.
        batch: the most channels in one ``SUBSCRIBE``.
        tls_ca: the CA bundle ``rediss://`` nodes' certificates are checked against (empty
            or None: the system's).

    Raises:
        ValueError: no nodes, or a node repeated.
    """

    backend = "ring"

    def __init__(
        self,
        urls: Sequence[str],
        *,
        on_message: MessageHandler,
        on_restored: Callable[[], None] | None = None,
        # Placement.
        vnodes: int = DEFAULT_VNODES,
        handoff_s: float = 2.0,
        # Liveness.
        probe_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
        probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        batch: int = DEFAULT_BATCH,
        tls_ca: str | None = None,
    ) -> None:
        super().__init__(
            on_message=on_message,
            on_restored=on_restored,
            probe_interval_s=probe_interval_s,
            probe_timeout_s=probe_timeout_s,
            connect_timeout_s=connect_timeout_s,
            batch=batch,
        )
        self._handoff_s = handoff_s
        self._tls_ca = tls_ca
        # The ring, the subscribers and the publishers know each node by its URL without
        # credentials; callers by the URL they gave.
        self._urls: dict[str, str] = {}
        self._ring = HashRing(self._placed(urls), vnodes=vnodes)
        self._publishers: dict[str, RedisClient] = {}
        self._membership = asyncio.Lock()
        for node in self._ring.nodes:
            self._add(node)

    # --- nodes ----------------------------------------------------------------------------

    def _placed(self, urls: Sequence[str]) -> list[str]:
        """The ring's names of ``urls``, remembering the URL each stands for."""
        nodes = [without_credentials(url) for url in urls]
        self._urls.update(zip(nodes, urls))
        return nodes

    def _add(self, node: str) -> None:
        address = NodeAddress.parse(self._urls[node], tls_ca=self._tls_ca)
        if node in self._subscribers:
            # Known already: new credentials are used from the next connection on.
            self._subscribers[node].address = address
            self._publishers[node].address = address
            return
        self._subscribers[node] = NodeSubscriber(
            address, on_message=self._on_message, on_restored=self._restored, **self._node_options
        )
        self._publishers[node] = RedisClient(address, connect_timeout_s=self._node_options["connect_timeout_s"])

    async def _drop(self, node: str) -> None:
        subscriber = self._subscribers.pop(node, None)
        publisher = self._publishers.pop(node, None)
        self._urls.pop(node, None)
        if subscriber is not None:
            await subscriber.close()
        if publisher is not None:
            await publisher.close()

    @property
    def nodes(self) -> tuple[str, ...]:
        """The nodes of the ring publishers use now (their URLs as given)."""
        return tuple(self._urls[node] for node in self._ring.nodes)

    def subscriber(self, url: str) -> NodeSubscriber:
        """The subscriber connection to one node (tests and metrics read it)."""
        return self._subscribers[without_credentials(url)]

    def node_for(self, channel: str) -> str:
        """The node a channel is published on now (its URL as given)."""
        return self._urls[self._ring.node_for(channel)]

    async def set_nodes(self, urls: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Change the ring's nodes, re-homing live subscriptions without losing messages.

        Returns after the three steps of the module docstring (about ``2 * handoff_s``).

        Args:
            urls: the new set of nodes.

        Returns:
            The subscribed channels that moved: channel -> (old node, new node).

        Raises:
            ValueError: no nodes, or a node repeated.
            NodeUnavailable: the ring is closed.
        """
        async with self._membership:
            self._check_open()
            new_ring = self._ring.with_nodes(self._placed(urls))
            for node in new_ring.nodes:
                self._add(node)
            # Step 1: subscribe on the new homes while the old ones keep receiving.
            moved = self._ring.moved(new_ring, self._wanted)
            await self._subscribe_grouped(moved, new_ring)
            await asyncio.sleep(self._handoff_s)
            # Step 2: publish (and place new subscriptions) by the new ring. Channels that
            # were subscribed during step 1 went by the old ring: give them their new home.
            old_ring, self._ring = self._ring, new_ring
            late = old_ring.moved(new_ring, self._wanted.difference(moved))
            await self._subscribe_grouped(late, new_ring)
            moved.update(late)
            await asyncio.sleep(self._handoff_s)
            # Step 3: drop what is subscribed off its home, and the nodes that left.
            for node, subscriber in list(self._subscribers.items()):
                stale = [c for c in subscriber.channels if new_ring.node_for(c) != node]
                if stale:
                    subscriber.unsubscribe(stale)
            homes = {channel: (self._urls[old], self._urls[new]) for channel, (old, new) in moved.items()}
            for node in [n for n in self._subscribers if n not in new_ring.nodes]:
                await self._drop(node)
            log.info("pubsub ring: %d node(s), %d subscribed channel(s) re-homed", len(new_ring.nodes), len(moved))
            return homes

    async def _subscribe_grouped(self, channels: Iterable[str], ring: HashRing) -> None:
        groups: dict[str, list[str]] = defaultdict(list)
        for channel in channels:
            if channel in self._wanted:
                groups[ring.node_for(channel)].append(channel)
        for node in groups:
            self._subscribers[node].start()
        await asyncio.gather(*(self._subscribers[node].subscribe(chs) for node, chs in groups.items()))

    # --- the interface --------------------------------------------------------------------

    async def start(self) -> None:
        # Subscriber connections open with their first subscription (see RedisPubSub.start).
        pass

    async def close(self) -> None:
        self._closed = True
        for node in list(self._subscribers):
            await self._drop(node)

    async def publish(self, channel: str, data: bytes) -> int:
        self._check_open()
        return int(await self._publishers[self._ring.node_for(channel)].execute("PUBLISH", channel, data))

    async def _place(self, channels: Iterable[str]) -> None:
        self._check_open()
        await self._subscribe_grouped(channels, self._ring)

    async def ping(self) -> bool:
        if self._closed:
            return False
        try:
            await asyncio.gather(*(self._publishers[node].execute("PING") for node in self._ring.nodes))
        except Exception:  # noqa: BLE001 - a health check: any failure is an unhealthy answer
            return False
        return self._subscribers_up()
