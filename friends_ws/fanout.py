"""Friends followed by this process: one subscription per friend's location channel however
many connections follow them, the latest location known of each, and its expiry.

A location-channel message is decoded once, remembered as the friend's latest location,
and offered to each follower, which decides (purely) what to send. A change of what a
friend lets one viewer see (``access``) travels on the friend's own channel and is applied
before the next message of that channel is read, so a location the friend published after
the change is never delivered under the old rules.

Expiry runs on each friend's last ``updated_at`` plus the TTL (``friend_left`` with reason
``expired``), not on Redis keyspace notifications, which fire late and may be lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import replace
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from friends_ws.broker import Broker
from friends_ws.cache import LocationCache
from friends_ws.expiry import ExpiryWheel
from friends_ws.follower import Follower
from friends_ws.protocol import LeftReason, friend_location_pattern
from geo_common.presence import (
    Access,
    Left,
    Location,
    Moved,
    PresenceFormatError,
    Watching,
    decode_channel_message,
    location_channel,
)
from geo_common.regions import RegionMap

log = logging.getLogger(__name__)


class Fanout:
    """The location channels this process follows, and who follows each.

    Args:
        regions: the region map.
        broker: the pub/sub backends (channels are routed with the friend's user id).
        cache: the location cache (friends' latest locations when first followed or moved).
        namespace: ``GEO_REDIS_NAMESPACE``.
        ttl_ms: the location TTL, milliseconds.
        spawn: runs a coroutine in the background (a friend's move to another region).
    """

    def __init__(
        self,
        regions: RegionMap,
        *,
        broker: Broker,
        cache: LocationCache,
        namespace: str,
        ttl_ms: int,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self.regions = regions
        self.broker = broker
        self.cache = cache
        self.namespace = namespace
        self.ttl_ms = ttl_ms
        self._spawn = spawn
        # Friends followed: user id -> followers, and the region subscribed in.
        # Lists, not sets: a set of 20 costs 2 KiB, a list 0.2 KiB, and few connections follow one friend.
        self.listeners: dict[int, list[Follower]] = {}
        self._friend_region: dict[int, str] = {}
        #: The latest location known of each followed friend.
        self.known: dict[int, Location] = {}
        # When each known location expires (checked every bucket: at most that late).
        self.expiry = ExpiryWheel(max(50, min(1000, ttl_ms // 8)))

    # --- following ------------------------------------------------------------------------------

    async def follow(self, follower: Follower, friends: Mapping[int, str | None]) -> None:
        """Subscribe a follower to friends' location channels (each in the friend's region).

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
                self.listeners[friend_id] = [follower]
                self._friend_region[friend_id] = region
                self.broker.route(channel, friend_id)
                new[region].append(channel)
            else:
                if follower not in followers:
                    followers.append(follower)
                existing.append(location_channel(self.namespace, self._friend_region[friend_id], friend_id))
        await asyncio.gather(self.broker.subscribe(new), self.broker.confirmed(existing))

    def unfollow(self, follower: Follower, friend_ids: Iterable[int]) -> None:
        """Drop a follower's interest in friends; channels nobody follows are unsubscribed."""
        gone: dict[str, list[str]] = defaultdict(list)
        for friend_id in friend_ids:
            followers = self.listeners.get(friend_id)
            if followers is None or follower not in followers:
                continue
            followers.remove(follower)
            if not followers:
                del self.listeners[friend_id]
                region = self._friend_region.pop(friend_id)
                gone[region].append(location_channel(self.namespace, region, friend_id))
                self._forget(friend_id)
        self.broker.unsubscribe(gone)

    def friend_region(self, friend_id: int) -> str:
        """The region a followed friend's channel is subscribed in."""
        return self._friend_region.get(friend_id, self.regions.default.name)

    def followed_in(self, region: str) -> list[int]:
        """The friends followed here whose channel lives in ``region``."""
        return [u for u, r in self._friend_region.items() if r == region]

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
            await self.broker.confirmed([channel])  # another message is moving it now
            return
        self._friend_region[friend_id] = region
        self.broker.route(channel, friend_id)
        await self.broker.subscribe({region: [channel]})
        if self._friend_region.get(friend_id) != old:  # not moved back meanwhile (an erasure, then a claim)
            self.broker.unsubscribe({old: [location_channel(self.namespace, old, friend_id)]})
        log.debug("following friend %d in region %s now (was %s)", friend_id, region, old)
        for location in (await self.cache.fetch(region, [friend_id])).values():
            self.friend_seen(location)

    async def latest(self, friend_ids: Iterable[int]) -> dict[int, Location]:
        """The newest locations of followed friends: known here, else read from the cache.

        Friends known here need no cache read: their channel has been followed since, so the
        process holds their latest. Friends no longer followed when the reads return are left out.
        """
        wanted = list(friend_ids)
        by_region: dict[str, list[int]] = defaultdict(list)
        for friend_id in wanted:
            if friend_id not in self.known:
                by_region[self.friend_region(friend_id)].append(friend_id)
        results = await asyncio.gather(*(self.cache.fetch(r, ids) for r, ids in by_region.items()))
        for found in results:
            for location in found.values():
                self.offer(location)
        return {f: self.known[f] for f in wanted if f in self.known}

    # --- what arrives -----------------------------------------------------------------------------

    def offer(self, location: Location) -> Location:
        """Remember a followed friend's location unless a newer one is known; returns the newest."""
        known = self.known.get(location.user_id)
        if known is not None and known.updated_at >= location.updated_at:
            return known
        if location.user_id in self.listeners:
            self._remember(location)
        return location

    def on_message(self, user_id: int, data: bytes) -> None:
        """A message on the location channel of ``user_id``."""
        try:
            message = decode_channel_message(data)
        except PresenceFormatError as exc:
            log.warning("dropping a malformed message of user %d: %s", user_id, exc)
            return
        if isinstance(message, Location):
            known = self.known.get(user_id)
            if known is not None and known.updated_at > message.updated_at:
                return  # older than what a cache read already gave us
            self._remember(message)
            followers = self.listeners.get(user_id)
            if followers:
                pattern = friend_location_pattern(
                    user_id, message.latitude, message.longitude, message.updated_at, message.sent_at
                )
                for follower in followers:
                    follower.friend_moved(message, pattern)
        elif isinstance(message, Left):
            self._forget(user_id)
            for follower in list(self.listeners.get(user_id, ())):
                follower.friend_left(user_id, message.reason)
        elif isinstance(message, Access):
            for follower in list(self.listeners.get(user_id, ())):
                if follower.user_id == message.viewer:
                    follower.access_changed(user_id, message.level)
        elif isinstance(message, Moved):
            self._spawn(self._move(user_id, message.region))
        elif isinstance(message, Watching):
            known = self.known.get(user_id)
            if known is not None and (known.live, known.radius_m) != (message.live, message.radius_m):
                known = self.known[user_id] = replace(known, live=message.live, radius_m=message.radius_m)
                for follower in list(self.listeners.get(user_id, ())):
                    follower.friend_watching(known)

    async def _move(self, friend_id: int, region: str) -> None:
        try:
            await self.move_friend(friend_id, region)
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.warning("following friend %d into region %s failed: %s", friend_id, region, exc)

    def friend_seen(self, location: Location) -> None:
        """A friend's location read from the cache: passed on when newer than the known one."""
        if self.offer(location) is location:
            for follower in list(self.listeners.get(location.user_id, ())):
                follower.friend_moved(location)

    def friend_gone(self, user_id: int, reason: LeftReason) -> None:
        """A friend known here left meanwhile (found by a resync): their followers are told once."""
        if self._forget(user_id) is not None:
            for follower in list(self.listeners.get(user_id, ())):
                follower.friend_left(user_id, reason)

    # --- expiry -------------------------------------------------------------------------------

    def _remember(self, location: Location) -> None:
        self.known[location.user_id] = location
        self.expiry.schedule(location.user_id, location.updated_at + self.ttl_ms)

    def _forget(self, user_id: int) -> Location | None:
        """Drop a friend's known location (and its expiry); returns it."""
        self.expiry.cancel(user_id)
        return self.known.pop(user_id, None)

    def expire(self, now: int) -> int:
        """Report every followed friend whose last location is older than the TTL.

        Args:
            now: the current time, Unix milliseconds.

        Returns:
            How many friends expired.
        """
        expired = 0
        for user_id in self.expiry.due(now):
            known = self.known.get(user_id)
            if known is None or known.updated_at + self.ttl_ms > now:
                continue
            del self.known[user_id]
            expired += 1
            for follower in list(self.listeners.get(user_id, ())):
                follower.friend_left(user_id, "expired")
        return expired

    async def run_expiry(self, clock: Callable[[], int]) -> None:
        """Expire friends once per bucket of the expiry wheel, until cancelled.

        Args:
            clock: the wall clock, Unix milliseconds (locations' ``updated_at`` are wall-clock times).
        """
        while True:
            await asyncio.sleep(self.expiry.granularity_ms / 1000)
            self.expire(clock())
