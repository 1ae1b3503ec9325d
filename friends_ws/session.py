"""One client connection: what the user sends, what they share, and what they are sent.

The session decodes a client frame with :func:`~friends_ws.protocol.parse_client_message`,
updates the cache, pub/sub and history, and hands the encoded frames to the link it holds
(:class:`~friends_ws.ports.SessionLink`). It reaches the rest of the process only through the
interfaces of :mod:`friends_ws.ports`, so its decisions run without a socket. What the user
sees of their friends is its :class:`~friends_ws.following.Following`'s.

Everything that decides what others may see of the user is read on the PostgreSQL primary:
a replica that trails must not turn sharing back on that the user just turned off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from typing import Any


from friends_ws.clock import now_ms
from friends_ws.discovery_frames import DiscoverUpdate
from friends_ws.ports import SessionLink
from friends_ws.privacy import sharing_of
from friends_ws.protocol import (
    INTERNAL_ERROR,
    INVALID_MESSAGE,
    INVALID_TOKEN,
    RATE_LIMITED,
    TOKEN_EXPIRED,
    UNAVAILABLE,
    AuthUpdate,
    InvalidMessage,
    LocationUpdate,
    SettingsUpdate,
    Sharing,
    SignOut,
    encode_auth,
    encode_friend_request,
    encode_init,
    encode_resumed,
    encode_settings,
    parse_client_message,
)
from friends_ws.services import Services
from friends_ws.user_sharing import BACKEND_ERRORS
from friends_ws.user_sharing import UserSharing
from friends_ws.share import record_history
from geo_common import friends_db
from geo_common.presence import Watching, encode_watching
from geo_common.control_messages import (
    Control,
    DiscoveryChanged,
    Erased,
    FriendAdded,
    FriendRemoved,
    FriendShares,
    HomeMoved,
    RequestReceived,
    SharingChanged,
    SpeakerLeft,
)
from geo_common.provider_keys import KeysUnavailable
from geo_common.tokens import TokenError

log = logging.getLogger(__name__)

#: How far ahead of this server's clock a resuming client's ``at`` may be (another instance's
#: clock wrote it), milliseconds.
_SKEW_MS = 60_000


class Session(UserSharing):
    """The state of one WebSocket connection of one user.

    Args:
        services: what every session of the process uses (subscriptions, publishing, cache,
            database, history writer, rules).
        link: the connection's outgoing side.
        user_id: the authenticated user (from the token, never from the client).
    """

    __slots__ = ("_backlog",)

    def __init__(self, services: Services, link: SessionLink, user_id: int) -> None:
        super().__init__(services, link, user_id)
        self._backlog: list[Control] | None = []

    @property
    def loading(self) -> bool:
        """Still opening (control messages wait in the backlog until what is true is read)."""
        return self._backlog is not None

    async def open(self) -> None:
        """Load the user and what their friends share with them, from the primary, and
        subscribe to everything they need.

        Raises:
            DatabaseUnavailable, PubSubError: a backend is down (the caller closes with 1013).
        """
        db = self.services.db
        user = await db.read_primary(lambda conn: friends_db.get_user(conn, self.user_id))
        self.home_region = None if user is None else user.home_region
        # The control channel first, then what is true: a change made while this loads is
        # either in what is read or in a message waiting in the backlog.
        await self.services.subscriptions.attach(self)
        user, grants = await db.read_primary(lambda conn: friends_db.user_and_grants(conn, self.user_id))
        self.sharing = sharing_of(user)
        if user is not None:
            self.discovery.enabled, self.discovery.handle = user.discover, user.public_handle
        home = None if user is None else user.home_region
        if home is not None and home != self.home_region:
            self.home_region = home
            await self.services.subscriptions.move_home(self.user_id, home)
        await self.following.regrant(grants, initial=True)
        backlog, self._backlog = self._backlog or [], None
        for event in backlog:
            self.control(event)

    async def close(self, *, handed_over: bool = False) -> None:
        """Unsubscribe. A closed socket is not a user gone: friends keep their last position
        until it expires; the location is only marked away, unless the connection was
        ``handed_over`` by a drain (the user reconnects elsewhere at once)."""
        self.link.stop()
        self.services.lifetimes.forget(self)
        self.services.subscriptions.detach(self)
        try:
            if await self.discovery.stop(now_ms(), None if handed_over else "offline", if_last=True):
                # This connection spoke for the user: another of theirs that is open says it again.
                await self.services.publisher.publish_control(
                    self.home_region, self.user_id, SpeakerLeft(self.connection_id)
                )
        except BACKEND_ERRORS as exc:
            log.warning("user %d: could not leave the discovery cell (%s); it expires", self.user_id, exc)
        if not handed_over:
            await self._mark_away()

    async def receive(self, data: str) -> None:
        """Handle one text frame; bad ones get an ``error`` frame and the loop goes on.

        Every frame is checked against the user's rate limits first: one over them is
        answered ``rate_limited`` and not applied at all (nothing is written or published).
        """
        if self.link.closed:
            return  # closing (its token expired, or it reads too slowly): nothing more is applied
        config = self.services.config
        try:
            event = parse_client_message(data, min_radius_m=config.min_radius_m, max_radius_m=config.max_radius_m)
        except InvalidMessage as exc:
            self.services.stats.received["invalid"] += 1
            self.error(exc.code, exc.detail)
            return
        self.services.stats.received[event.kind] += 1
        refusal = self.services.limits.refusal(self.user_id, event, time.monotonic())
        if refusal is not None:
            self.error(RATE_LIMITED, refusal)
            return
        try:
            if isinstance(event, LocationUpdate):
                await self._location(event)
            elif isinstance(event, SettingsUpdate):
                self._settings(event)
            elif isinstance(event, AuthUpdate):
                await self._auth(event)
            elif isinstance(event, SignOut):
                await self._sign_out()
            elif isinstance(event, DiscoverUpdate):
                await self._discover(event)
            else:
                await self._sharing(event)
        except BACKEND_ERRORS as exc:
            log.warning("user %d: %s failed: %s", self.user_id, type(event).__name__, exc)
            self.error(UNAVAILABLE, "the service is briefly unavailable; send it again")
        except Exception:  # a bug: log it, tell the client, keep the connection
            log.exception("user %d: %s failed unexpectedly", self.user_id, type(event).__name__)
            self.error(INTERNAL_ERROR, "the server failed to handle this message")

    def reject_binary(self) -> None:
        self.error(INVALID_MESSAGE, "binary frames are not accepted; send JSON text frames")

    async def _location(self, update: LocationUpdate) -> None:
        self.services.stats.updates += 1
        received = now_ms()
        record_history(
            self.services,
            self.user_id,
            update.latitude,
            update.longitude,
            self.sharing,
            received_ms=received,
            sent_at_ms=update.timestamp,
        )
        if self.home_region is None:
            await self._claim_home(update.latitude, update.longitude)
        self._last_sent_at = update.timestamp
        following = self.following
        resume = update.resume
        if following.position is None and resume is not None:
            if -_SKEW_MS <= received - resume.at <= self.services.config.resume_ms:
                if resume.radius_m is not None:
                    following.view.radius_m = resume.radius_m
            else:
                resume = None  # the window passed: a fresh init
        if self.sharing.enabled:
            await self._share(update.latitude, update.longitude, update.timestamp, received)
        if following.position is None:
            held = None if resume is None else resume.friends
            friends, gone = await following.first_view(update.latitude, update.longitude, held, now_ms=received)
            radius_m = following.view.radius_m
            if resume is None:
                self._send("init", encode_init(radius_m, friends, self.sharing, received))
            else:
                self._send("resumed", encode_resumed(radius_m, self.sharing, received))
                following.catch_up(friends, gone)
            self._pace_s = None
            self._paced()
            if self.discovery.enabled:
                self._send("discover", self.discovery.ack())
        else:
            following.prune_watchers(self.services.config.pace, received)
            following.moved_to(update.latitude, update.longitude)
        await self.discovery.located(update.latitude, update.longitude, received, shared=self.sharing.enabled)

    async def _auth(self, update: AuthUpdate) -> None:
        """A fresh token: the connection lives until its expiry, if it is the same user's."""
        try:
            verified = await self.services.verifier.verify(update.token)
        except KeysUnavailable:
            self.error(UNAVAILABLE, "tokens cannot be verified right now; send it again")
            return
        except TokenError as exc:
            self.error(INVALID_TOKEN, f"{exc}; the connection keeps its token's expiry")
            return
        if verified.user_id != self.user_id:
            self.error(INVALID_TOKEN, "the token is another user's; the connection keeps its token's expiry")
            return
        self.services.lifetimes.watch(self, verified.expires_at)
        self.services.stats.reauths += 1
        self._send("auth", encode_auth(verified.expires_at))

    def token_expired(self) -> None:
        """The token expired and no fresh one came: close with 4001 (the client signs in again)."""
        if self.link.closed:
            return
        self.services.stats.token_expiries += 1
        self.link.close(TOKEN_EXPIRED, b"token expired")

    def _settings(self, update: SettingsUpdate) -> None:
        self.following.view.radius_m = update.radius_m
        self.following.reevaluate()
        self._send("settings", encode_settings(update.radius_m))
        if self._shared and self.sharing.enabled:
            # Whom the user watches changed: their friends' pace may too.
            self.link.spawn(self._announce(encode_watching(Watching(self.user_id, True, update.radius_m))))

    async def _discover(self, update: DiscoverUpdate) -> None:
        """Turn discovery on or off (stored, then applied here and on the user's other connections)."""
        handle = self.discovery.handle if update.keep_handle else update.handle
        await self.services.db.write(
            lambda conn: friends_db.set_discovery(conn, self.user_id, enabled=update.enabled, handle=handle)
        )
        await self._discovery_changed(update.enabled, handle)
        await self.services.publisher.publish_control(
            self.home_region, self.user_id, DiscoveryChanged(update.enabled, handle, self.connection_id)
        )

    async def _discovery_changed(self, enabled: bool, handle: str | None) -> None:
        position = self.following.position
        await self.discovery.set(enabled, handle, position=position, shared=self.sharing.enabled, now_ms=now_ms())

    async def _quietly(self, work: Coroutine[Any, Any, object], what: str) -> None:
        """Background work a control message started: a backend failure is logged (the next
        location says it again)."""
        try:
            await work
        except BACKEND_ERRORS as exc:
            log.warning("user %d: could not %s: %s", self.user_id, what, exc)

    def control(self, event: Control) -> None:
        """A control message for this user (friendship and preference changes)."""
        if self._backlog is not None:
            self._backlog.append(event)  # still loading; applied after what was read
            return
        if isinstance(event, FriendAdded | FriendRemoved):
            self.discovery.exclude(event.friend_id)
        if isinstance(event, FriendAdded | FriendRemoved | FriendShares):
            self.following.control(event)
        elif isinstance(event, RequestReceived):
            self._send("friend_request", encode_friend_request(event.from_id, event.display_name))
        elif isinstance(event, Erased):
            # The home region is forgotten: the next location claims one again.
            self._changes += 1
            self.home_region = None
            self.link.spawn(self._moved_home(None))
            self.link.spawn(self._quietly(self.discovery.withdraw(now_ms(), "offline"), "leave the discovery cell"))
        elif isinstance(event, HomeMoved):
            self._changes += 1
            self.home_region = event.region
            self.link.spawn(self._moved_home(event.region))
        elif isinstance(event, DiscoveryChanged) and event.origin != self.connection_id:
            self.link.spawn(self._quietly(self._discovery_changed(event.enabled, event.handle), "follow discovery"))
        elif isinstance(event, SpeakerLeft) and event.origin != self.connection_id:
            position, shared = self.following.position, self.sharing.enabled
            self.link.spawn(
                self._quietly(self.discovery.speak_again(position, now_ms(), shared=shared), "speak for the user")
            )
        elif isinstance(event, SharingChanged) and event.origin != self.connection_id:
            self.link.spawn(self._sharing_changed(Sharing(event.enabled, event.precision, event.private_history)))
