"""The friends one connection follows, as the database says: what each lets the viewer see.
What the viewer sees of their moves is :class:`~friends_ws.viewing.Viewing`'s.

What the viewer may see of each friend (:data:`~friends_ws.privacy.Seen`) changes three ways:

* a **restriction** (a friend removed, hiding, switching this viewer to coarse), from the
  friend's location channel or the viewer's control channel, is applied at once;
* a **grant** (a new friend, an un-hidden one, coarse back to exact) only tells the
  connection to look: it re-reads the pair from the PostgreSQL primary and applies what is
  true there, so a late, repeated or forged message never shows more than the database
  allows. A restriction that arrives while such a read is under way may postdate it, so the
  read is repeated (:attr:`Following.restrictions` counts them);
* a **regrant**: every grant of the viewer, read from the primary when the connection opens
  and after each pub/sub reconnection.

A friend who hides is not followed at all (no subscription for this connection); a coarse
friend is shown, in ``init`` and ``friend_location`` alike, as the centre of their
geohash-6 cell, and the distance is computed from that point.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import asyncpg
from redis.exceptions import RedisError

from friends_ws.metrics import Stats
from friends_ws.ports import FriendLocations, Sink
from friends_ws.viewing import Viewing
from friends_ws.privacy import Seen, grants, seen_for
from friends_ws.protocol import encode_friend_added
from geo_common import friends_db
from geo_common.database import Database, DatabaseUnavailable
from geo_common.friends_db import Grant
from geo_common.presence import AccessLevel
from geo_common.control_messages import FriendAdded, FriendRemoved, FriendShares
from pubsub import PubSubError

log = logging.getLogger(__name__)

#: The cache could not answer (its breaker is open, or Redis is down).
_CACHE_ERRORS = (ConnectionError, OSError, TimeoutError, RedisError)
#: Following a friend failed: the database or pub/sub could not answer.
_BACKEND_ERRORS = (DatabaseUnavailable, asyncpg.PostgresError, PubSubError, *_CACHE_ERRORS)
#: How many times a grant is re-read when restrictions keep arriving during the read; after
#: that nothing more is shown (the next message or reconnection looks again).
CONFIRM_ATTEMPTS = 3


async def _read_grant(
    conn: asyncpg.Connection, viewer: int, friend: int, *, named: bool
) -> tuple[Grant | None, str | None]:
    grant = await friends_db.grant_to(conn, viewer, friend)
    if grant is None or not named:
        return grant, None
    user = await friends_db.get_user(conn, friend)
    return grant, None if user is None else user.display_name


class Following(Viewing):
    """Whom one connection's user follows, and what they see of each (the database's word).

    Args:
        user_id: the viewer.
        locations: the friends followed in the process (subscriptions, latest locations).
        stats: the process's counters.
        db: the database (grants are read on its primary).
        sink: the connection's frames and background tasks.
        radius_m: the initial radius, metres.
        margin_m: the hysteresis margin, metres.
    """

    __slots__ = ("db", "_restrictions")

    def __init__(
        self,
        user_id: int,
        *,
        locations: FriendLocations,
        stats: Stats,
        db: Database,
        sink: Sink,
        radius_m: float,
        margin_m: float,
    ) -> None:
        super().__init__(user_id, locations=locations, stats=stats, sink=sink, radius_m=radius_m, margin_m=margin_m)
        self.db = db
        self._restrictions = 0

    @property
    def restrictions(self) -> int:
        """Restricting messages applied so far (a grant read started before the last is stale)."""
        return self._restrictions

    # --- what friends let the viewer see -----------------------------------------------------

    def access_changed(self, friend_id: int, level: AccessLevel) -> None:
        """What a friend lets the viewer see changed (an ``access`` message on the friend's
        channel, or ``friend_shares`` on the viewer's): restrictions now, grants once confirmed."""
        target = seen_for(level)
        if grants(self.seen(friend_id), target):
            self.sink.spawn(self.confirm(friend_id))
        else:
            self.restrict(friend_id, target)

    def control(self, event: FriendAdded | FriendRemoved | FriendShares) -> None:
        """A friendship message on the viewer's control channel."""
        if isinstance(event, FriendRemoved):
            self.restrict(event.friend_id, "none")
        elif isinstance(event, FriendAdded):
            self.sink.spawn(self.confirm(event.friend_id, announce=True))
        else:
            self.access_changed(event.friend_id, event.level)

    def restrict(self, friend_id: int, target: Seen) -> None:
        """Show the viewer no more than ``target`` of a friend, at once (from a message)."""
        # Counted even when it changes nothing here: a grant being read now may predate it.
        self._restrictions += 1
        current = self.seen(friend_id)
        if current != "none" and current != target and not grants(current, target):
            self._change(friend_id, current, target)

    async def confirm(self, friend_id: int, *, announce: bool = False) -> None:
        """Re-read what a friend shares with the viewer on the primary, and apply it.

        Args:
            friend_id: the other user.
            announce: a new friendship: send ``friend_added`` when the primary confirms it.
        """
        for _ in range(CONFIRM_ATTEMPTS):
            before = self._restrictions
            try:
                grant, name = await self.db.read_primary(
                    lambda conn: _read_grant(conn, self._user_id, friend_id, named=announce)
                )
                if self._restrictions != before:
                    continue  # a restriction arrived during the read, which may predate it
                if announce and grant is not None and self.seen(friend_id) == "none":
                    self.stats.sent["friend_added"] += 1
                    self.sink.send(encode_friend_added(friend_id, name))
                target = seen_for(None if grant is None else grant.level)
                await self._become({friend_id: (target, None if grant is None else grant.home_region)})
            except _BACKEND_ERRORS as exc:
                log.warning("user %d: could not apply a grant (%s); the next change looks again", self._user_id, exc)
            return
        log.info("user %d: grants kept changing while being read; nothing more is shown", self._user_id)

    async def regrant(self, grants_now: list[Grant], *, initial: bool = False) -> None:
        """Every grant of the viewer, just read from the primary: follow, drop or change each friend.

        Args:
            grants_now: what each friend shares with the viewer.
            initial: the connection is opening (new friends are no news: no ``friend_added``).
        """
        targets: dict[int, tuple[Seen, str | None]] = {
            g.friend_id: (seen_for(g.level), g.home_region) for g in grants_now
        }
        for friend_id in [*self.view.friends, *(self._hidden or ())]:
            targets.setdefault(friend_id, ("none", None))
        if not initial:
            new = [f for f, (target, _) in targets.items() if target != "none" and self.seen(f) == "none"]
            for friend_id in new:  # friendships made meanwhile: announced as a friend_added message would
                del targets[friend_id]
                self.sink.spawn(self.confirm(friend_id, announce=True))
        await self._become(targets)

    async def _become(self, targets: Mapping[int, tuple[Seen, str | None]]) -> None:
        """Make what the viewer sees of each friend its target (the primary's word), then
        follow the friends now visible and show those in view."""
        follow: dict[int, str | None] = {}
        for friend_id, (target, region) in targets.items():
            current = self.seen(friend_id)
            if current == target:
                continue
            if current in ("none", "hidden") and target in ("coarse", "exact"):
                self._hidden = self._set(self._hidden, friend_id, False)
                self._coarse = self._set(self._coarse, friend_id, target == "coarse")
                self.view.add(friend_id)
                follow[friend_id] = region
                self._slack = 0.0  # the next move judges the new friend too, whatever shows it now
            else:
                self._change(friend_id, current, target)
        if not follow or self.sink.closed:
            return
        await self.locations.follow(self, follow)
        if self.sink.closed:  # it closed meanwhile, and may have unfollowed its friends before this
            self.locations.unfollow(self, follow)
            return
        if self.position is None:
            return
        try:
            latest = await self.locations.latest(follow)
        except _CACHE_ERRORS as exc:  # shown at their next update instead
            log.info("user %d: the cache could not show new friends now (%s)", self._user_id, exc)
            return
        for location in latest.values():
            if self.seen(location.user_id) in ("coarse", "exact"):
                self._judge(location, moved=False)  # not again if its channel showed it meanwhile

    def _change(self, friend_id: int, current: Seen, target: Seen) -> None:
        """Any change but starting to follow: stop following, hide, or change precision."""
        if target in ("coarse", "exact"):  # followed already: show at the new precision now
            self._coarse = self._set(self._coarse, friend_id, target == "coarse")
            location = self.locations.known.get(friend_id)
            if location is not None and self.position is not None:
                self._judge(location, moved=True)
            return
        if current in ("coarse", "exact"):
            self._unwatch(friend_id)
            self.locations.unfollow(self, [friend_id])
            self._coarse = self._set(self._coarse, friend_id, False)
            if self.view.remove(friend_id):
                # Hiding reads like going away: the viewer cannot tell it from the friend leaving.
                self._left(friend_id, "unfriended" if target == "none" else "offline")
        self._hidden = self._set(self._hidden, friend_id, target == "hidden")
