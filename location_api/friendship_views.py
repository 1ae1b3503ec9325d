"""Friendships and location erasure over HTTP, for the nearby-friends tier.

* ``POST /v1/users/{id}/friends/{friend_id}``: make two users friends (mutual);
* ``DELETE /v1/users/{id}/friends/{friend_id}``: end a friendship;
* ``GET /v1/users/{id}/friends``: a user's friends;
* ``DELETE /v1/users/{id}/locations``: erase a user's location history and cached location.

Only the user themself (the token's subject) or an admin may call them. User rows are
created on first use. A friendship change is written to PostgreSQL, then announced on each
user's control channel (``geo_common.presence``) through the user's home region's pub/sub,
so the live WebSocket connections of both users, on whichever ``geo-friends`` instance
holds them, start or stop following each other within a second. Writes return an
``X-Consistency-Token``; a ``GET`` that sends it back reads its own write.

:func:`add_friendship_routes` registers the routes and the pub/sub and Redis clients they
need (opened and closed in ``cleanup_ctx``). Every Redis call they make goes through a
circuit breaker per region (``redis-presence-<region>`` in ``/metrics``): while Redis is
down, after ``GEO_BREAKER_FAILURES`` failures in a row, the routes answer 503
``presence-unavailable`` at once (the database change is kept; retrying is safe) instead of
waiting for Redis's timeouts on every request.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from geo_common import friends_db, history_db
from geo_common.breaker import Breaker, CircuitOpen
from geo_common.presence import (
    Control,
    FriendAdded,
    FriendRemoved,
    Left,
    control_channel,
    encode_control,
    encode_left,
    location_channel,
    location_key,
)
from geo_common.regions import RegionMap
from geo_common.tokens import Identity, Role, TokenError, bearer_token, verify_token
from location_api import queries
from location_api.errors import ApiError, Forbidden, InvalidRequest, NotAuthenticated, NotFound
from location_api.friendship_openapi import MAX_USER_ID
from location_api.handling import RouteTable
from location_api.keys import db_key, metrics_key, role_key, settings_key
from location_api.validate import CONSISTENCY_HEADER, format_lsn, parse_consistency_token
from location_api.views import json_response
from pubsub import PubSub, PubSubError, create_pubsub

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What means "Redis could not answer" to the presence breakers.
_PRESENCE_ERRORS = (RedisError, PubSubError, OSError)


class PresenceUnavailable(ApiError, ConnectionError):
    """The change is stored, but the live connections could not be told (503; retrying is safe)."""

    status = 503
    slug = "presence-unavailable"
    title = "Live connections could not be updated"

    def __init__(self, detail: str, retry_after_s: float = 1.0) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


@dataclass(frozen=True, slots=True)
class Presence:
    """Per region: the pub/sub backend (publishing only), the location cache's Redis, and
    the circuit breaker both are called under."""

    regions: RegionMap
    namespace: str
    buses: dict[str, PubSub]
    caches: dict[str, aioredis.Redis]
    breakers: dict[str, Breaker]

    async def call(self, region: str, command: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis command of ``region`` under its breaker.

        Raises:
            CircuitOpen: the breaker is open: nothing was sent.
            RedisError, PubSubError, OSError: Redis could not answer (counted by the breaker).
        """
        with self.breakers[region].guard(_PRESENCE_ERRORS):
            return await command()

    async def announce(self, messages: Iterable[tuple[str | None, int, Control]]) -> None:
        """Publish control messages: (user's home region, user id, message) each."""
        for region_name, user_id, event in messages:
            region = self.regions.get(region_name).name
            channel = control_channel(self.namespace, region, user_id)
            await self.call(region, partial(self._publish, region, channel, event))

    async def _publish(self, region: str, channel: str, event: Control) -> int:
        return await self.buses[region].publish(channel, encode_control(event))


presence_key = web.AppKey("friends_presence", Presence)


