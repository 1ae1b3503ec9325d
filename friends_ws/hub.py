"""Who is connected to this process, and the routing of pub/sub messages to them.

The hub holds three parts, each a type of its own (as centrifuge's Hub, Node and Client):

* the :class:`~friends_ws.broker.Broker`: one pub/sub backend per region, subscriptions
  confirmed by Redis, publishing under a circuit breaker;
* the :class:`~friends_ws.fanout.Fanout`: the friends followed here, their latest
  locations and expiry, and the dispatch of location-channel messages to followers;
* the connected users themselves (here): one subscription to each one's control channel,
  and the erasures every instance hears.

It also runs the process-wide loops that keep per-connection cost low: the **flush queue**
(:mod:`friends_ws.flushing`) writes queued frames of every connection in one task, the
**expiry sweep** tells followers that a friend's last location is older than the TTL, and
**keepalive** pings silent connections and drops dead ones. After a pub/sub reconnection
it runs :attr:`Hub.on_restored` (the app installs :class:`friends_ws.resync.Resync`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from friends_ws.broker import Broker
from friends_ws.cache import LocationCache
from friends_ws.clock import now_ms
from friends_ws.fanout import Fanout
from friends_ws.flushing import FlushQueue
from friends_ws.follower import Owner
from friends_ws.metrics import Stats
from geo_common.presence import (
    Control,
    PresenceFormatError,
    control_channel,
    decode_control,
    decode_erasure,
    encode_control,
    erasures_channel,
    location_channel,
)
from geo_common.regions import RegionMap

log = logging.getLogger(__name__)

#: How long start-up waits for the erasures channel to be confirmed, seconds (it is kept
#: and subscribed once Redis answers in any case).
_ERASURES_WAIT_S = 5.0
#: The routing key of the erasures channel (location channels have user ids, control
#: channels their bitwise inverse, both never 0).
_ERASURES_KEY = 0


class Hub:
    """Connections, subscriptions, dispatch, flushing and expiry for one process.

    Args:
        regions: the region map.
        cache: the location cache (friends' latest locations when they are first followed).
        namespace: ``GEO_REDIS_NAMESPACE``.
        ttl_s: the location TTL, seconds.
        ping_interval_s: a connection silent this long is pinged, and closed when it stays
            silent for half as long again (``None``: never).
        bus_options: keyword options for every pub/sub backend (probing, ...).
        breaker_failures: consecutive publishing failures that open a region's breaker.
        breaker_reset_s: how long an open breaker refuses publishing before a probe, seconds.
        on_erasure: called with the user id of each erasure heard on the erasures channel
            (None: the channel is not subscribed).
    """

    def __init__(
        self,
        regions: RegionMap,
        *,
        cache: LocationCache,
        namespace: str,
        ttl_s: float,
        ping_interval_s: float | None = None,
        bus_options: Mapping[str, Any] | None = None,
        breaker_failures: int = 5,
        breaker_reset_s: float = 2.0,
        on_erasure: Callable[[int], None] | None = None,
    ) -> None:
        self.regions = regions
        self.cache = cache
        self.namespace = namespace
        self.stats = Stats()
        self._ping_interval_s = ping_interval_s
        self.broker = Broker(
            regions,
            on_message=self._on_message,
            on_restored=self._restored_soon,
            bus_options=bus_options,
            breaker_failures=breaker_failures,
            breaker_reset_s=breaker_reset_s,
        )
        self.fanout = Fanout(
            regions, broker=self.broker, cache=cache, namespace=namespace, ttl_ms=int(ttl_s * 1000), spawn=self._spawn
        )
        #: Run after a region's subscriptions are restored (with the region's name).
        self.on_restored: Callable[[str], Awaitable[None]] | None = None
        self._on_erasure = on_erasure
        self._erasures = erasures_channel(namespace, regions.default.name)
        #: Connected users: user id -> their connections here, and their control channel's region.
        self.owners: dict[int, list[Owner]] = {}
        self._owner_region: dict[int, str] = {}
        #: Frames queued for a connection go out at the end of the loop iteration, in one write.
        self.schedule = FlushQueue().schedule
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._restoring: dict[str, asyncio.Task[None]] = {}
        self._restore_again: set[str] = set()
        self.sessions: set[Owner] = set()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the pub/sub backends, the erasures subscription, and the expiry and keepalive loops."""
        await self.broker.start()
        if self._on_erasure is not None:
            self.broker.route(self._erasures, _ERASURES_KEY)
            erasures = self._spawn(self.broker.subscribe({self.regions.default.name: [self._erasures]}))
            try:
                await asyncio.wait_for(asyncio.shield(erasures), _ERASURES_WAIT_S)
            except TimeoutError:
                log.warning("the erasures channel is not confirmed yet; it will be once pub/sub answers")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._sweeper(), name="friends-expiry")]
        if self._ping_interval_s is not None:
            self._tasks.append(loop.create_task(self._pinger(self._ping_interval_s), name="friends-keepalive"))

    async def close(self) -> None:
        tasks = [*self._tasks, *self._restoring.values(), *self._background]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # noqa: BLE001 - shutting down: a failed task has nothing left to do
                log.debug("a background task had failed: %s", exc)
        await self.broker.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- connected users ------------------------------------------------------------------------

    async def attach(self, owner: Owner) -> None:
        """Register a connected user's connection and subscribe their control channel."""
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

    # --- publishing ---------------------------------------------------------------------------

    async def publish_location(self, region: str | None, user_id: int, data: bytes) -> None:
        """Publish on a user's location channel in ``region`` (None: the default)."""
        name = self.regions.get(region).name
        await self.broker.publish(name, location_channel(self.namespace, name, user_id), data)

    async def publish_control(self, region: str | None, user_id: int, event: Control) -> None:
        """Publish on a user's control channel in ``region`` (None: the default)."""
        name = self.regions.get(region).name
        await self.broker.publish(name, control_channel(self.namespace, name, user_id), encode_control(event))

    # --- what arrives -------------------------------------------------------------------------

    def _on_message(self, key: int, data: bytes) -> None:
        self.stats.pubsub_messages += 1
        if key > 0:
            self.fanout.on_message(key, data)
        elif key == _ERASURES_KEY:
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

    def _restored_soon(self, region: str) -> None:
        """A region's subscriptions are back: run :attr:`on_restored`, again after the current
        run if one is under way (what it read may predate messages lost in this outage)."""
        self._restore_again.add(region)
        task = self._restoring.get(region)
        if task is None or task.done():
            self._restoring[region] = asyncio.get_running_loop().create_task(self._restore(region))

    async def _restore(self, region: str) -> None:
        while region in self._restore_again:
            self._restore_again.discard(region)
            if self.on_restored is not None:
                try:
                    await self.on_restored(region)
                except Exception:  # a bug: log it; the next reconnection tries again
                    log.exception("catching up after the reconnection of region %s failed", region)

    # --- loops --------------------------------------------------------------------------------

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.fanout.expiry.granularity_ms / 1000)
            self.fanout.expire(now_ms())

    async def _pinger(self, interval_s: float) -> None:
        """Ping silent connections and drop dead ones: one loop for all, no timer per connection."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval_s / 2)
            now = loop.time()
            for owner in list(self.sessions):
                owner.keepalive(now, interval_s)
