"""The location cache: one Redis key per user, with a TTL, in the user's home region.

Every update rewrites the key and its TTL; a user who stops sending expires. The value
records which connection wrote it, so closing one of a user's connections marks the location
away (:attr:`~geo_common.presence.Location.live` false, for friends' pace) only if that
connection wrote the latest; the location itself stays until its TTL (the user's "last seen").

Each Redis has a circuit breaker (:mod:`geo_common.breaker`): once it is open, calls fail at
once with :class:`~geo_common.breaker.CircuitOpen` (a ``ConnectionError``, which the session
answers with an ``unavailable`` error) instead of waiting on a dead server.

A region's ``redis_url`` may carry a user and password (``redis://user:password@host:port/0``,
sent with ``AUTH`` on every connection) and ask for TLS (``rediss://``, the certificate checked
against ``tls_ca``); a refused login is a :class:`~pubsub.errors.AuthenticationFailed`, a
``ConnectionError`` too, so it counts against the breaker like an unreachable server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geo_common.breaker import Breaker
from geo_common.presence import (
    Location,
    PresenceFormatError,
    decode_cached,
    encode_cached,
    location_key,
    sequence_key,
)
from geo_common.regions import RegionMap
from pubsub.client import RedisClient

# Mark the location away (not live: its socket closed), keeping its TTL, only if the
# connection id (ARGV[1]) wrote it; returns 1 when marked.
_AWAY_IF_MINE = """
local value = redis.call('GET', KEYS[1])
if value and string.find(value, ARGV[1], 1, true) and string.find(value, '"w":true', 1, true) then
    value = string.gsub(value, '"w":true', '"w":false', 1)
    redis.call('SET', KEYS[1], value, 'KEEPTTL')
    return 1
end
return 0
"""
# Raise a user's upload sequence mark to ARGV[1] (kept ARGV[2] seconds) if that is higher;
# returns the mark before.
_ADVANCE = """
local before = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > before then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return before
"""
# Put the mark back to ARGV[2] if it is still ARGV[1] (what failed to apply is accepted again).
_RESTORE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    if ARGV[2] == '-1' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') end
    return 1
end
return 0
"""
# Record a user's news in a cell's member hash, which lives ARGV[3] seconds after its last write.
_MEMBER = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
# Remove a member ARGV[1] from a cell's hash if its value is still ARGV[2] (a newer write
# stays); returns 1 when removed.
_DROP_IF = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
    return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
#: How long an upload sequence mark is kept after the user's last upload, seconds.
SEQUENCE_TTL_S = 30 * 86_400


