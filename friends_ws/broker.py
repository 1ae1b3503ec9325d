"""The process's pub/sub backends, one per region: subscribing with confirmation, publishing
under a circuit breaker.

This is the "node" half of the hub (in centrifuge's terms): it knows regions, backends and
channels, not users or sessions. Each subscribed channel has a routing key (an int its
subscriber chooses, see :mod:`friends_ws.subscriptions`); a message is handed on with its
channel's key, and a late message for a channel just unsubscribed is dropped here. A
channel several callers subscribe at once is subscribed once; later callers wait for the
same confirmation, so no caller returns before Redis confirmed the channel and an update
published afterwards cannot be missed.

Publishing goes through one circuit breaker per region's pub/sub (:mod:`geo_common.breaker`):
while it is open, publishing fails at once with :class:`~geo_common.breaker.CircuitOpen`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from geo_common.breaker import Breaker
from geo_common.regions import RegionMap
from pubsub import PubSub, RingPubSub, create_pubsub

#: Publishing errors that mean the node could not answer (pubsub's own are ConnectionErrors;
#: the cluster backend raises redis-py's, which are not).
_PUBLISH_FAILURES: tuple[type[BaseException], ...] = (OSError, RedisConnectionError, RedisTimeoutError)


def _nobody(key: int, data: bytes) -> None:
    """Where messages go before :meth:`Broker.start`: no backend delivers any yet."""


class Broker:
    """One pub/sub backend per region, and its publishing breaker.

    Messages go nowhere until :meth:`start` names who hears them.

    Args:
        regions: the region map (each region's backend and nodes).
        bus_options: keyword options for every backend (probing, ring handoff, ...).
        breaker_failures: consecutive publishing failures that open a region's breaker.
        breaker_reset_s: how long an open breaker refuses publishing before a probe, seconds.
    """

    def __init__(
        self,
        regions: RegionMap,
        *,
        bus_options: Mapping[str, Any] | None = None,
        breaker_failures: int = 5,
        breaker_reset_s: float = 2.0,
    ) -> None:
        self.regions = regions
        self._on_message: Callable[[int, bytes], None] = _nobody
        self._bus_options = dict(bus_options or {})
        self.buses: dict[str, PubSub] = {}
        #: Publishing breaker of each region.
        self.breakers: dict[str, Breaker] = {
            r.name: Breaker(
                "pubsub" if r.name == regions.default.name else f"pubsub-{r.name}",
                failures=breaker_failures,
                reset_s=breaker_reset_s,
            )
            for r in regions.regions
        }
        # Subscriptions still being confirmed, so a second caller waits for the first.
        self._confirming: dict[str, asyncio.Future[None]] = {}
        # channel -> routing key: one int per channel rather than a (kind, id) tuple.
        self._routes: dict[str, int] = {}
        # channel -> handler, for channels no user id names (the cells of discovery).
        self._handlers: dict[str, Callable[[bytes], None]] = {}

    async def start(self, *, on_message: Callable[[int, bytes], None], on_restored: Callable[[str], None]) -> None:
        """Create and start one backend per region.

        Args:
            on_message: called with ``(key, data)`` for every message of a routed channel.
            on_restored: called with a region's name once its subscriptions are back after a
                reconnection (messages published meanwhile were lost).
        """
        self._on_message = on_message
        for region in self.regions.regions:
            options = dict(self._bus_options)
            if region.pubsub_backend != "ring":
                options.pop("handoff_s", None)
            bus = create_pubsub(
                region.pubsub_backend,
                region.pubsub_nodes,
                on_message=self._dispatch,
                on_restored=functools.partial(on_restored, region.name),
                **options,
            )
            await bus.start()
            self.buses[region.name] = bus

    async def close(self) -> None:
        for bus in self.buses.values():
            await bus.close()

    def bus(self, region: str | None) -> PubSub:
        """The backend of a region (None: the default region)."""
        return self.buses[self.regions.get(region).name]

    async def set_ring(self, region: str, nodes: Iterable[str]) -> int:
        """Change the nodes of a region whose pub/sub backend is a ring (re-homing live channels).

        Returns:
            How many subscribed channels moved.

        Raises:
            ValueError: the region does not use the ring backend.
        """
        bus = self.bus(region)
        if not isinstance(bus, RingPubSub):
            raise ValueError(f"region {region!r} does not use the ring pub/sub backend")
        return len(await bus.set_nodes(list(nodes)))

    def _dispatch(self, channel: str, data: bytes) -> None:
        key = self._routes.get(channel)
        if key is not None:
            self._on_message(key, data)
            return
        handler = self._handlers.get(channel)
        if handler is not None:
            handler(data)

    def route(self, channel: str, key: int) -> None:
        """Hand messages of ``channel`` on with ``key`` (set before subscribing it)."""
        self._routes[channel] = key

    def route_to(self, channel: str, handler: Callable[[bytes], None]) -> None:
        """Hand messages of ``channel`` to ``handler`` (set before subscribing it): for channels
        that are not a user's, which :meth:`route` keys."""
        self._handlers[channel] = handler

    async def subscribe(self, by_region: Mapping[str, list[str]]) -> None:
        """Subscribe channels (grouped by region), letting later callers wait for the same ones.

        Raises:
            pubsub.PubSubError: Redis refused, or the backend was closed.
        """
        if not by_region:
            return
        future = asyncio.get_running_loop().create_future()
        channels = [c for chs in by_region.values() for c in chs]
        for channel in channels:
            self._confirming[channel] = future
        try:
            await asyncio.gather(*(self.buses[r].subscribe(chs) for r, chs in by_region.items()))
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # the callers that wait re-raise it; nobody else must log it
            raise
        else:
            future.set_result(None)
        finally:
            for channel in channels:
                if self._confirming.get(channel) is future:
                    del self._confirming[channel]

    async def confirmed(self, channels: Iterable[str]) -> None:
        """Wait until channels another caller is subscribing are confirmed (at once if none is)."""
        pending = {id(f): f for c in channels if (f := self._confirming.get(c)) is not None}
        if pending:
            await asyncio.gather(*(asyncio.shield(f) for f in pending.values()))

    def unsubscribe(self, by_region: Mapping[str, list[str]]) -> None:
        """Unsubscribe channels (grouped by region) and drop their routes; confirmation is not
        awaited, and messages still arriving for them are dropped."""
        for region, channels in by_region.items():
            for channel in channels:
                self._routes.pop(channel, None)
                self._handlers.pop(channel, None)
            if channels:
                self.buses[region].unsubscribe(channels)

    async def publish(self, region: str, channel: str, data: bytes) -> int:
        """Publish on a region's backend under its breaker; returns how many processes heard it.

        Raises:
            geo_common.breaker.CircuitOpen: the region's breaker is open.
            pubsub.PubSubError, OSError: the node could not answer.
        """
        name = self.regions.get(region).name
        with self.breakers[name].guard(_PUBLISH_FAILURES):
            return await self.buses[name].publish(channel, data)
