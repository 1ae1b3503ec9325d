"""A bounded sample of the users' cached locations, for the map page's watch mode.

The WebSocket tier keeps each sharing user's last location under
:func:`geo_common.presence.location_key` in the user's home region's Redis. Watching a load
test needs a picture of them, not an exact census: the keys are walked with ``SCAN`` (never
``KEYS``, which blocks Redis) in pages of :data:`SCAN_COUNT`, and the walk stops once
``limit`` keys were found or :data:`MAX_SCAN_CALLS` pages were read in a region. SCAN's order
follows Redis's hash table, so a partial walk is a sample spread over all users.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from geo_common.presence import PresenceFormatError, decode_cached
from geo_common.regions import RegionMap
from geo_common.settings import Settings
from location_api.errors import ApiError
from pubsub import open_redis

#: Positions the watch endpoint returns when not told, and the most it returns.
DEFAULT_WATCH_LIMIT = 2000
MAX_WATCH_LIMIT = 5000
#: Keys asked for per SCAN call (a hint to Redis, which may return more or fewer).
SCAN_COUNT = 1000
#: SCAN calls per region and request at most: bounds the work of one request.
MAX_SCAN_CALLS = 64
#: Values fetched per MGET.
MGET_CHUNK = 500


class WatchUnavailable(ApiError, ConnectionError):
    """A region's location cache did not answer (503; retrying is safe)."""

    status = 503
    slug = "location-cache-unavailable"
    title = "Location cache unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


@dataclass(frozen=True, slots=True)
class Position:
    """One user's cached location.

    Attributes:
        user_id: whose.
        latitude: degrees.
        longitude: degrees.
        updated_at: when the WebSocket tier received it, Unix milliseconds.
    """

    user_id: int
    latitude: float
    longitude: float
    updated_at: int

    def to_json(self) -> dict[str, float | int]:
        """The position as the watch endpoint's JSON object."""
        return {
            "user_id": self.user_id,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Sample:
    """What a walk found.

    Attributes:
        positions: at most the limit asked for.
        complete: True when every region's keys were walked to the end (nothing left out).
    """

    positions: tuple[Position, ...]
    complete: bool


@dataclass(frozen=True, slots=True)
class RegionCache:
    """One region's location cache: its name (part of the key) and its Redis."""

    region: str
    redis: aioredis.Redis


@contextlib.asynccontextmanager
async def open_region_caches(settings: Settings) -> AsyncIterator[tuple[RegionCache, ...]]:
    """One Redis client per region's location cache, in the region map's order, closed on exit
    (connections open on first use).

    Args:
        settings: the regions and the TLS CA.

    Yields:
        The caches; the app factory files them under :data:`location_api.keys.watch_caches_key`.
    """
    regions = RegionMap.from_settings(settings)
    caches = tuple(
        RegionCache(
            r.name,
            open_redis(r.redis_url, tls_ca=settings.redis_tls_ca, socket_connect_timeout=2.0, socket_timeout=5.0),
        )
        for r in regions.regions
    )
    try:
        yield caches
    finally:
        for cache in caches:
            await cache.redis.aclose()


def key_pattern(namespace: str, region: str) -> str:
    """The SCAN ``MATCH`` pattern of a region's location keys.

    Namespaces and region names hold no glob characters (see their validation), so only the
    trailing ``*`` is a wildcard.
    """
    return f"{namespace}:{region}:loc:*"


def user_id_of(key: bytes) -> int | None:
    """The user id in a location key (``...:loc:{<id>}``), or None for a key of another shape."""
    _, _, tail = key.rpartition(b":loc:")
    if len(tail) < 3 or tail[:1] != b"{" or tail[-1:] != b"}" or not tail[1:-1].isdigit():
        return None
    return int(tail[1:-1])


def decode_positions(keys: Sequence[bytes], values: Sequence[bytes | str | None]) -> list[Position]:
    """Positions of the keys whose values are cached locations (expired or malformed are skipped)."""
    found = []
    for key, value in zip(keys, values):
        user_id = user_id_of(key)
        if user_id is None or value is None:
            continue
        try:
            location = decode_cached(user_id, value)
        except PresenceFormatError:
            continue
        found.append(Position(user_id, location.latitude, location.longitude, location.updated_at))
    return found


async def sample_positions(caches: Sequence[RegionCache], namespace: str, limit: int) -> Sample:
    """Walk the regions' location keys and read up to ``limit`` positions.

    Args:
        caches: every region's cache, in the region map's order (earlier regions fill the
            sample first).
        namespace: ``GEO_REDIS_NAMESPACE``.
        limit: the most positions returned, at least 1.

    Returns:
        The positions found, and whether the walk was complete.

    Raises:
        WatchUnavailable: a region's Redis failed.
    """
    positions: list[Position] = []
    complete = True
    for cache in caches:
        if len(positions) >= limit:
            complete = False
            break
        try:
            keys, finished = await _scan(cache.redis, key_pattern(namespace, cache.region), limit - len(positions))
            for start in range(0, len(keys), MGET_CHUNK):
                chunk = keys[start : start + MGET_CHUNK]
                positions.extend(decode_positions(chunk, await cache.redis.mget(chunk)))
        except (RedisError, OSError) as exc:
            raise WatchUnavailable(f"the location cache of region {cache.region!r} did not answer: {exc}") from None
        complete &= finished
    return Sample(tuple(positions[:limit]), complete)


async def _scan(redis: aioredis.Redis, pattern: str, wanted: int) -> tuple[list[bytes], bool]:
    """Up to ``wanted`` keys matching ``pattern``, and whether the walk reached the end."""
    keys: list[bytes] = []
    seen: set[bytes] = set()  # SCAN may return a key twice while the table is rehashed
    cursor = 0
    for _ in range(MAX_SCAN_CALLS):
        cursor, page = await redis.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
        for raw in page:
            key = raw if isinstance(raw, bytes) else raw.encode()
            if key not in seen:
                seen.add(key)
                keys.append(key)
        if len(keys) >= wanted:
            return keys[:wanted], cursor == 0 and len(keys) == wanted
        if cursor == 0:
            return keys, True
    return keys, False
