"""The friends one connection follows: at which precision, which of them are in view, and the
frames that say so.

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
import math
from collections.abc import Callable, Mapping

import asyncpg
from redis.exceptions import RedisError

from friends_ws.metrics import Stats
from friends_ws.nearby import ENTER, LEAVE, MOVE, View
from friends_ws.pace import Pace, watches
from friends_ws.ports import FriendLocations, Sink
from friends_ws.privacy import Seen, grants, seen_for, shown
from friends_ws.protocol import (
    FramePattern,
    FriendPosition,
    LeftReason,
    complete_friend_location,
    encode_friend_added,
    encode_friend_left,
    encode_friend_location,
    friend_location_pattern,
)
from geo_common import friends_db
from geo_common.database import Database, DatabaseUnavailable
from geo_common.friends_db import Grant
from geo_common.presence import AccessLevel, FriendAdded, FriendRemoved, FriendShares, Location
from geo_index import haversine_m
from pubsub import PubSubError

log = logging.getLogger(__name__)

#: How much shorter than the slack a move must be to skip judging friends again, metres: far
#: above the rounding of the distances compared.
SLACK_MARGIN_M = 0.01

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


class Following:
    """Whom one connection's user follows, and what they see of each.

    Args:
        user_id: the viewer.
        locations: the friends followed in the process (subscriptions, latest locations).
        stats: the process's counters.
        db: the database (grants are read on its primary).
        sink: the connection's frames and background tasks.
        radius_m: the initial radius, metres.
        margin_m: the hysteresis margin, metres.
    """

    __slots__ = (
        "_user_id",
        "locations",
        "stats",
        "db",
        "sink",
        "view",
        "position",
        "_slack",
        "_coarse",
        "_hidden",
        "_restrictions",
        "_watchers",
        "on_watched",
    )

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
        self._user_id = user_id
        self.locations = locations
        self.stats = stats
        self.db = db
        self.sink = sink
        #: The friends followed (shown exactly or coarsely), and which of them are in view.
        self.view = View(radius_m, margin_m)
        #: The user's last position, degrees (None until the first location).
        self.position: tuple[float, float] | None = None
        # How far (metres) the user may move before any friend's visibility can change: the
        # least distance of a judged friend to the edge it would cross (the radius for one out
        # of view, the radius plus the margin for one in view), less the moves since. A move
        # changes every distance by at most its own length (triangle inequality), so a move
        # shorter than this changes nothing and needs no friend judged again.
        self._slack = 0.0
        # Friends shown coarsely, and friends hiding from the user (None while empty: most
        # connections have neither, and an empty set costs 216 bytes).
        self._coarse: set[int] | None = None
        self._hidden: set[int] | None = None
        self._restrictions = 0
        # Friends watching the user now (connected, and the user within their radius; None
        # while empty), and who hears when the user becomes watched or stops being watched.
        self._watchers: set[int] | None = None
        self.on_watched: Callable[[bool], None] | None = None

    @property
    def user_id(self) -> int:
        return self._user_id

    @property
    def friends(self) -> list[int]:
        """The friends followed, ascending."""
        return self.view.friends

    @property
    def watched(self) -> bool:
        """Some friend who shares with the user is connected and has them within their radius."""
        return self._watchers is not None

    @property
    def restrictions(self) -> int:
        """Restricting messages applied so far (a grant read started before the last is stale)."""
        return self._restrictions

    def seen(self, friend_id: int) -> Seen:
        """What the viewer sees of a user now."""
        if friend_id in self.view:
            return "coarse" if self._coarse is not None and friend_id in self._coarse else "exact"
        if self._hidden is not None and friend_id in self._hidden:
            return "hidden"
        return "none"

    # --- what the viewer sees of friends' moves ---------------------------------------------

    async def first_view(
        self, latitude: float, longitude: float, held: Mapping[int, int] | None = None, *, now_ms: int = 0
    ) -> tuple[list[FriendPosition], list[tuple[int, LeftReason]]]:
        """The friends in view at the user's first position (degrees), nearest first, and for a
        resuming client what changed since what it ``held`` (friend -> ``updated_at``).

        Returns:
            The positions to send (every friend in view for a fresh client; for a resuming
            one those it does not hold as they are now, and every friend shown coarsely), and
            the friends the client holds that are no longer in view, with why.
        """
        await self.locations.latest(self.view.friends)
        # From here on nothing awaits: updates that arrived meanwhile are known already.
        self.position = (latitude, longitude)
        self._slack = 0.0  # the next move judges every friend again
        held = held or {}
        for friend_id in held:
            self.view.show(friend_id)  # kept with the margin, as on the lost connection
        known = self.locations.known
        visible: list[FriendPosition] = []
        gone: list[tuple[int, LeftReason]] = []
        for friend_id in self.view.friends:
            location = known.get(friend_id)
            if location is None:
                if self.view.drop(friend_id):
                    expired = held[friend_id] + self.locations.ttl_ms <= now_ms
                    gone.append((friend_id, "expired" if expired else "offline"))
                continue
            coarse = self.seen(friend_id) == "coarse"
            location = shown(location, coarse=coarse)
            distance = haversine_m(latitude, longitude, location.latitude, location.longitude)
            self._watch(friend_id, location, distance)
            change = self.view.update(friend_id, distance)
            if change is ENTER or (change is MOVE and (coarse or held.get(friend_id) != location.updated_at)):
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
            elif change is LEAVE:
                gone.append((friend_id, "out_of_range"))
        for friend_id in held:
            if friend_id not in self.view:  # no longer followed: hiding reads like going away
                gone.append((friend_id, "offline" if self.seen(friend_id) == "hidden" else "unfriended"))
        visible.sort(key=lambda f: (f.distance_m, f.user_id))
        return visible, gone

    def catch_up(self, positions: list[FriendPosition], gone: list[tuple[int, LeftReason]]) -> None:
        """Send a resuming client what changed (from :meth:`first_view`)."""
        for friend in positions:
            self.stats.deliveries += 1
            self.sink.send_friend(friend.user_id, encode_friend_location(friend))
        for friend_id, reason in gone:
            self._left(friend_id, reason)

    def moved_to(self, latitude: float, longitude: float) -> None:
        """The user moved (degrees): friends may enter or leave the view."""
        before, self.position = self.position, (latitude, longitude)
        if before is not None:
            step = haversine_m(before[0], before[1], latitude, longitude)
            if step + SLACK_MARGIN_M < self._slack:
                self._slack -= step
                return
        self.reevaluate()

    def reevaluate(self) -> None:
        """The user moved or changed radius: friends may enter or leave the view."""
        if self.position is None:
            return
        self._slack = math.inf
        known = self.locations.known
        for friend_id in self.view.friends:
            location = known.get(friend_id)
            if location is not None:
                self._judge(location, moved=False)

    def friend_moved(self, location: Location, pattern: FramePattern | None = None) -> None:
        """A followed friend shared a new location (``pattern``: its exact frame, less the distance)."""
        if self.position is not None:
            self._judge(location, moved=True, pattern=pattern)

    def _judge(self, location: Location, *, moved: bool, pattern: FramePattern | None = None) -> None:
        assert self.position is not None
        friend_id = location.user_id
        if self._coarse is not None and friend_id in self._coarse:
            location, pattern = shown(location, coarse=True), None
        distance = haversine_m(self.position[0], self.position[1], location.latitude, location.longitude)
        change = self.view.update(friend_id, distance)
        view = self.view
        edge = (
            view.radius_m + view.margin_m - distance if change is ENTER or change is MOVE else distance - view.radius_m
        )
        if edge < self._slack:
            self._slack = edge
        if location.live or self._watchers is not None:
            self._watch(friend_id, location, distance)
        if change is ENTER or (moved and change is MOVE):
            self.stats.deliveries += 1
            if pattern is None:
                pattern = friend_location_pattern(
                    friend_id, location.latitude, location.longitude, location.updated_at, location.sent_at
                )
            self.sink.send_friend(friend_id, complete_friend_location(pattern, distance))
        elif change is LEAVE:
            self._left(friend_id, "out_of_range")

    def friend_left(self, friend_id: int, reason: LeftReason) -> None:
        """A followed friend went offline, stopped sharing or expired."""
        self._unwatch(friend_id)
        if self.view.drop(friend_id):
            self._left(friend_id, reason)

    # --- who watches the user (their pace) ----------------------------------------------------

    def _watch(self, friend_id: int, location: Location, distance: float) -> None:
        """Note whether a friend at ``distance`` (metres, as the user sees them) watches the user."""
        if watches(location, distance):
            if self._watchers is None:
                self._watchers = {friend_id}
                if self.on_watched is not None:
                    self.on_watched(True)
            else:
                self._watchers.add(friend_id)
            edge = location.radius_m - distance
        else:
            self._unwatch(friend_id)
            if not location.live:
                return
            edge = distance - location.radius_m
        # A move shorter than the way to this friend's edge cannot change whether they watch.
        if edge < self._slack:
            self._slack = edge

    def _unwatch(self, friend_id: int) -> None:
        watchers = self._watchers
        if watchers is not None and friend_id in watchers:
            watchers.discard(friend_id)
            if not watchers:
                self._watchers = None
                if self.on_watched is not None:
                    self.on_watched(False)

    def friend_watching(self, location: Location) -> None:
        """A followed friend connected, left their socket, or changed radius (``location`` is
        their latest, with the news): whether they watch the user may change, nothing is sent."""
        if self.position is None or self.seen(location.user_id) not in ("coarse", "exact"):
            return
        location = shown(location, coarse=self.seen(location.user_id) == "coarse")
        distance = haversine_m(self.position[0], self.position[1], location.latitude, location.longitude)
        self._watch(location.user_id, location, distance)

    def prune_watchers(self, pace: Pace, now_ms: int) -> None:
        """Forget watchers silent for longer than a connected client may be (their socket died
        unannounced): they are watching nobody."""
        if self._watchers is None:
            return
        known = self.locations.known
        for friend_id in list(self._watchers):
            location = known.get(friend_id)
            if location is None or not pace.still_live(location, now_ms):
                self._unwatch(friend_id)

    def _left(self, friend_id: int, reason: LeftReason) -> None:
        self.stats.departures += 1
        self.sink.send_friend(friend_id, encode_friend_left(friend_id, reason))

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

    @staticmethod
    def _set(members: set[int] | None, friend_id: int, member: bool) -> set[int] | None:
        """Add or discard a friend in a set that is None while empty; returns the set."""
        if member:
            if members is None:
                return {friend_id}
            members.add(friend_id)
        elif members is not None:
            members.discard(friend_id)
            if not members:
                return None
        return members
