"""Catching up after a pub/sub reconnection, from the location cache.

Redis pub/sub keeps nothing for a disconnected subscriber, so updates published while the
connection was down are gone; the cache holds each friend's latest location, and a friend
missing from it left (offline, sharing off or expired) meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from geo_common.breaker import CircuitOpen
from geo_common.presence import Location

if TYPE_CHECKING:
    from friends_ws.cache import LocationCache
    from friends_ws.hub import Hub

log = logging.getLogger(__name__)

#: How many times a resynchronisation waits for the cache's breaker to let it through.
RESYNC_ATTEMPTS = 3
#: Friends read from the cache per round trip.
CHUNK = 500


async def resync_region(hub: Hub, region: str) -> None:
    """Bring every friend ``hub`` follows in ``region`` up to date from the region's cache."""
    followed = hub.followed_in(region)
    for start in range(0, len(followed), CHUNK):
        chunk = followed[start : start + CHUNK]
        found = await fetch_cached(hub.cache, region, chunk)
        if found is None:
            return
        for user_id in chunk:
            location = found.get(user_id)
            if location is None:
                hub.friend_gone(user_id, "offline")
            else:
                hub.friend_seen(location)
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
