"""What one connection's user shares: their sharing preference, home region and location.

The part of a :class:`~friends_ws.session.Session` that keeps what others may see of the user:
the location shared (cached with its TTL and published, :mod:`friends_ws.share`), marked away
when the socket closes, erased on ``sign_out``; the sharing preference (stored on the primary,
followed by the user's other connections through the control channel); the home region.

Everything that decides what others may see of the user is read on the PostgreSQL primary:
a replica that trails must not turn sharing back on that the user just turned off.
"""

from __future__ import annotations

import logging
import secrets

import asyncpg
from redis.exceptions import RedisError

from friends_ws.clock import now_ms
from friends_ws.discovery import Discovery
from friends_ws.following import Following
from friends_ws.ports import SessionLink
from friends_ws.privacy import sharing_of
from friends_ws.protocol import (
    SIGNED_OUT,
    Sharing,
    SharingUpdate,
    encode_error,
    encode_pace,
    encode_sharing,
)
from friends_ws.services import Services
from friends_ws.share import announce_home, claim_home, share
from geo_common import friends_db
from geo_common.database import DatabaseUnavailable
from geo_common.presence import Left, Location, Watching, encode_left, encode_watching
from geo_common.control_messages import SharingChanged
from pubsub import PubSubError

log = logging.getLogger(__name__)

#: A backend (PostgreSQL, Redis) is down or unreachable: the request fails, the session lives.
BACKEND_ERRORS = (DatabaseUnavailable, PubSubError, RedisError, asyncpg.PostgresError, OSError, TimeoutError)


