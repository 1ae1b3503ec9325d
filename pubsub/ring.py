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
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from pubsub.address import NodeAddress
from pubsub.base import unique
from pubsub.client import RedisClient
from pubsub.hashring import DEFAULT_VNODES, HashRing
from pubsub.multinode import MultiNodePubSub
from pubsub.node import MessageHandler, NodeSubscriber

log = logging.getLogger(__name__)


class RingPubSub(MultiNodePubSub):
    """Channels spread over standalone Redis nodes by consistent hashing.

    Args:
        urls: the nodes, ``redis://host:port`` each.
        on_message: called with ``(channel, data)`` for each message; must not block.
        on_restored: called when a node's subscriptions are back after a reconnection
            (messages published meanwhile were lost).
        vnodes: points per node on the ring.
        handoff_s: the length of each re-homing step (see the module docstring).
        probe_interval_s: probe an idle subscriber connection after this many seconds.
        probe_timeout_s: reconnect when a probe stays unanswered this long.
        connect_timeout_s: give up one connection attempt after this long.
        batch: the most channels in one ``SUBSCRIBE``.

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
        probe_interval_s: float = 5.0,
        probe_timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        batch: int = 512,
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
        self._ring = HashRing(urls, vnodes=vnodes)
        self._publishers: dict[str, RedisClient] = {}
        self._membership = asyncio.Lock()
        for url in self._ring.nodes:
            self._add(url)

    # --- nodes ----------------------------------------------------------------------------

    def _add(self, url: str) -> None:
        if url in self._subscribers:
            return
        self._subscribers[url] = NodeSubscriber(
            NodeAddress.parse(url),
            on_message=self._on_message,
            on_restored=self._restored,
            **self._node_options,
        )
        self._publishers[url] = RedisClient.from_url(url, connect_timeout_s=self._node_options["connect_timeout_s"])

    async def _drop(self, url: str) -> None:
        subscriber = self._subscribers.pop(url, None)
        publisher = self._publishers.pop(url, None)
        if subscriber is not None:
            await subscriber.close()
        if publisher is not None:
            await publisher.close()

    def _restored(self, _node: NodeSubscriber) -> None:
        if self._on_restored is not None:
            self._on_restored()

    @property
    def nodes(self) -> tuple[str, ...]:
        """The nodes of the ring publishers use now."""
        return self._ring.nodes

    def subscriber(self, url: str) -> NodeSubscriber:
        """The subscriber connection to one node (tests and metrics read it)."""
        return self._subscribers[url]

    def node_for(self, channel: str) -> str:
        """The node a channel is published on now."""
        return self._ring.node_for(channel)

    async def set_nodes(self, urls: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Change the ring's nodes, re-homing live subscriptions without losing messages.

        Returns after the three steps of the module docstring (about ``2 * handoff_s``).

        Args:
            urls: the new set of nodes.

        Returns:
            The subscribed channels that moved: channel -> (old node, new node).

        Raises:
            ValueError: no nodes, or a node repeated.
        """
        async with self._membership:
            new_ring = self._ring.with_nodes(urls)
            for url in new_ring.nodes:
                self._add(url)
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
            for url, subscriber in list(self._subscribers.items()):
                stale = [c for c in subscriber.channels if new_ring.node_for(c) != url]
                if stale:
                    subscriber.unsubscribe(stale)
            for url in [u for u in self._subscribers if u not in new_ring.nodes]:
                await self._drop(url)
            log.info("pubsub ring: %d node(s), %d subscribed channel(s) re-homed", len(new_ring.nodes), len(moved))
            return moved

    async def _subscribe_grouped(self, channels: Iterable[str], ring: HashRing) -> None:
        groups: dict[str, list[str]] = defaultdict(list)
        for channel in channels:
            if channel in self._wanted:
                groups[ring.node_for(channel)].append(channel)
        for url in groups:
            self._subscribers[url].start()
        await asyncio.gather(*(self._subscribers[url].subscribe(chs) for url, chs in groups.items()))

    # --- the interface --------------------------------------------------------------------

    async def start(self) -> None:
        # Subscriber connections open with their first subscription (see RedisPubSub.start).
        pass

    async def close(self) -> None:
        for url in list(self._subscribers):
            await self._drop(url)

    async def publish(self, channel: str, data: bytes) -> int:
        return int(await self._publishers[self._ring.node_for(channel)].execute("PUBLISH", channel, data))

    async def subscribe(self, channels: Iterable[str]) -> None:
        fresh = unique(channels)
        self._wanted.update(fresh)
        await self._subscribe_grouped(fresh, self._ring)

    async def ping(self) -> bool:
        try:
            await asyncio.gather(*(self._publishers[url].execute("PING") for url in self._ring.nodes))
        except Exception:  # noqa: BLE001 - a health check: any failure is an unhealthy answer
            return False
        return self._subscribers_up()