class LocationCache:
    """Cached locations in each region's Redis.

    Args:
        regions: the region map (each region's ``redis_url``).
        namespace: ``GEO_REDIS_NAMESPACE``.
        ttl_s: lifetime of a cached location, seconds.
        breaker_failures: consecutive failures that open a Redis's breaker.
        breaker_reset_s: how long an open breaker refuses calls before a probe, seconds.
        tls_ca: the CA bundle ``rediss://`` servers are checked against (``GEO_REDIS_TLS_CA``;
            empty or None: the system's).
    """

    def __init__(
        self,
        regions: RegionMap,
        *,
        namespace: str,
        ttl_s: int,
        breaker_failures: int = 5,
        breaker_reset_s: float = 2.0,
        tls_ca: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.ttl_s = ttl_s
        self._regions = regions
        by_url: dict[str, tuple[RedisClient, Breaker]] = {}
        self._clients: dict[str, tuple[RedisClient, Breaker]] = {}
        for region in regions.regions:
            # Regions sharing one Redis share one connection (and its breaker).
            if region.redis_url not in by_url:
                name = "redis-cache" if region.name == regions.default.name else f"redis-cache-{region.name}"
                by_url[region.redis_url] = (
                    RedisClient.from_url(region.redis_url, tls_ca=tls_ca),
                    Breaker(name, failures=breaker_failures, reset_s=breaker_reset_s),
                )
            self._clients[region.name] = by_url[region.redis_url]
        self._unique = list(by_url.values())

    @property
    def breakers(self) -> list[Breaker]:
        """One breaker per Redis."""
        return [breaker for _, breaker in self._unique]

    async def _execute(self, region: str, *args: Any) -> Any:
        client, breaker = self._clients[self._regions.get(region).name]
        # A reply error (ReplyError, a ValueError) means Redis answered: only I/O errors count.
        with breaker.guard((OSError,)):
            return await client.execute(*args)

    async def close(self) -> None:
        for client, _ in self._unique:
            await client.close()

    async def store(self, region: str, location: Location) -> None:
        """Write a user's location, (re)starting its TTL."""
        key = location_key(self.namespace, region, location.user_id)
        await self._execute(region, "SET", key, encode_cached(location), "EX", self.ttl_s)

    async def fetch(self, region: str, user_ids: Iterable[int]) -> dict[int, Location]:
        """The cached locations of users (those without one, or expired, are absent)."""
        ids = list(user_ids)
        if not ids:
            return {}
        values = await self._execute(region, "MGET", *[location_key(self.namespace, region, u) for u in ids])
        found = {}
        for user_id, value in zip(ids, values):
            if value is not None:
                try:
                    found[user_id] = decode_cached(user_id, value)
                except PresenceFormatError:
                    continue
        return found

    async def clear(self, region: str, user_id: int) -> bool:
        """Delete a user's cached location; True when there was one."""
        return bool(await self._execute(region, "DEL", location_key(self.namespace, region, user_id)))

    async def mark_away_if_mine(self, region: str, user_id: int, connection: str) -> bool:
        """Mark a user's cached location away (their socket closed; it keeps its TTL) if
        ``connection`` wrote it and it was live; True when marked."""
        key = location_key(self.namespace, region, user_id)
        return bool(await self._execute(region, "EVAL", _AWAY_IF_MINE, 1, key, connection))

    async def advance_sequence(self, region: str, user_id: int, seq: int) -> int:
        """Raise the user's upload sequence mark to ``seq`` if higher; the mark before (-1: none)."""
        key = sequence_key(self.namespace, region, user_id)
        return int(await self._execute(region, "EVAL", _ADVANCE, 1, key, seq, SEQUENCE_TTL_S))

    async def restore_sequence(self, region: str, user_id: int, seq: int, before: int) -> None:
        """Undo :meth:`advance_sequence` to ``seq`` (the points were not applied after all)."""
        key = sequence_key(self.namespace, region, user_id)
        await self._execute(region, "EVAL", _RESTORE, 1, key, seq, before)

    async def hold_member(self, region: str, key: str, user_id: int, data: bytes) -> None:
        """Record a user's latest news in a cell's member hash (the hash expires ``ttl_s`` after
        its last write; a member a crashed server never removed is judged by its ``at``)."""
        await self._execute(region, "EVAL", _MEMBER, 1, key, user_id, data, self.ttl_s)

    async def drop_member(self, region: str, key: str, user_id: int) -> None:
        """Remove a user from a cell's member hash."""
        await self._execute(region, "HDEL", key, user_id)

    async def sample_members(self, region: str, key: str, count: int) -> list[tuple[int, bytes]]:
        """Up to ``count`` members of a cell's member hash, (user id, news): all of them when
        there are no more, a random sample otherwise (a crowded cell)."""
        flat = await self._execute(region, "HRANDFIELD", key, count, "WITHVALUES")
        return [(int(field), value) for field, value in zip(flat[::2], flat[1::2])] if flat else []

    async def drop_member_if(self, region: str, key: str, user_id: int, data: bytes) -> bool:
        """Remove a member whose news is still ``data`` (not written again since); True when removed."""
        return bool(await self._execute(region, "EVAL", _DROP_IF, 1, key, user_id, data))

    async def ping(self) -> bool:
        """True when every Redis answers (False at once for one whose breaker is open)."""
        try:
            for client, breaker in self._unique:
                if not breaker.would_allow():
                    return False
                with breaker.guard((OSError,)):
                    await client.execute("PING", retries=0)
        except Exception:  # noqa: BLE001 - a health check; CircuitOpen included: another call is probing it
            return False
        return True
