"""Catching up after a pub/sub reconnection: grants from the primary, then locations from the cache.

Redis pub/sub keeps nothing for a disconnected subscriber, so whatever was published while
the connection was down is gone: friendships ended, friends who hid or switched a viewer to
coarse, locations. Once a region's subscriptions are back (the broker calls :meth:`Resync.soon`):

1. every connected user's grants are re-read from the primary, in chunks, and each
   connection drops, hides, coarsens, un-coarsens or follows each friend accordingly
   (:meth:`friends_ws.following.Following.regrant`); a connection that applied a restriction
   while its grants were being read reads them again, as the read may predate it;
2. every friend followed in the region is brought up to date from the region's cache; a
   friend missing from it left (offline, sharing off or expired) meanwhile;
3. every connected user's own row is re-read from the primary: sharing turned off (or an
   erasure) on another connection meanwhile applies to this one too.

A region that reconnects again while its catch-up runs is caught up once more afterwards:
what the running one read may predate messages lost in the second outage.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg
from redis.exceptions import RedisError

from friends_ws.cache import LocationCache
from friends_ws.fanout import Fanout
from friends_ws.follower import Owner
from friends_ws.subscriptions import Subscriptions
from geo_common.breaker import CircuitOpen
from geo_common.database import Database, DatabaseUnavailable
from geo_common.friends_db import grants_to
from geo_common.presence import Location

log = logging.getLogger(__name__)

#: How many times a resynchronisation waits for the cache's breaker to let it through.
RESYNC_ATTEMPTS = 3
#: Friends read from the cache, or users' grants read from the primary, per round trip.
CHUNK = 500
#: How many times the grants of a connection that keeps receiving restrictions are re-read.
REGRANT_ATTEMPTS = 3


class Resync:
    """What runs after a region's pub/sub reconnection.

    Args:
        subscriptions: the connections here and their users.
        fanout: the friends followed here.
        cache: the location cache (followed friends' latest locations).
        db: the database (grants are read on its primary).
        spawn: runs a coroutine in the background (one catch-up per region at a time).
    """

    def __init__(
        self,
        subscriptions: Subscriptions,
        fanout: Fanout,
        *,
        cache: LocationCache,
        db: Database,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
    ) -> None:
        self.subscriptions = subscriptions
        self.fanout = fanout
        self.cache = cache
        self.db = db
        self._spawn = spawn
        #: Pub/sub reconnections (subscriptions restored after a loss), by region, for /metrics.
        self.reconnections: Counter[str] = Counter()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    def soon(self, region: str) -> None:
        """A region's subscriptions are back: catch up, again after the current run if one is
        under way (what it read may predate messages lost in this outage)."""
        self.reconnections[region] += 1
        self._again.add(region)
        task = self._running.get(region)
        if task is None or task.done():
            self._running[region] = self._spawn(self._catch_up(region))

    async def _catch_up(self, region: str) -> None:
        while region in self._again:
            self._again.discard(region)
            try:
                await self.restored(region)
            except Exception:  # a bug: log it; the next reconnection tries again
                log.exception("catching up after the reconnection of region %s failed", region)

    async def restored(self, region: str) -> None:
        """Re-read every connected user's grants, catch up with the region's cache, then
        re-read every connected user's own row."""
        await self.regrant_all()
        await resync_region(self.fanout, self.cache, region)
        await self.reload_users()

    async def reload_users(self) -> None:
        """Have every connection here re-read its user's row from the primary."""
        owners = [owner for owner in self.subscriptions.sessions if not owner.loading]
        for start in range(0, len(owners), CHUNK):
            await asyncio.gather(*(owner.reload() for owner in owners[start : start + CHUNK]))

    async def regrant_all(self) -> None:
        """Re-read the grants of every user connected here, from the primary, and apply them."""
        users = list(self.subscriptions.owners)
        for start in range(0, len(users), CHUNK):
            await self._regrant(users[start : start + CHUNK])
        log.info("re-read the grants of %d connected user(s) from the primary", len(users))

    async def _regrant(self, users: list[int]) -> None:
        for _ in range(REGRANT_ATTEMPTS):
            # Connections still opening read their grants themselves, after subscribing.
            owners: list[tuple[Owner, int]] = [
                (owner, owner.following.restrictions)
                for u in users
                for owner in self.subscriptions.owners.get(u, ())
                if not owner.loading
            ]
            if not owners:
                return
            try:
                grants = await self.db.read_primary(functools.partial(grants_to, viewer_ids=users))
            except (DatabaseUnavailable, asyncpg.PostgresError) as exc:
                log.warning("re-reading grants after a reconnection failed: %s", exc)
                return
            stale: set[int] = set()
            current: list[Awaitable[None]] = []
            for owner, before in owners:
                if owner.following.restrictions != before:
                    stale.add(owner.user_id)  # a restriction arrived during the read, which may predate it
                elif owner in self.subscriptions.sessions:  # still connected
                    current.append(owner.following.regrant(grants.get(owner.user_id, [])))
            for failed in await asyncio.gather(*current, return_exceptions=True):
                if isinstance(failed, Exception):  # one connection failed to follow: it lives on
                    log.warning("applying re-read grants failed: %s", failed)
            if not stale:
                return
            users = sorted(stale)
        log.warning("grants of %d user(s) kept changing while being re-read", len(users))


async def resync_region(fanout: Fanout, cache: LocationCache, region: str) -> None:
    """Bring every friend ``fanout`` follows in ``region`` up to date from the region's cache."""
    followed = fanout.followed_in(region)
    for start in range(0, len(followed), CHUNK):
        chunk = followed[start : start + CHUNK]
        found = await fetch_cached(cache, region, chunk)
        if found is None:
            return
        for user_id in chunk:
            location = found.get(user_id)
            if location is None:
                fanout.friend_gone(user_id, "offline")
            else:
                fanout.friend_seen(location)
    log.info("region %s: resynchronised %d followed friend(s) from the cache", region, len(followed))


async def fetch_cached(cache: LocationCache, region: str, user_ids: list[int]) -> dict[int, Location] | None:
    """The cached locations of ``user_ids``, or None when the cache cannot answer.

    The subscriber is back, so Redis answers again, but the cache's breaker may still be
    open from the outage: wait out its cool-down (a few times) rather than give up.
    """
    for attempt in range(RESYNC_ATTEMPTS):
        try:
            return await cache.fetch(region, user_ids)
        except CircuitOpen as exc:
            if attempt + 1 < RESYNC_ATTEMPTS:
                await asyncio.sleep(exc.retry_after_s + 0.05)
                continue
            log.warning("resync of region %s failed: %s", region, exc)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("resync of region %s failed: %s", region, exc)
            break
    return None
