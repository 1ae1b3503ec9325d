"""Publishing a connected user's news: on their location channel and on their control channel.

Followers anywhere hear a user's location channel (locations, ``left``, ``moved``); the
user's own connections on every instance hear the control channel (a sharing change, a new
home region). Both live in the user's home region; publishing goes through that region's
circuit breaker in the :class:`~friends_ws.broker.Broker`.
"""

from __future__ import annotations

from friends_ws.broker import Broker
from geo_common.presence import control_channel, location_channel
from geo_common.control_messages import Control, encode_control
from geo_common.regions import RegionMap


class Publisher:
    """Publishes on users' channels, each in its region.

    Args:
        regions: the region map.
        broker: the pub/sub backends and their breakers.
        namespace: ``GEO_REDIS_NAMESPACE``.
    """

    __slots__ = ("regions", "broker", "namespace")

    def __init__(self, regions: RegionMap, *, broker: Broker, namespace: str) -> None:
        self.regions = regions
        self.broker = broker
        self.namespace = namespace

    async def publish_location(self, region: str | None, user_id: int, data: bytes) -> None:
        """Publish on a user's location channel in ``region`` (None: the default).

        Raises:
            geo_common.breaker.CircuitOpen: the region's breaker is open.
            pubsub.PubSubError, OSError: the node could not answer.
        """
        name = self.regions.get(region).name
        await self.broker.publish(name, location_channel(self.namespace, name, user_id), data)

    async def publish_control(self, region: str | None, user_id: int, event: Control) -> None:
        """Publish on a user's control channel in ``region`` (None: the default).

        Raises:
            geo_common.breaker.CircuitOpen: the region's breaker is open.
            pubsub.PubSubError, OSError: the node could not answer.
        """
        name = self.regions.get(region).name
        await self.broker.publish(name, control_channel(self.namespace, name, user_id), encode_control(event))
