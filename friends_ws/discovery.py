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

from friends_ws.cells import CellNews, cover, home_cell, precision_for
from friends_ws.discovery_frames import encode_discover, encode_stranger, encode_stranger_left, stranger_id
from friends_ws.metrics import Stats
from friends_ws.nearby import coarsen
from friends_ws.ports import CellListening, Sink
from friends_ws.session_config import SessionConfig
from friends_ws.strangers import Change, Shown, StrangerView
from geo_common import friends_db
from geo_common.database import Database

log = logging.getLogger(__name__)


class Discovery:
    """The strangers side of one connection.

    Args:
        user_id: the user (from the token).
        cells: the process's discovery cells.
        sink: the connection's outgoing side.
        stats: the process's counters.
        db: the PostgreSQL primary (who is never a stranger).
        config: the per-connection rules (radius, the most shown, lifetime of news).
    """

    __slots__ = (
        "user_id",
        "cells",
        "sink",
        "stats",
        "db",
        "radius_m",
        "precision",
        "refresh_ms",
        "enabled",
        "handle",
        "view",
        "_secret",
        "_loaded",
        "_listening",
        "_said",
        "_said_at",
    )

    def __init__(
        self, user_id: int, *, cells: CellListening, sink: Sink, stats: Stats, db: Database, config: SessionConfig
    ) -> None:
        self.user_id = user_id
        self.cells = cells
        self.sink = sink
        self.stats = stats
        self.db = db
        self.radius_m = config.discover_radius_m
        self.precision = precision_for(config.discover_radius_m)
        # A user standing still is heard again this often, so listeners never expire them.
        self.refresh_ms = config.discover_ttl_ms // 3
        self.enabled = False
        self.handle: str | None = None
        self.view = StrangerView(
            user_id, radius_m=config.discover_radius_m, cap=config.discover_max_shown, ttl_ms=config.discover_ttl_ms
        )
        self._secret = secrets.token_bytes(16)
        self._loaded = False
        self._listening: frozenset[str] = frozenset()
        # What the user last said in a cell: (cell, latitude, longitude, handle), or None.
        self._said: tuple[str, float, float, str | None] | None = None
        self._said_at = 0

    def ack(self) -> bytes:
        """The ``discover`` frame of the preference in force."""
        return encode_discover(self.enabled, self.handle, self.radius_m)

    async def located(self, latitude: float, longitude: float, now_ms: int, *, shared: bool) -> None:
        """The user is at this point: say so in their cell and listen around it (while
        ``shared``: sharing on)."""
        if not self.enabled:
            return
        if not shared:
            # Neither seen nor seeing while sharing is off: nobody watches without being seen.
            await self.stop(now_ms, "hidden")
            return
        await self._load()
        await self._say(latitude, longitude, now_ms)
        self._send(self.view.moved_to(latitude, longitude))
        await self._listen_around(latitude, longitude)

    async def set(
        self, enabled: bool, handle: str | None, *, position: tuple[float, float] | None, shared: bool, now_ms: int
    ) -> None:
        """Apply a new preference (stored already): acknowledged at once (a ``discover`` frame),
        then, with a known position, the user is heard and hears around it."""
        was = self.enabled
        self.enabled, self.handle = enabled, handle
        self.stats.sent["discover"] += 1
        self.sink.send(self.ack())
        if not enabled:
            if was:
                await self.stop(now_ms, "hidden")
            return
        if position is not None:
            await self.located(position[0], position[1], now_ms, shared=shared)

    async def withdraw(self, now_ms: int, reason: str) -> None:
        """Leave the user's cell (``hidden``: sharing or discovery off; ``offline``)."""
        said, self._said = self._said, None
        if said is not None:
            await self.cells.publish(CellNews(self.user_id, said[0], now_ms, gone=reason))

    async def stop(self, now_ms: int, reason: str | None) -> None:
        """Stop listening and leave the user's cell (discovery off, or the connection closed; a
        ``reason`` of None stays in it: the connection is handed over, and the next says more)."""
        listening, self._listening = self._listening, frozenset()
        self.cells.stop(self, listening)
        self.view.clear()
        if reason is not None:
            await self.withdraw(now_ms, reason)

    def exclude(self, user_id: int) -> None:
        """Never show this user (a friend now, or a friendship ended: perhaps by a block)."""
        self._send(self.view.exclude(user_id))

    # --- what the cells say (friends_ws.cell_channels.Listener) ---------------------------------

    def heard(self, news: CellNews) -> None:
        if self._loaded and not self.sink.closed:
            self._send(self.view.heard(news))

    def expire(self, now_ms: int) -> None:
        self._send(self.view.expire(now_ms))

    # --- inside -------------------------------------------------------------------------------

    async def _load(self) -> None:
        """Read who is never a stranger, once (the control channel keeps it current after)."""
        if self._loaded:
            return
        never = await self.db.read_primary(lambda conn: friends_db.never_strangers(conn, self.user_id))
        self.view.excluded |= never
        self._loaded = True

    async def _say(self, latitude: float, longitude: float, now_ms: int) -> None:
        """Put the user's coarse point in its cell: when it changed, or to be heard again."""
        lat, lon = coarsen(latitude, longitude)
        said = (home_cell(lat, lon, self.precision), lat, lon, self.handle)
        if said == self._said and now_ms - self._said_at < self.refresh_ms:
            return
        before, self._said, self._said_at = self._said, said, now_ms
        await self.cells.publish(CellNews(self.user_id, said[0], now_ms, lat, lon, self.handle))
        if before is not None and before[0] != said[0]:
            await self.cells.publish(CellNews(self.user_id, before[0], now_ms, gone="moved"))

    async def _listen_around(self, latitude: float, longitude: float) -> None:
        wanted = cover(latitude, longitude, self.radius_m, self.precision)
        if wanted == self._listening:
            return
        added = wanted - self._listening
        removed = self._listening - wanted
        self._listening = wanted
        try:
            present = await self.cells.listen(self, added)
        except BaseException:
            self._listening -= added
            self.cells.stop(self, added)
            raise
        self.cells.stop(self, removed)
        for news in present:
            self._send(self.view.heard(news))

    def _send(self, changes: list[Change]) -> None:
        for change in changes:
            sid = stranger_id(self._secret, change.user_id)
            if isinstance(change, Shown):
                frame = encode_stranger(
                    sid, change.handle, change.latitude, change.longitude, change.distance_m, change.at
                )
                self.stats.sent["stranger"] += 1
            else:
                frame = encode_stranger_left(sid, change.reason)
                self.stats.sent["stranger_left"] += 1
            self.sink.send_friend(~change.user_id, frame)  # never a friend's key (> 0)
