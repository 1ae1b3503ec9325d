"""What one connection's user sees of the friends they follow, and who watches the user.

:class:`Viewing` is the part of a :class:`~friends_ws.following.Following` that needs no
database: the friends followed and which are in view (:class:`~friends_ws.nearby.View`,
with the hysteresis margin), at which precision each is shown, the frames that say so, and
which friends watch the user (connected, with the user within their radius: the user's
pace, :mod:`friends_ws.pace`). What friends let the viewer see changes in its subclass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from friends_ws.metrics import Stats
from friends_ws.nearby import ENTER, LEAVE, MOVE, View
from friends_ws.pace import Pace, watches
from friends_ws.ports import FriendLocations, Sink
from friends_ws.privacy import Seen, shown
from friends_ws.protocol import (
    FramePattern,
    FriendPosition,
    LeftReason,
    complete_friend_location,
    encode_friend_left,
    encode_friend_location,
    friend_location_pattern,
)
from geo_common.presence import Location
from geo_index import haversine_m

#: How much shorter than the slack a move must be to skip judging friends again, metres: far
#: above the rounding of the distances compared.
SLACK_MARGIN_M = 0.01


class Viewing:
    """The friends one connection shows, and the friends watching its user.

    Args:
        user_id: the viewer.
        locations: the friends followed in the process (subscriptions, latest locations).
        stats: the process's counters.
        sink: the connection's frames and background tasks.
        radius_m: the initial radius, metres.
        margin_m: the hysteresis margin, metres.
    """

    __slots__ = (
        "_user_id",
        "locations",
        "stats",
        "sink",
        "view",
        "position",
        "_slack",
        "_coarse",
        "_hidden",
        "_first",
    )

    def __init__(
        self,
        user_id: int,
        *,
        locations: FriendLocations,
        stats: Stats,
        sink: Sink,
        radius_m: float,
        margin_m: float,
    ) -> None:
        self._user_id = user_id
        self.locations = locations
        self.stats = stats
        self.sink = sink
        #: The friends followed (shown exactly or coarsely), and which of them are in view.
        self.view = View(radius_m, margin_m)
        #: The user's last position, degrees (None until the first location).
        self.position: tuple[float, float] | None = None
        # How far (metres) the user may move before any friend's visibility can change: the
        # least distance of a judged friend to the edge it would cross (the radius for one out
        # of view, the radius plus the margin for one in view; for a friend looking, the edge
        # of their own radius), less the moves since. A move changes every distance by at most
        # its own length (triangle inequality), so a move shorter than this changes nothing
        # and needs no friend judged again.
        self._slack = 0.0
        # Friends shown coarsely, and friends hiding from the user (None while empty: most
        # connections have neither, and an empty set costs 216 bytes).
        self._coarse: set[int] | None = None
        self._hidden: set[int] | None = None
        # Friend -> the updated_at of the position the first view left the client with (sent
        # or held): a cache read can return a location before its own message is heard, and
        # that message is then not sent again (None once every such friend was heard).
        self._first: dict[int, int] | None = None

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
        return self.view.watching != 0

    @property
    def on_watched(self) -> Callable[[], None] | None:
        """Who hears when the user becomes watched or stops being watched (the friends watching
        the user, connected and with the user within their radius, are the view's mask)."""
        return self.view.on_watched

    @on_watched.setter
    def on_watched(self, hears: Callable[[], None] | None) -> None:
        self.view.on_watched = hears

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
        # Whoever watches the user now is told by the caller, after init: no pace before it.
        on_watched, self.on_watched = self.on_watched, None
        known = self.locations.known
        visible: list[FriendPosition] = []
        gone: list[tuple[int, LeftReason]] = []
        first: dict[int, int] = {}
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
            change = self.view.update(friend_id, distance, watches(location, distance))
            if change is ENTER or change is MOVE:
                first[friend_id] = location.updated_at
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
        self.on_watched = on_watched
        self._first = first or None
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
            first = self._first
            if first is not None:
                shown_first = first.pop(location.user_id, None)
                if not first:
                    self._first = None
                if shown_first == location.updated_at:
                    return  # the first view had it from the cache, ahead of this message
            self._judge(location, moved=True, pattern=pattern)

    def _judge(self, location: Location, *, moved: bool, pattern: FramePattern | None = None) -> None:
        assert self.position is not None
        friend_id = location.user_id
        if self._coarse is not None and friend_id in self._coarse:
            location, pattern = shown(location, coarse=True), None
        distance = haversine_m(self.position[0], self.position[1], location.latitude, location.longitude)
        view = self.view
        if location.live:
            # Whether this friend watches the user (their pace): pace.watches, spelled out here
            # because it runs on every delivery, with the distance to their edge for the slack.
            reach = location.radius_m - distance
            change = view.update(friend_id, distance, reach >= 0.0)
            if reach < 0.0:
                reach = -reach
            if reach < self._slack:  # a shorter move cannot change whether they watch
                self._slack = reach
        else:
            change = view.update(friend_id, distance, False)
        edge = (
            view.radius_m + view.margin_m - distance if change is ENTER or change is MOVE else distance - view.radius_m
        )
        if edge < self._slack:
            self._slack = edge
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

    def _unwatch(self, friend_id: int) -> None:
        self.view.set_watching(friend_id, False)

    def friend_watching(self, location: Location) -> None:
        """A followed friend connected, left their socket, or changed radius (``location`` is
        their latest, with the news): whether they watch the user may change, nothing is sent."""
        if self.position is None or self.seen(location.user_id) not in ("coarse", "exact"):
            return
        location = shown(location, coarse=self.seen(location.user_id) == "coarse")
        distance = haversine_m(self.position[0], self.position[1], location.latitude, location.longitude)
        self.view.set_watching(location.user_id, watches(location, distance))

    def prune_watchers(self, pace: Pace, now_ms: int) -> None:
        """Forget watchers silent for longer than a connected client may be (their socket died
        unannounced): they are watching nobody."""
        if self.view.watching == 0:
            return
        known = self.locations.known
        for friend_id in self.view.watchers:
            location = known.get(friend_id)
            if location is None or not pace.still_live(location, now_ms):
                self._unwatch(friend_id)

    def _left(self, friend_id: int, reason: LeftReason) -> None:
        self.stats.departures += 1
        self.sink.send_friend(friend_id, encode_friend_left(friend_id, reason))

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
