"""What the backends over several Redis nodes (``ring``, ``cluster``) share: the set of wanted
channels and one multiplexed subscriber connection per node."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from typing import Any

from pubsub.base import PubSub, unique
from pubsub.errors import NodeUnavailable
from pubsub.node import MessageHandler, NodeSubscriber


class MultiNodePubSub(PubSub):
    """A :class:`PubSub` whose subscriptions are spread over per-node subscribers.

    Subclasses fill ``_subscribers`` (node name -> subscriber) and place channels on their
    nodes (``_place``); ``_wanted`` holds every channel asked for, wherever it lives now.
    """

    def __init__(
        self,
        *,
        on_message: MessageHandler,
        on_restored: Callable[[], None] | None,
        probe_interval_s: float,
        probe_timeout_s: float,
        connect_timeout_s: float,
        batch: int,
    ) -> None:
        self._on_message = on_message
        self._on_restored = on_restored
        #: Options of every :class:`NodeSubscriber` the backend opens.
        self._node_options: dict[str, Any] = {
            "probe_interval_s": probe_interval_s,
            "probe_timeout_s": probe_timeout_s,
            "connect_timeout_s": connect_timeout_s,
            "batch": batch,
        }
        self._subscribers: dict[str, NodeSubscriber] = {}
        self._wanted: set[str] = set()
        self._closed = False

    def _check_open(self) -> None:
        """Refuse work once closed: a call racing a shutdown must not open a node again.

        Raises:
            NodeUnavailable: the backend is closed.
        """
        if self._closed:
            raise NodeUnavailable(f"the {self.backend} pub/sub is closed")

    async def subscribe(self, channels: Iterable[str]) -> None:
        self._check_open()
        fresh = unique(channels)
        self._wanted.update(fresh)
        await self._place(fresh)

    @abc.abstractmethod
    async def _place(self, channels: Iterable[str]) -> None:
        """Subscribe those of ``channels`` still wanted on the nodes they live on now."""

    def _restored(self, _node: NodeSubscriber) -> None:
        if self._on_restored is not None:
            self._on_restored()

    def unsubscribe(self, channels: Iterable[str]) -> None:
        gone = [c for c in unique(channels) if c in self._wanted]
        self._wanted.difference_update(gone)
        for subscriber in self._subscribers.values():
            mine = [c for c in gone if subscriber.has(c)]
            if mine:
                subscriber.unsubscribe(mine)

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(self._wanted)

    def _subscribers_up(self) -> bool:
        """Every subscriber that holds channels is connected."""
        return all(s.connected or not s.channels for s in self._subscribers.values())
