"""One connection's nearby strangers: what the user shows of themselves, and whom they see.

Off until the user turns it on (``discover``, stored on their row). While it is on, and
sharing is on, every location the user sends puts the centre of its geohash-6 cell
(:func:`friends_ws.nearby.coarsen`, never the point) into the discovery cell holding that
centre (:func:`friends_ws.cells.home_cell`), with the user's public handle if they chose one;
and the connection listens to the cells around the user (:func:`friends_ws.cells.cover`),
showing what its :class:`~friends_ws.strangers.StrangerView` decides.

Only a user who discovers sees strangers, and only strangers who discover are seen. Friends
(who see each other as friends or not at all) and users either of the two blocked are never
shown: read from the primary before the first stranger can be, and kept current by the
control channel (a friendship made or ended, a block).

Moving to other cells listens to the new ones first (confirmed, and their members read), then
stops the old ones, so no stranger disappears in between; a publisher that changes cells
speaks in the new one first, then leaves the old one (``moved``).
"""

from __future__ import annotations

import logging
import secrets

from friends_ws.cells import CellNews, cover, home_cell
from friends_ws.discovery_frames import encode_discover, encode_stranger, encode_stranger_left, stranger_id
from friends_ws.nearby import coarsen
from friends_ws.ports import Sink
from friends_ws.services import Services
from friends_ws.strangers import Change, Shown, StrangerView
from geo_common import friends_db

log = logging.getLogger(__name__)

#: No cells (one object for every connection that listens to none: most of them).
_NO_CELLS: frozenset[str] = frozenset()


