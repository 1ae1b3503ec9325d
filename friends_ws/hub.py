"""Local routing between pub/sub and the sessions of this process.

The hub owns the process's pub/sub backends (one per region) and keeps, for every friend
some local session follows, one subscription to that friend's location channel however many
sessions follow them, and for every connected user one subscription to their control
channel. A message is decoded once, remembered as the friend's latest location, and offered
to each interested session, which decides (purely) what to send.

It also runs the two process-wide loops that keep per-connection cost low:

* the **flush queue** (:mod:`friends_ws.flushing`) writes queued frames to every session
  that has some, in one task, without awaiting any slow socket (a session whose socket is
  backed up drains in its own task);
* the **expiry sweep** tells sessions that a friend's last location is older than the
  location TTL (``friend_left`` with reason ``expired``); the timer runs on the friend's
  last ``updated_at``, not on Redis keyspace notifications, which fire late and may be lost.

Publishing goes through one circuit breaker per region's pub/sub (:mod:`geo_common.breaker`):
while it is open, publishing fails at once with :class:`~geo_common.breaker.CircuitOpen`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from friends_ws.cache import LocationCache
from friends_ws.expiry import ExpiryWheel
from friends_ws.flushing import FlushQueue
from friends_ws.metrics import Stats
from friends_ws.protocol import LeftReason, friend_location_pattern
from friends_ws.ratelimit import TokenBucket
from friends_ws.resync import resync_region
from geo_common.breaker import Breaker
from geo_common.presence import (
    Control,
    Location,
    PresenceFormatError,
    control_channel,
    decode_channel_message,
    decode_control,
    encode_control,
    location_channel,
)
from geo_common.regions import RegionMap
from pubsub import PubSub, RingPubSub, create_pubsub

if TYPE_CHECKING:
    from friends_ws.session import Session

log = logging.getLogger(__name__)

#: Publishing errors that mean the node could not answer (pubsub's own are ConnectionErrors;
#: the cluster backend raises redis-py's, which are not).
_PUBLISH_FAILURES: tuple[type[BaseException], ...] = (OSError, RedisConnectionError, RedisTimeoutError)


def now_ms() -> int:
    """Wall-clock time, Unix milliseconds (the ``updated_at`` of locations)."""
    return time.time_ns() // 1_000_000


class Hub:
    """Subscriptions, dispatch, flushing and expiry for one process.

    Args:
        regions: the region map.
        cache: the location cache (re-read after a pub/sub reconnection).
        namespace: ``GEO_REDIS_NAMESPACE``.
        ttl_s: the location TTL, seconds.
        max_updates_per_s: the per-user rate limit.
        ping_interval_s: a connection silent this long is pinged, and closed when it stays
            silent for half as long again (``None``: never).
        bus_options: keyword options for every pub/sub backend (probing, ...).
        breaker_failures: consecutive publishing failures that open a region's breaker.
        breaker_reset_s: how long an open breaker refuses publishing before a probe, seconds.
    """

    def __init__(
        self,
        regions: RegionMap,
        *,
        cache: LocationCache,
        namespace: str,
        ttl_s: float,
        max_updates_per_s: float,
        ping_interval_s: float | None = None,
        bus_options: Mapping[str, Any] | None = None,
        breaker_failures: int = 5,
        breaker_reset_s: float = 2.0,
    ) -> None:
        self.regions = regions
        self.cache = cache
        self.namespace = namespace
        self.ttl_ms = int(ttl_s * 1000)
        self.stats = Stats()
        self._rate = max_updates_per_s
        self._ping_interval_s = ping_interval_s
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
        # channel -> user id for every channel subscribed here, bitwise-inverted (negative) for
        # control channels: one int per channel rather than a (kind, id) tuple.
        self._channels: dict[str, int] = {}
        # Friends followed: user id -> sessions following, and the region subscribed in.
        # Lists, not sets: a set of 20 costs 2 KiB, a list 0.2 KiB, and few sessions follow one friend.
        self.listeners: dict[int, list[Session]] = {}
        self._friend_region: dict[int, str] = {}
        # Connected users: user id -> their sessions here, and their control channel's region.
        self.owners: dict[int, list[Session]] = {}
        self._owner_region: dict[int, str] = {}
        self._buckets: dict[int, TokenBucket] = {}
        # Subscriptions still being confirmed, so a second follower waits for the first.
        self._confirming: dict[str, asyncio.Future[None]] = {}
        #: The latest location known of each followed friend.
        self.known: dict[int, Location] = {}
        # When each known location expires (checked every bucket: at most that late).
        self._expiry = ExpiryWheel(max(50, min(1000, self.ttl_ms // 8)))
        #: Frames queued for a connection go out at the end of the loop iteration, in one write.
        self.schedule = FlushQueue().schedule
        self._tasks: list[asyncio.Task[None]] = []
        self._resyncs: dict[str, asyncio.Task[None]] = {}
        self.sessions: set[Session] = set()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create and start one pub/sub backend per region, and the flusher and expiry loops."""
        for region in self.regions.regions:
            options = dict(self._bus_options)
            if region.pubsub_backend != "ring":
                options.pop("handoff_s", None)
            bus = create_pubsub(
                region.pubsub_backend,
                region.pubsub_nodes,
                on_message=self._on_message,
                on_restored=functools.partial(self._resync_soon, region.name),
                **options,
            )
            await bus.start()
            self.buses[region.name] = bus
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._sweeper(), name="friends-expiry")]
        if self._ping_interval_s is not None:
            self._tasks.append(loop.create_task(self._pinger(self._ping_interval_s), name="friends-keepalive"))

    async def close(self) -> None:
        for task in [*self._tasks, *self._resyncs.values()]:
            task.cancel()
        for task in [*self._tasks, *self._resyncs.values()]:
            try:
                await task
            except asyncio.CancelledError:
                pass
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

    def bucket(self, user_id: int) -> TokenBucket:
        """The rate limit shared by a user's sessions on this process."""
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = TokenBucket(self._rate, max(1.0, self._rate), time.monotonic())
        return bucket

    # --- subscriptions ------------------------------------------------------------------------

    async def _subscribe(self, by_region: Mapping[str, list[str]]) -> None:
        """Subscribe channels (grouped by region), letting later callers wait for the same ones."""
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
            future.exception()  # the followers that wait re-raise it; nobody else must log it
            raise
        else:
            future.set_result(None)
        finally:
            for channel in channels:
                if self._confirming.get(channel) is future:
                    del self._confirming[channel]

    async def _await_confirming(self, channels: Iterable[str]) -> None:
        pending = {id(f): f for c in channels if (f := self._confirming.get(c)) is not None}
        if pending:
            await asyncio.gather(*(asyncio.shield(f) for f in pending.values()))

    def _unsubscribe(self, by_region: Mapping[str, list[str]]) -> None:
        for region, channels in by_region.items():
            for channel in channels:
                self._channels.pop(channel, None)
            self.buses[region].unsubscribe(channels)

    async def follow(self, session: Session, friends: Mapping[int, str | None]) -> None:
        """Subscribe a session to its friends' location channels (each in the friend's region).

        Returns once every channel is confirmed by Redis, so no update published afterwards
        can be missed.
        """
        new: dict[str, list[str]] = defaultdict(list)
        existing: list[str] = []
        for friend_id, region_name in friends.items():
            followers = self.listeners.get(friend_id)
            if followers is None:
                region = self.regions.get(region_name).name
                channel = location_channel(self.namespace, region, friend_id)
                self.listeners[friend_id] = [session]
                self._friend_region[friend_id] = region
                self._channels[channel] = friend_id
                new[region].append(channel)
            else:
                if session not in followers:
                    followers.append(session)
                existing.append(location_channel(self.namespace, self._friend_region[friend_id], friend_id))
        await asyncio.gather(self._subscribe(new), self._await_confirming(existing))

    def unfollow(self, session: Session, friend_ids: Iterable[int]) -> None:
        """Drop a session's interest in friends; channels nobody follows are unsubscribed."""
        gone: dict[str, list[str]] = defaultdict(list)
        for friend_id in friend_ids:
            followers = self.listeners.get(friend_id)
            if followers is None or session not in followers:
                continue
            followers.remove(session)
            if not followers:
                del self.listeners[friend_id]
                region = self._friend_region.pop(friend_id)
                gone[region].append(location_channel(self.namespace, region, friend_id))
                self._forget(friend_id)
        self._unsubscribe(gone)

    def friend_region(self, friend_id: int) -> str:
        """The region a followed friend's channel is subscribed in."""
        return self._friend_region.get(friend_id, self.regions.default.name)

    async def move_friend(self, friend_id: int, region_name: str) -> None:
        """A followed friend's channels moved to another region: follow them there.

        Updates published in the new region before the subscription was confirmed are not
        lost: the friend's cached location there is read afterwards and offered to followers.
        """
        region = self.regions.get(region_name).name
        old = self._friend_region.get(friend_id)
        channel = location_channel(self.namespace, region, friend_id)
        if old is None:
            return
        if old == region:
            await self._await_confirming([channel])  # another session is moving it now
            return
        self._friend_region[friend_id] = region
        self._channels[channel] = friend_id
        await self._subscribe({region: [channel]})
        self._unsubscribe({old: [location_channel(self.namespace, old, friend_id)]})
        log.debug("following friend %d in region %s now (was %s)", friend_id, region, old)
        await self.catch_up(region, [friend_id])

    async def catch_up(self, region: str, friend_ids: list[int]) -> None:
        """Offer followers the cached locations of friends newer than what is known here."""
        found = await self.cache.fetch(region, friend_ids)
        log.debug("catching up with %d friend(s) in %s: %d cached", len(friend_ids), region, len(found))
        for friend_id, location in found.items():
            known = self.known.get(friend_id)
            if known is None or known.updated_at < location.updated_at:
                self.known[friend_id] = location
                self._schedule_expiry(location)
                for session in self.listeners.get(friend_id, ()):
                    session.friend_moved(location)

    async def attach(self, session: Session) -> None:
        """Register a connected user's session and subscribe their control channel."""
        self.sessions.add(session)
        user_id = session.user_id
        sessions = self.owners.get(user_id)
        if sessions is not None:
            sessions.append(session)
            await self._await_confirming([control_channel(self.namespace, self._owner_region[user_id], user_id)])
            return
        region = self.regions.get(session.home_region).name
        channel = control_channel(self.namespace, region, user_id)
        self.owners[user_id] = [session]
        self._owner_region[user_id] = region
        self._channels[channel] = ~user_id
        await self._subscribe({region: [channel]})

    def detach(self, session: Session) -> None:
        """Forget a session: its control channel and friends, when no other session needs them."""
        self.sessions.discard(session)
        self.unfollow(session, session.view.friends)
        sessions = self.owners.get(session.user_id)
        if sessions is None or session not in sessions:
            return
        sessions.remove(session)
        if not sessions:
            del self.owners[session.user_id]
            self._buckets.pop(session.user_id, None)
            region = self._owner_region.pop(session.user_id)
            self._unsubscribe({region: [control_channel(self.namespace, region, session.user_id)]})

    async def move_home(self, user_id: int, region_name: str) -> None:
        """A connected user's channels moved to another region: move their control channel."""
        region = self.regions.get(region_name).name
        old = self._owner_region.get(user_id)
        if old is None or old == region:
            return
        self._owner_region[user_id] = region
        channel = control_channel(self.namespace, region, user_id)
        self._channels[channel] = ~user_id
        await self._subscribe({region: [channel]})
        self._unsubscribe({old: [control_channel(self.namespace, old, user_id)]})

    # --- publishing ---------------------------------------------------------------------------

    async def _publish(self, region: str, channel: str, data: bytes) -> None:
        with self.breakers[region].guard(_PUBLISH_FAILURES):
            await self.buses[region].publish(channel, data)

    async def publish_location(self, region: str, user_id: int, data: bytes) -> None:
        name = self.regions.get(region).name
        await self._publish(name, location_channel(self.namespace, name, user_id), data)

    async def publish_control(self, region: str | None, user_id: int, event: Control) -> None:
        name = self.regions.get(region).name
        await self._publish(name, control_channel(self.namespace, name, user_id), encode_control(event))

    # --- what arrives -------------------------------------------------------------------------

    def offer(self, location: Location) -> Location:
        """Remember a followed friend's location unless a newer one is known; returns the newest."""
        known = self.known.get(location.user_id)
        if known is not None and known.updated_at >= location.updated_at:
            return known
        if location.user_id in self.listeners:
            self.known[location.user_id] = location
            self._schedule_expiry(location)
        return location

    def _on_message(self, channel: str, data: bytes) -> None:
        user_id = self._channels.get(channel)
        if user_id is None:
            return  # a late message for a channel just unsubscribed
        self.stats.pubsub_messages += 1
        if user_id < 0:
            self._on_control(~user_id, data)
            return
        try:
            message = decode_channel_message(data)
        except PresenceFormatError as exc:
            log.warning("dropping a malformed message on %s: %s", channel, exc)
            return
        followers = self.listeners.get(user_id, ())
        if isinstance(message, Location):
            known = self.known.get(user_id)
            if known is not None and known.updated_at > message.updated_at:
                return  # older than what a cache read already gave us
            self.known[user_id] = message
            self._schedule_expiry(message)
            if followers:
                pattern = friend_location_pattern(
                    user_id, message.latitude, message.longitude, message.updated_at, message.sent_at
                )
                for session in followers:
                    session.friend_moved(message, pattern)
        else:
            self._forget(user_id)
            for session in followers:
                session.friend_left(user_id, message.reason)

    def _on_control(self, user_id: int, data: bytes) -> None:
        try:
            event = decode_control(data)
        except PresenceFormatError as exc:
            log.warning("dropping a malformed control message for user %d: %s", user_id, exc)
            return
        for session in list(self.owners.get(user_id, ())):
            session.control(event)

    def _resync_soon(self, region: str) -> None:
        task = self._resyncs.get(region)
        if task is None or task.done():
            self._resyncs[region] = asyncio.get_running_loop().create_task(self.resync(region))

    async def resync(self, region: str) -> None:
        """Catch up after a pub/sub reconnection in a region (:mod:`friends_ws.resync`)."""
        await resync_region(self, region)

    def followed_in(self, region: str) -> list[int]:
        """The friends followed here whose channel lives in ``region``."""
        return [u for u, r in self._friend_region.items() if r == region]

    def friend_seen(self, location: Location) -> None:
        """A friend's location read from the cache: passed on when newer than the known one."""
        if self.offer(location) is location:
            for session in self.listeners.get(location.user_id, ()):
                session.friend_moved(location)

    def friend_gone(self, user_id: int, reason: LeftReason) -> None:
        """A friend known here left meanwhile: their followers are told once."""
        if self._forget(user_id) is not None:
            for session in self.listeners.get(user_id, ()):
                session.friend_left(user_id, reason)

    # --- expiry -------------------------------------------------------------------------------

    def _schedule_expiry(self, location: Location) -> None:
        self._expiry.schedule(location.user_id, location.updated_at + self.ttl_ms)

    def _forget(self, user_id: int) -> Location | None:
        """Drop a friend's known location (and its expiry); returns it."""
        self._expiry.cancel(user_id)
        return self.known.pop(user_id, None)

    def expire(self, now: int) -> int:
        """Report every followed friend whose last location is older than the TTL.

        Args:
            now: the current time, Unix milliseconds.

        Returns:
            How many friends expired.
        """
        expired = 0
        for user_id in self._expiry.due(now):
            known = self.known.get(user_id)
            if known is None or known.updated_at + self.ttl_ms > now:
                continue
            del self.known[user_id]
            expired += 1
            for session in self.listeners.get(user_id, ()):
                session.friend_left(user_id, "expired")
        return expired

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._expiry.granularity_ms / 1000)
            self.expire(now_ms())

    async def _pinger(self, interval_s: float) -> None:
        """Ping silent connections and drop dead ones: one loop for all, no timer per connection."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval_s / 2)
            now = loop.time()
            for session in list(self.sessions):
                session.keepalive(now, interval_s)
