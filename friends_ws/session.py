"""One client connection: what the user asked for, what they see, and what waits to be sent.

The session is the thin layer between the socket, the hub and the pure core: it decodes a
client frame with :func:`~friends_ws.protocol.parse_client_message`, updates the cache,
pub/sub and history, asks :class:`~friends_ws.nearby.View` what each friend's new distance
means, and queues the encoded frames in a bounded :class:`~friends_ws.outbox.Outbox`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from redis.exceptions import RedisError

from friends_ws.cache import LocationCache
from friends_ws.db import Database, DatabaseUnavailable
from friends_ws.history import HistoryWriter
from friends_ws.hub import Hub, now_ms
from friends_ws.link import Link, WriteBuffer
from friends_ws.nearby import Change, View, coarsen
from friends_ws.protocol import (
    INTERNAL_ERROR,
    INVALID_MESSAGE,
    RATE_LIMITED,
    UNAVAILABLE,
    FriendPosition,
    InvalidMessage,
    LeftReason,
    LocationUpdate,
    SettingsUpdate,
    SharingUpdate,
    encode_error,
    FramePattern,
    complete_friend_location,
    encode_friend_left,
    encode_init,
    friend_location_pattern,
    encode_settings,
    encode_sharing,
    parse_client_message,
)
from friends_ws.session_config import SessionConfig
from geo_common import friends_db, history_db
from geo_common.presence import (
    Control,
    FriendAdded,
    FriendMoved,
    FriendRemoved,
    HomeMoved,
    Left,
    Location,
    SharingChanged,
    encode_left,
    encode_location,
)
from geo_index import haversine_m
from pubsub import PubSubError

log = logging.getLogger(__name__)

_UTC = dt.UTC
#: A backend (PostgreSQL, Redis) is down or unreachable: the request fails, the session lives.
_BACKEND_ERRORS = (DatabaseUnavailable, PubSubError, RedisError, asyncpg.PostgresError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Services:
    """What every session uses (one of each per process)."""

    hub: Hub
    cache: LocationCache
    db: Database
    history: HistoryWriter
    config: SessionConfig


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=_UTC)


class Session(Link):
    """The state of one WebSocket connection of one user (the writing side is :class:`Link`).

    Args:
        services: the process's hub, cache, database, history writer and rules.
        ws: the prepared WebSocket.
        transport: its transport (to see how much waits in its write buffer).
        user_id: the authenticated user (from the token, never from the client).
    """

    hub: Hub

    __slots__ = (
        "services",
        "connection_id",
        "home_region",
        "sharing",
        "precision",
        "view",
        "position",
        "_last_sent_at",
        "_shared",
        "_backlog",
    )

    def __init__(self, services: Services, ws: web.WebSocketResponse, transport: WriteBuffer, user_id: int) -> None:
        super().__init__(ws, transport, services.hub, user_id=user_id, queue_size=services.config.queue_size)
        self.services = services
        #: Identifies this connection's writes to the cache.
        self.connection_id = secrets.token_hex(8)
        self.home_region: str | None = None
        self.sharing = True
        self.precision = "exact"
        config = services.config
        self.view = View(config.radius_m, config.margin_m)
        #: The user's last position, degrees (None until the first location).
        self.position: tuple[float, float] | None = None
        self._last_sent_at: int | None = None
        self._shared = False
        self._backlog: list[Control] | None = []

    # --- opening and closing ----------------------------------------------------------------

    async def open(self) -> None:
        """Load the user and their friends, and subscribe to everything they need.

        Raises:
            DatabaseUnavailable, PubSubError: a backend is down (the caller closes with 1011).
        """
        user = await self.services.db.read(lambda conn: friends_db.get_user(conn, self.user_id))
        if user is not None:
            self.home_region, self.sharing, self.precision = (
                user.home_region,
                user.sharing_enabled,
                user.sharing_precision,
            )
        # The control channel first: a friendship made while the list loads is not missed.
        await self.hub.attach(self)
        friends = await self.services.db.read(lambda conn: friends_db.list_friends(conn, self.user_id))
        for friend in friends:
            self.view.add(friend.user_id)
        await self.hub.follow(self, {f.user_id: f.home_region for f in friends})
        backlog, self._backlog = self._backlog or [], None
        for event in backlog:
            self.control(event)

    async def close(self) -> None:
        """Unsubscribe, and tell friends the user is offline if this connection shared last."""
        self.stop()
        self.hub.detach(self)
        if self._shared and self.sharing:
            try:
                region = self.home_region or self.hub.regions.default.name
                if await self.services.cache.clear_if_mine(region, self.user_id, self.connection_id):
                    await self.hub.publish_location(region, self.user_id, encode_left(Left(self.user_id, "offline")))
            except _BACKEND_ERRORS as exc:
                log.warning("user %d: could not mark offline (%s); the cache TTL will", self.user_id, exc)

    # --- frames from the client -------------------------------------------------------------

    async def receive(self, data: str) -> None:
        """Handle one text frame; bad ones get an ``error`` frame and the loop goes on."""
        config = self.services.config
        try:
            event = parse_client_message(data, min_radius_m=config.min_radius_m, max_radius_m=config.max_radius_m)
        except InvalidMessage as exc:
            self.error(exc.code, exc.detail)
            return
        try:
            if isinstance(event, LocationUpdate):
                await self._location(event)
            elif isinstance(event, SettingsUpdate):
                self._settings(event)
            else:
                await self._sharing(event)
        except _BACKEND_ERRORS as exc:
            log.warning("user %d: %s failed: %s", self.user_id, type(event).__name__, exc)
            self.error(UNAVAILABLE, "the service is briefly unavailable; send it again")
        except Exception:  # a bug: log it, tell the client, keep the connection
            log.exception("user %d: %s failed unexpectedly", self.user_id, type(event).__name__)
            self.error(INTERNAL_ERROR, "the server failed to handle this message")

    def reject_binary(self) -> None:
        self.error(INVALID_MESSAGE, "binary frames are not accepted; send JSON text frames")

    def error(self, code: str, detail: str) -> None:
        self.hub.stats.errors[code] += 1
        self.send(encode_error(code, detail))

    async def _location(self, update: LocationUpdate) -> None:
        if not self.hub.bucket(self.user_id).allow(time.monotonic()):
            rate = self.services.config.max_updates_per_s
            self.error(RATE_LIMITED, f"at most {rate:g} location update(s) per second; this one was dropped")
            return
        self.hub.stats.updates += 1
        received = now_ms()
        self.services.history.append(
            history_db.HistoryRow(
                self.user_id,
                update.latitude,
                update.longitude,
                _utc(received),
                None if update.timestamp is None else _utc(update.timestamp),
            )
        )
        if self.home_region is None:
            await self._claim_home(update.latitude, update.longitude)
        self._last_sent_at = update.timestamp
        if self.sharing:
            await self._share(update.latitude, update.longitude, update.timestamp, received)
        if self.position is None:
            await self._init(update.latitude, update.longitude)
        else:
            self.position = (update.latitude, update.longitude)
            self._reevaluate()

    async def _share(self, latitude: float, longitude: float, sent_at: int | None, received: int) -> None:
        if self.precision == "coarse":
            latitude, longitude = coarsen(latitude, longitude)
        location = Location(self.user_id, latitude, longitude, received, sent_at, self.connection_id)
        region = self.home_region or self.hub.regions.default.name
        self._shared = True
        await self.services.cache.store(region, location)
        await self.hub.publish_location(region, self.user_id, encode_location(location))

    async def _claim_home(self, latitude: float, longitude: float) -> None:
        """Give the user a home region from their first location, and tell whoever follows."""
        wanted = self.hub.regions.region_for(latitude, longitude).name
        home, claimed = await self.services.db.write(
            lambda conn: friends_db.claim_home_region(conn, self.user_id, wanted)
        )
        log.debug("user %d: home region %s (%s)", self.user_id, home, "claimed now" if claimed else "already")
        self.home_region = home
        default = self.hub.regions.default.name
        if home == default:
            return  # the channels were in the default region all along
        await self.hub.move_home(self.user_id, home)
        if claimed:
            # Friends follow this user's channels in the default region until told.
            for friend_id in self.view.friends:
                await self.hub.publish_control(
                    self.hub.friend_region(friend_id), friend_id, FriendMoved(self.user_id, home)
                )
            await self.hub.publish_control(default, self.user_id, HomeMoved(home))

    async def _init(self, latitude: float, longitude: float) -> None:
        """Answer the first location with the friends in view, from the cache.

        Friends this process already knows a location of need no cache read: it has followed
        their channel since, so it holds their latest.
        """
        by_region: dict[str, list[int]] = {}
        known = self.hub.known
        for friend_id in self.view.friends:
            if friend_id not in known:
                by_region.setdefault(self.hub.friend_region(friend_id), []).append(friend_id)
        results = await asyncio.gather(*(self.services.cache.fetch(r, ids) for r, ids in by_region.items()))
        for found in results:
            for cached in found.values():
                self.hub.offer(cached)
        # From here on nothing awaits: updates arriving meanwhile are in hub.known already.
        self.position = (latitude, longitude)
        visible = []
        for friend_id in self.view.friends:
            location = self.hub.known.get(friend_id)
            if location is None:
                continue
            distance = haversine_m(latitude, longitude, location.latitude, location.longitude)
            if self.view.update(friend_id, distance) is Change.ENTER:
                visible.append(
                    FriendPosition(
                        friend_id,
                        location.latitude,
                        location.longitude,
                        distance,
                        location.updated_at,
                        location.sent_at,
                    )
                )
        visible.sort(key=lambda f: (f.distance_m, f.user_id))
        self.send(encode_init(self.view.radius_m, visible, self.sharing, self.precision))

    def _reevaluate(self) -> None:
        """The user moved or changed radius: friends may enter or leave the view."""
        known = self.hub.known
        for friend_id in self.view.friends:
            location = known.get(friend_id)
            if location is not None:
                self._judge(location, moved=False)

    def _settings(self, update: SettingsUpdate) -> None:
        self.view.radius_m = update.radius_m
        if self.position is not None:
            self._reevaluate()
        self.send(encode_settings(update.radius_m))

    async def _sharing(self, update: SharingUpdate) -> None:
        precision = update.precision or self.precision
        await self.services.db.write(
            lambda conn: friends_db.set_sharing(conn, self.user_id, enabled=update.enabled, precision=precision)
        )
        await self._apply_sharing(update.enabled, precision)
        # The user's other connections (on any server) follow.
        await self.hub.publish_control(
            self.home_region, self.user_id, SharingChanged(update.enabled, precision, self.connection_id)
        )
        self.send(encode_sharing(update.enabled, precision))

    async def _apply_sharing(self, enabled: bool, precision: str) -> None:
        was = (self.sharing, self.precision)
        self.sharing, self.precision = enabled, precision
        if was == (enabled, precision):
            return
        region = self.home_region or self.hub.regions.default.name
        if not enabled:
            self._shared = False
            await self.services.cache.clear(region, self.user_id)
            await self.hub.publish_location(region, self.user_id, encode_left(Left(self.user_id, "sharing_off")))
        elif self.position is not None:
            # Show the user again at once (or at the new precision), not at the next update.
            await self._share(self.position[0], self.position[1], self._last_sent_at, now_ms())

    # --- what the hub tells us ----------------------------------------------------------------

    def friend_moved(self, location: Location, pattern: FramePattern | None = None) -> None:
        """A followed friend shared a new location (``pattern``: its frame, less the distance)."""
        if self.position is not None:
            self._judge(location, moved=True, pattern=pattern)

    def _judge(self, location: Location, *, moved: bool, pattern: FramePattern | None = None) -> None:
        assert self.position is not None
        distance = haversine_m(self.position[0], self.position[1], location.latitude, location.longitude)
        change = self.view.update(location.user_id, distance)
        if change is Change.ENTER or (moved and change is Change.MOVE):
            self.hub.stats.deliveries += 1
            if pattern is None:
                pattern = friend_location_pattern(
                    location.user_id, location.latitude, location.longitude, location.updated_at, location.sent_at
                )
            self.send_friend(location.user_id, complete_friend_location(pattern, distance))
        elif change is Change.LEAVE:
            self.hub.stats.departures += 1
            self.send_friend(location.user_id, encode_friend_left(location.user_id, "out_of_range"))

    def friend_left(self, friend_id: int, reason: LeftReason) -> None:
        """A followed friend went offline, stopped sharing, expired or was unfriended."""
        if self.view.drop(friend_id):
            self.hub.stats.departures += 1
            self.send_friend(friend_id, encode_friend_left(friend_id, reason))

    def control(self, event: Control) -> None:
        """A control message for this user (friendship and preference changes)."""
        if self._backlog is not None:
            self._backlog.append(event)  # still loading the friend list; applied after it
            return
        if isinstance(event, FriendRemoved):
            if event.friend_id in self.view:
                self.hub.unfollow(self, [event.friend_id])
                if self.view.remove(event.friend_id):
                    self.hub.stats.departures += 1
                    self.send_friend(event.friend_id, encode_friend_left(event.friend_id, "unfriended"))
            return
        self._spawn(self._control(event))

    async def _control(self, event: Control) -> None:
        log.debug("user %d: control %s", self.user_id, event)
        try:
            if isinstance(event, FriendAdded):
                if not self.view.add(event.friend_id):
                    return
                await self.hub.follow(self, {event.friend_id: event.region})
                if self.position is not None:
                    region = self.hub.friend_region(event.friend_id)
                    found = await self.services.cache.fetch(region, [event.friend_id])
                    if event.friend_id in found and event.friend_id in self.view:
                        self._judge(self.hub.offer(found[event.friend_id]), moved=True)
            elif isinstance(event, FriendMoved):
                if event.friend_id in self.view:
                    await self.hub.move_friend(event.friend_id, event.region)
            elif isinstance(event, HomeMoved):
                self.home_region = event.region
                await self.hub.move_home(self.user_id, event.region)
            elif isinstance(event, SharingChanged) and event.origin != self.connection_id:
                await self._apply_sharing(event.enabled, event.precision)
                self.send(encode_sharing(event.enabled, event.precision))
        except _BACKEND_ERRORS as exc:
            log.warning("user %d: applying %s failed: %s", self.user_id, event, exc)