class Discovery:
    """The strangers side of one connection.

    Nothing but the preference is held until the user turns discovery on (most never do, and
    every connection has one of these): the view, the connection's secret and the cells come
    with the first location while it is on.

    Args:
        user_id: the user (from the token).
        services: what every session uses (the cells, the counters, the primary, the rules).
        sink: the connection's outgoing side.
    """

    __slots__ = (
        "user_id",
        "services",
        "sink",
        "enabled",
        "handle",
        "view",
        "_secret",
        "_listening",
        "_said",
        "_said_data",
        "_said_at",
    )

    def __init__(self, user_id: int, services: Services, sink: Sink) -> None:
        self.user_id = user_id
        self.services = services
        self.sink = sink
        self.enabled = False
        self.handle: str | None = None
        #: The strangers shown (None until discovery is first used on this connection).
        self.view: StrangerView | None = None
        self._secret = b""
        self._listening = _NO_CELLS
        # What the user last said in a cell: (cell, latitude, longitude, handle), or None.
        self._said: tuple[str, float, float, str | None] | None = None
        self._said_data: bytes | None = None  # the message of it
        self._said_at = 0

    def ack(self) -> bytes:
        """The ``discover`` frame of the preference in force."""
        return encode_discover(self.enabled, self.handle, self.services.config.discover_radius_m)

    async def located(self, latitude: float, longitude: float, now_ms: int, *, shared: bool) -> None:
        """The user is at this point: say so in their cell and listen around it (while
        ``shared``: sharing on)."""
        if not self.enabled:
            return
        if not shared:
            # Neither seen nor seeing while sharing is off: nobody watches without being seen.
            await self.stop(now_ms, "hidden")
            return
        view = await self._load()
        await self._say(latitude, longitude, now_ms)
        self._send(view.moved_to(latitude, longitude))
        await self._listen_around(view, latitude, longitude, now_ms)

    async def set(
        self, enabled: bool, handle: str | None, *, position: tuple[float, float] | None, shared: bool, now_ms: int
    ) -> None:
        """Apply a new preference (stored already): acknowledged at once (a ``discover`` frame),
        then, with a known position, the user is heard and hears around it."""
        was = self.enabled
        self.enabled, self.handle = enabled, handle
        self.services.stats.sent["discover"] += 1
        self.sink.send(self.ack())
        if not enabled:
            if was:
                await self.stop(now_ms, "hidden")
            return
        if position is not None:
            await self.located(position[0], position[1], now_ms, shared=shared)

    async def withdraw(self, now_ms: int, reason: str, *, if_last: bool = False) -> bool:
        """Leave the user's cell (``hidden``: sharing or discovery off; ``offline``); with
        ``if_last``, only if no other connection of the user spoke there since this one.
        Whether the user left it (was in it, and this connection spoke for them)."""
        said, self._said = self._said, None
        data, self._said_data = self._said_data, None
        if said is None:
            return False
        news = CellNews(self.user_id, said[0], now_ms, gone=reason)
        return await self.services.cells.publish(news, if_still=data if if_last else None) is not None

    async def stop(self, now_ms: int, reason: str | None, *, if_last: bool = False) -> bool:
        """Stop listening and leave the user's cell (discovery off, or the connection closed: a
        closed socket ``if_last``, see :meth:`withdraw`; a ``reason`` of None stays in it: the
        connection is handed over, and the next says more). Whether the user left the cell."""
        listening, self._listening = self._listening, _NO_CELLS
        self.services.cells.stop(self, listening)
        if self.view is not None:
            self.view.clear()
        if reason is None:
            return False
        return await self.withdraw(now_ms, reason, if_last=if_last)

    async def speak_again(self, position: tuple[float, float] | None, now_ms: int, *, shared: bool) -> None:
        """Put the user back in their cell at this connection's last position: the connection
        that spoke for them closed (a :class:`~geo_common.presence.SpeakerLeft`)."""
        if self.enabled and position is not None and not self.sink.closed:
            self._said = None
            await self.located(position[0], position[1], now_ms, shared=shared)

    def exclude(self, user_id: int) -> None:
        """Never show this user (a friend now, or a friendship ended: perhaps by a block); before
        the view exists, the primary says so when it is made."""
        if self.view is not None:
            self._send(self.view.exclude(user_id))

    # --- what the cells say (friends_ws.cell_channels.Listener) ---------------------------------

    def heard(self, news: CellNews) -> None:
        if self.view is not None and self._secret and not self.sink.closed:
            self._send(self.view.heard(news))

    def expire(self, now_ms: int) -> None:
        if self.view is not None:
            self._send(self.view.expire(now_ms))

    # --- inside -------------------------------------------------------------------------------

    async def _load(self) -> StrangerView:
        """The view, made on first use with who is never a stranger, read on the primary (the
        control channel keeps that current after; the secret is set once it is read, and no
        stranger is shown before)."""
        if self.view is None:
            config = self.services.config
            self.view = StrangerView(
                self.user_id,
                radius_m=config.discover_radius_m,
                cap=config.discover_max_shown,
                ttl_ms=config.discover_ttl_ms,
            )
        if not self._secret:
            never = await self.services.db.read_primary(lambda conn: friends_db.never_strangers(conn, self.user_id))
            self.view.excluded |= never
            self._secret = secrets.token_bytes(16)
        return self.view

    async def _say(self, latitude: float, longitude: float, now_ms: int) -> None:
        """Put the user's coarse point in its cell: when it changed, or to be heard again."""
        config, cells = self.services.config, self.services.cells
        lat, lon = coarsen(latitude, longitude)
        said = (home_cell(lat, lon, config.discover_precision), lat, lon, self.handle)
        # A user standing still is said again every third of the TTL, so listeners never expire them.
        if said == self._said and now_ms - self._said_at < config.discover_ttl_ms // 3:
            return
        before, self._said, self._said_at = self._said, said, now_ms
        self._said_data = await cells.publish(CellNews(self.user_id, said[0], now_ms, lat, lon, self.handle))
        if before is not None and before[0] != said[0]:
            await cells.publish(CellNews(self.user_id, before[0], now_ms, gone="moved"))

    async def _listen_around(self, view: StrangerView, latitude: float, longitude: float, now_ms: int) -> None:
        config, cells = self.services.config, self.services.cells
        wanted = cover(latitude, longitude, config.discover_radius_m, config.discover_precision)
        if wanted == self._listening:
            return
        added = wanted - self._listening
        removed = self._listening - wanted
        self._listening = wanted
        try:
            present = await cells.listen(self, added, now_ms)
        except BaseException:
            self._listening -= added
            cells.stop(self, added)
            raise
        cells.stop(self, removed)
        for news in present:
            self._send(view.heard(news))

    def _send(self, changes: list[Change]) -> None:
        for change in changes:
            sid = stranger_id(self._secret, change.user_id)
            if isinstance(change, Shown):
                frame = encode_stranger(
                    sid, change.handle, change.latitude, change.longitude, change.distance_m, change.at
                )
                self.services.stats.sent["stranger"] += 1
            else:
                frame = encode_stranger_left(sid, change.reason)
                self.services.stats.sent["stranger_left"] += 1
            self.sink.send_friend(~change.user_id, frame)  # never a friend's key (> 0)
