"""Who is connected to this process, which channels that takes, and where each message goes.

The :class:`~friends_ws.broker.Broker` hands every pub/sub message on with its channel's
routing key, an int chosen when the channel was subscribed:

======================  =====================  ==========================================
key                     channel                messages go to
======================  =====================  ==========================================
a user id (> 0)         a friend's location    the :class:`~friends_ws.fanout.Fanout`,
                                               which offers them to each follower
``~user_id`` (< 0)      a connected user's     each connection of that user here
                        control channel        (:class:`~friends_ws.follower.Owner`)
``0``                   the erasures channel   the ``on_erasure`` callback (the history)
======================  =====================  ==========================================

:class:`Subscriptions` owns the last two rows and the routing itself: a connection is
*attached* when it opens (its user's control channel is subscribed, once however many of the
user's connections are here) and *detached* when it closes (the channel is unsubscribed with
the last of them, and the friends it followed are dropped from the fan-out).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from friends_ws.broker import Broker
from friends_ws.clock import now_ms
from friends_ws.fanout import Fanout
from friends_ws.follower import Owner
from friends_ws.metrics import LAG_SAMPLE_MASK, Stats, sample_delivery_lag
from geo_common.presence import PresenceFormatError, control_channel, erasures_channel
from geo_common.control_messages import decode_control, decode_erasure
from geo_common.regions import RegionMap

log = logging.getLogger(__name__)

#: How long start-up waits for the erasures channel to be confirmed, seconds (it is kept
#: and subscribed once Redis answers in any case).
ERASURES_WAIT_S = 5.0
#: The routing key of the erasures channel (location channels have user ids, control
#: channels their bitwise inverse, both never 0).
ERASURES_KEY = 0


class Subscriptions:
    """The connections here, their users' control channels, and the routing of every message.

    Args:
        regions: the region map.
        broker: the pub/sub backends (control channels are routed with ``~user_id``).
        fanout: the friends followed here (location-channel messages go there).
        namespace: ``GEO_REDIS_NAMESPACE``.
        stats: the process's counters.
        spawn: runs a coroutine in the background (the erasures subscription at start-up).
        on_erasure: called with the user id of each erasure heard on the erasures channel
            (None: the channel is not subscribed).
    """

    def __init__(
        self,
        regions: RegionMap,
        *,
        broker: Broker,
        fanout: Fanout,
        namespace: str,
        stats: Stats,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
        on_erasure: Callable[[int], None] | None = None,
    ) -> None:
        self.regions = regions
        self.broker = broker
        self.fanout = fanout
        self.namespace = namespace
        self.stats = stats
        self._spawn = spawn
        self._on_erasure = on_erasure
        self._erasures = erasures_channel(namespace, regions.default.name)
        #: Every connection attached here.
        self.sessions: set[Owner] = set()
        #: Connected users: user id -> their connections here.
        self.owners: dict[int, list[Owner]] = {}
        # The region each connected user's control channel is subscribed in.
        self._owner_region: dict[int, str] = {}

    async def start(self) -> None:
        """Subscribe the erasures channel (waiting a while for Redis to confirm it)."""
        if self._on_erasure is None:
            return
        self.broker.route(self._erasures, ERASURES_KEY)
        erasures = self._spawn(self.broker.subscribe({self.regions.default.name: [self._erasures]}))
        try:
            await asyncio.wait_for(asyncio.shield(erasures), ERASURES_WAIT_S)
        except TimeoutError:
            log.warning("the erasures channel is not confirmed yet; it will be once pub/sub answers")

    # --- connected users ------------------------------------------------------------------------

    async def attach(self, owner: Owner) -> None:
        """Register a connected user's connection and subscribe their control channel.

        Returns once the channel is confirmed by Redis (by this call or an earlier one of the
        same user's), so no control message published afterwards can be missed.
        """
        self.sessions.add(owner)
        user_id = owner.user_id
        owners = self.owners.get(user_id)
        if owners is not None:
            owners.append(owner)
            await self.broker.confirmed([control_channel(self.namespace, self._owner_region[user_id], user_id)])
            return
        region = self.regions.get(owner.home_region).name
        channel = control_channel(self.namespace, region, user_id)
        self.owners[user_id] = [owner]
        self._owner_region[user_id] = region
        self.broker.route(channel, ~user_id)
        await self.broker.subscribe({region: [channel]})

    def detach(self, owner: Owner) -> None:
        """Forget a connection: its control channel and friends, when no other connection needs them."""
        self.sessions.discard(owner)
        self.fanout.unfollow(owner.following, owner.following.friends)
        owners = self.owners.get(owner.user_id)
        if owners is None or owner not in owners:
            return
        owners.remove(owner)
        if not owners:
            del self.owners[owner.user_id]
            region = self._owner_region.pop(owner.user_id)
            self.broker.unsubscribe({region: [control_channel(self.namespace, region, owner.user_id)]})

    async def move_home(self, user_id: int, region_name: str | None) -> None:
        """A connected user's channels moved to another region (None: the default): move their
        control channel there."""
        region = self.regions.get(region_name).name
        old = self._owner_region.get(user_id)
        if old is None or old == region:
            return
        self._owner_region[user_id] = region
        channel = control_channel(self.namespace, region, user_id)
        self.broker.route(channel, ~user_id)
        await self.broker.subscribe({region: [channel]})
        if self._owner_region.get(user_id) != old:  # not moved back meanwhile (an erasure, then a claim)
            self.broker.unsubscribe({old: [control_channel(self.namespace, old, user_id)]})

    # --- what arrives -------------------------------------------------------------------------

    def on_message(self, key: int, data: bytes) -> None:
        """A pub/sub message of the channel routed with ``key`` (the broker's ``on_message``)."""
        stats = self.stats
        stats.pubsub_messages += 1
        if key > 0:
            if not stats.pubsub_messages & LAG_SAMPLE_MASK:  # one in LAG_SAMPLE_EVERY
                sample_delivery_lag(stats, data, now_ms())
            self.fanout.on_message(key, data)
        elif key == ERASURES_KEY:
            self._on_erasure_message(data)
        else:
            self._on_control(~key, data)

    def _on_control(self, user_id: int, data: bytes) -> None:
        try:
            event = decode_control(data)
        except PresenceFormatError as exc:
            log.warning("dropping a malformed control message for user %d: %s", user_id, exc)
            return
        for owner in list(self.owners.get(user_id, ())):
            owner.control(event)

    def _on_erasure_message(self, data: bytes) -> None:
        try:
            user_id = decode_erasure(data)
        except PresenceFormatError as exc:
            log.warning("dropping a malformed erasure message: %s", exc)
            return
        if self._on_erasure is not None:
            self._on_erasure(user_id)