def add_friendship_routes(app: web.Application, routes: RouteTable) -> None:
    """Register the friendship routes (by the instance's role) and their Redis clients.

    GET is served by read instances; the changes and the erasure by write instances.
    """
    role = app[role_key]
    if role.reads:
        routes.get("/v1/users/{id}/friends", list_friends)
    if role.writes:
        routes.post("/v1/users/{id}/friends/{friend_id}", add_friend)
        routes.delete("/v1/users/{id}/friends/{friend_id}", remove_friend)
        routes.delete("/v1/users/{id}/locations", erase_locations)
        app.cleanup_ctx.append(_presence)


async def _presence(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    regions = RegionMap.from_settings(settings)
    buses: dict[str, PubSub] = {}
    caches: dict[str, aioredis.Redis] = {}
    try:
        for region in regions.regions:
            # Publishing only: a backend opens no subscriber connection until it subscribes.
            bus = create_pubsub(region.pubsub_backend, region.pubsub_nodes, on_message=lambda _c, _d: None)
            await bus.start()
            buses[region.name] = bus
            caches[region.name] = aioredis.Redis.from_url(region.redis_url, socket_connect_timeout=5.0)
        breakers = {
            region.name: Breaker(
                f"redis-presence-{region.name}", failures=settings.breaker_failures, reset_s=settings.breaker_reset_s
            )
            for region in regions.regions
        }
        app[metrics_key].breakers.extend(breakers.values())
        app[presence_key] = Presence(regions, settings.redis_namespace, buses, caches, breakers)
        yield
    finally:
        for bus in buses.values():
            await bus.close()
        for cache in caches.values():
            await cache.aclose()


# --- request parsing ----------------------------------------------------------------------------


def _user_id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_USER_ID:
        raise InvalidRequest.field(name, f"must be a user id (a whole number from 1 to {MAX_USER_ID})")
    return int(raw)


def _caller(request: web.Request) -> Identity:
    try:
        return verify_token(request.app[settings_key].jwt_secret, bearer_token(request.headers.get("Authorization")))
    except TokenError as exc:
        raise NotAuthenticated(str(exc)) from None


def _require_self_or_admin(request: web.Request, user_id: int) -> Identity:
    """The caller, who must be the user ``user_id`` or an admin."""
    caller = _caller(request)
    if caller.user_id != user_id and caller.role is not Role.ADMIN:
        raise Forbidden(f"user {caller.user_id} may not act for user {user_id}; only they or an admin may")
    return caller


# --- views --------------------------------------------------------------------------------------


async def add_friend(request: web.Request) -> web.Response:
    """``POST /v1/users/{id}/friends/{friend_id}``: 201 when new, 200 when they already were."""
    user_id = _user_id(request, "id")
    friend_id = _user_id(request, "friend_id")
    _require_self_or_admin(request, user_id)
    if user_id == friend_id:
        raise InvalidRequest.field("friend_id", "a user cannot befriend themself")

    async def run(conn: asyncpg.Connection) -> tuple[bool, dict[int, str | None], int]:
        async with conn.transaction():
            created = await friends_db.add_friendship(conn, user_id, friend_id)
            homes = await _home_regions(conn, user_id, friend_id)
        return created, homes, await queries.visible_lsn(conn)

    created, homes, lsn = await request.app[db_key].write(run)
    await _announce(
        request,
        [
            (homes[user_id], user_id, FriendAdded(friend_id, homes[friend_id])),
            (homes[friend_id], friend_id, FriendAdded(user_id, homes[user_id])),
        ],
    )
    return json_response(
        {"user_id": user_id, "friend_id": friend_id, "created": created},
        status=201 if created else 200,
        headers={CONSISTENCY_HEADER: format_lsn(lsn), "Location": f"/v1/users/{user_id}/friends"},
    )


async def remove_friend(request: web.Request) -> web.Response:
    """``DELETE /v1/users/{id}/friends/{friend_id}``: 204, or 404 when they were not friends."""
    user_id = _user_id(request, "id")
    friend_id = _user_id(request, "friend_id")
    _require_self_or_admin(request, user_id)

    async def run(conn: asyncpg.Connection) -> tuple[bool, dict[int, str | None], int]:
        async with conn.transaction():
            removed = await friends_db.remove_friendship(conn, user_id, friend_id)
            homes = await _home_regions(conn, user_id, friend_id)
        return removed, homes, await queries.visible_lsn(conn)

    removed, homes, lsn = await request.app[db_key].write(run)
    if not removed:
        raise NotFound(f"users {user_id} and {friend_id} are not friends")
    await _announce(
        request,
        [
            (homes.get(user_id), user_id, FriendRemoved(friend_id)),
            (homes.get(friend_id), friend_id, FriendRemoved(user_id)),
        ],
    )
    return web.Response(status=204, headers={CONSISTENCY_HEADER: format_lsn(lsn)})


async def list_friends(request: web.Request) -> web.Response:
    """``GET /v1/users/{id}/friends``: ``{"user_id", "friends": [{"user_id", "since"}]}``."""
    user_id = _user_id(request, "id")
    _require_self_or_admin(request, user_id)
    token = parse_consistency_token(request.headers)
    friends = await request.app[db_key].read(lambda conn: friends_db.list_friends(conn, user_id), min_lsn=token)
    return json_response(
        {
            "user_id": user_id,
            "friends": [{"user_id": f.user_id, "since": f.since.isoformat()} for f in friends],
        }
    )


async def erase_locations(request: web.Request) -> web.Response:
    """``DELETE /v1/users/{id}/locations``: erase the history and the cached location.

    Friends following the user see them leave (``friend_left``, ``offline``). A connection
    the user still has open shares its next update as usual.
    """
    user_id = _user_id(request, "id")
    _require_self_or_admin(request, user_id)

    async def run(conn: asyncpg.Connection) -> tuple[int, str | None, int]:
        deleted = await history_db.delete_history(conn, user_id)
        user = await friends_db.get_user(conn, user_id)
        return deleted, None if user is None else user.home_region, await queries.visible_lsn(conn)

    deleted, home, lsn = await request.app[db_key].write(run)
    presence = request.app[presence_key]
    region = presence.regions.get(home).name
    key = location_key(presence.namespace, region, user_id)
    try:
        cached = bool(await presence.call(region, lambda: presence.caches[region].delete(key)))
        if cached:
            channel = location_channel(presence.namespace, region, user_id)
            await presence.call(
                region, lambda: presence.buses[region].publish(channel, encode_left(Left(user_id, "offline")))
            )
    except CircuitOpen as exc:
        raise PresenceUnavailable(
            f"history erased ({deleted} rows); Redis is unavailable, the cached location could not be: retry",
            exc.retry_after_s,
        ) from exc
    except _PRESENCE_ERRORS as exc:
        log.warning("user %d: history erased but the cached location could not be: %s", user_id, exc)
        raise PresenceUnavailable(f"history erased ({deleted} rows); the cached location could not be: retry") from exc
    return json_response(
        {"user_id": user_id, "history_rows_deleted": deleted, "cached_location_deleted": cached},
        headers={CONSISTENCY_HEADER: format_lsn(lsn)},
    )


async def _home_regions(conn: asyncpg.Connection, *user_ids: int) -> dict[int, str | None]:
    rows = await conn.fetch("SELECT id, home_region FROM users WHERE id = ANY($1::bigint[])", list(user_ids))
    homes: dict[int, str | None] = {u: None for u in user_ids}
    homes.update({r["id"]: r["home_region"] for r in rows})
    return homes


async def _announce(request: web.Request, messages: list[tuple[str | None, int, Control]]) -> None:
    try:
        await request.app[presence_key].announce(messages)
    except CircuitOpen as exc:
        raise PresenceUnavailable(
            "the friendship is stored, but Redis is unavailable and live connections were not told; retry",
            exc.retry_after_s,
        ) from exc
    except _PRESENCE_ERRORS as exc:
        log.warning("friendship stored but not announced: %s", exc)
        raise PresenceUnavailable("the friendship is stored, but live connections were not told; retry") from exc