class UserSharing:
    """What one connection's user shares: their preference, home region and location.

    Args:
        services: what every session of the process uses (subscriptions, publishing, cache,
            database, history writer, rules).
        link: the connection's outgoing side.
        user_id: the authenticated user (from the token, never from the client).
    """

    __slots__ = (
        "services",
        "link",
        "user_id",
        "connection_id",
        "home_region",
        "sharing",
        "following",
        "discovery",
        "_last_sent_at",
        "_shared",
        "_changes",
        "_pace_s",
    )

    def __init__(self, services: Services, link: SessionLink, user_id: int) -> None:
        self.services = services
        self.link = link
        self.user_id = user_id
        #: Identifies this connection's writes to the cache.
        self.connection_id = secrets.token_hex(8)
        self.home_region: str | None = None
        self.sharing = Sharing()
        self.following = Following(
            user_id,
            locations=services.friends,
            stats=services.stats,
            db=services.db,
            sink=link,
            radius_m=services.config.radius_m,
            margin_m=services.config.margin_m,
        )
        self._last_sent_at: int | None = None
        self._shared = False
        # Changes of the user's own state here (sharing, home region): a re-read of the user's
        # row started before the last one may be stale.
        self._changes = 0
        # The pace last sent to the client, seconds (None before init).
        self._pace_s: int | None = None
        self.following.on_watched = self._paced
        self.discovery = Discovery(user_id, services, link)

    @property
    def _region(self) -> str:
        """Where the user's channels and cached location live now."""
        return self.home_region or self.services.regions.default.name

    async def _publish(self, region: str, data: bytes) -> None:
        """Publish on the user's location channel in ``region`` (what followers hear)."""
        await self.services.publisher.publish_location(region, self.user_id, data)

    def _send(self, kind: str, frame: bytes) -> None:
        """Queue a frame of ``kind`` (counted on ``/metrics``)."""
        self.services.stats.sent[kind] += 1
        self.link.send(frame)

    def error(self, code: str, detail: str) -> None:
        self.services.stats.errors[code] += 1
        self.link.send(encode_error(code, detail))

    async def _share(self, latitude: float, longitude: float, sent_at: int | None, received: int) -> None:
        location = Location(
            self.user_id,
            latitude,
            longitude,
            received,
            sent_at,
            self.connection_id,
            live=True,
            radius_m=self.following.view.radius_m,
        )
        self._shared = True
        await share(self.services, self._region, location, self.sharing)

    async def _mark_away(self) -> None:
        """The socket closed: if this connection shared last, mark the cached location away and
        tell followers the user is not looking any more (their friends' pace slows)."""
        if not (self._shared and self.sharing.enabled):
            return
        try:
            region = self._region
            if await self.services.cache.mark_away_if_mine(region, self.user_id, self.connection_id):
                await self._publish(region, encode_watching(Watching(self.user_id, False, 0.0)))
        except BACKEND_ERRORS as exc:
            log.warning("user %d: could not mark away (%s); friends' pace follows later", self.user_id, exc)

    async def _claim_home(self, latitude: float, longitude: float) -> None:
        """Give the user a home region from their location; when it is not the default, follow
        the control channel there and tell whoever follows the user (every connection that
        learns a new home says so, so a connection that claimed and failed to publish is made
        good by the next)."""
        home = await claim_home(self.services, self.user_id, latitude, longitude)
        self.home_region = home
        self._changes += 1
        if home == self.services.regions.default.name:
            return  # the channels were in the default region all along
        await self.services.subscriptions.move_home(self.user_id, home)
        await announce_home(self.services, self.user_id, home)

    async def _sign_out(self) -> None:
        """The user signs out: their location is erased, friends see them go, the socket closes."""
        if self.sharing.enabled:
            region = self._region
            await self.services.cache.clear(region, self.user_id)
            await self._publish(region, encode_left(Left(self.user_id, "offline")))
        self._shared = False
        await self.discovery.stop(now_ms(), "offline")
        self.link.close(SIGNED_OUT, b"signed out")

    async def _announce(self, data: bytes) -> None:
        try:
            await self._publish(self._region, data)
        except BACKEND_ERRORS as exc:
            log.warning("user %d: could not announce a new radius (%s); the next location will", self.user_id, exc)

    async def _sharing(self, update: SharingUpdate) -> None:
        new = self.sharing.updated(update)
        await self.services.db.write(
            lambda conn: friends_db.set_sharing(
                conn, self.user_id, enabled=new.enabled, precision=new.precision, private_history=new.private_history
            )
        )
        await self._apply_sharing(new)
        # The user's other connections (on any server) follow.
        await self.services.publisher.publish_control(
            self.home_region,
            self.user_id,
            SharingChanged(new.enabled, new.precision, self.connection_id, new.private_history),
        )
        self._send("sharing", encode_sharing(new))
        self._paced()

    def _paced(self) -> None:
        """Send the pace the client should keep, if it changed: fast while a friend watches the
        user and the user shares (nobody sees a user who does not), slow otherwise."""
        if self.following.position is None:
            return  # sent after init
        interval_s = self.services.config.pace.interval_s(self.following.watched and self.sharing.enabled)
        if interval_s != self._pace_s:
            self._pace_s = interval_s
            self._send("pace", encode_pace(interval_s))

    async def _apply_sharing(self, new: Sharing) -> None:
        was, self.sharing = self.sharing, new
        self._changes += 1
        if (was.enabled, was.precision) == (new.enabled, new.precision):
            return
        region = self._region
        position = self.following.position
        if not new.enabled:
            self._shared = False
            await self.services.cache.clear(region, self.user_id)
            await self._publish(region, encode_left(Left(self.user_id, "sharing_off")))
            await self.discovery.stop(now_ms(), "hidden")
        elif position is not None:
            # Show the user again at once (or at the new precision), not at the next update.
            await self._share(position[0], position[1], self._last_sent_at, now_ms())
            await self.discovery.located(position[0], position[1], now_ms(), shared=True)

    async def reload(self) -> None:
        """Re-read the user's row from the primary after a pub/sub outage: a sharing or discovery
        change or an erasure made meanwhile on another connection applies here too (unless this
        connection changed something during the read, which the read may predate)."""
        before = self._changes
        try:
            user = await self.services.db.read_primary(lambda conn: friends_db.get_user(conn, self.user_id))
        except BACKEND_ERRORS as exc:
            log.warning("user %d: could not re-read the user (%s)", self.user_id, exc)
            return
        if self._changes != before:
            return
        sharing = sharing_of(user)
        if sharing != self.sharing:
            await self._sharing_changed(sharing)
        discover = (False, None) if user is None else (user.discover, user.public_handle)
        if discover != (self.discovery.enabled, self.discovery.handle):
            try:
                position = self.following.position
                await self.discovery.set(*discover, position=position, shared=self.sharing.enabled, now_ms=now_ms())
            except BACKEND_ERRORS as exc:
                log.warning("user %d: applying a discovery change failed: %s", self.user_id, exc)
        home = None if user is None else user.home_region
        if home != self.home_region:
            self.home_region = home
            await self._moved_home(home)

    async def _moved_home(self, region: str | None) -> None:
        try:
            await self.services.subscriptions.move_home(self.user_id, region)
        except BACKEND_ERRORS as exc:
            log.warning("user %d: moving the control channel failed: %s", self.user_id, exc)

    async def _sharing_changed(self, sharing: Sharing) -> None:
        try:
            await self._apply_sharing(sharing)
        except BACKEND_ERRORS as exc:
            log.warning("user %d: applying a sharing change failed: %s", self.user_id, exc)
        self._send("sharing", encode_sharing(sharing))
        self._paced()
