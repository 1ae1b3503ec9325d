"""Which friends a user sees, with hysteresis at the edge of the radius (pure).

A friend comes into view at ``distance <= radius`` and leaves only at
``distance > radius + margin``: a friend walking along the edge, or GPS noise around it,
does not make the friend appear and disappear on every update.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable
from enum import Enum

import geohash


class Change(Enum):
    """What one distance measurement does to a friend's visibility."""

    ENTER = "enter"
    """Came into view: send ``friend_location``."""
    MOVE = "move"
    """Was in view and stays: send ``friend_location``."""
    LEAVE = "leave"
    """Went beyond radius + margin: send ``friend_left`` (``out_of_range``)."""
    NONE = "none"
    """Out of view and stays out: send nothing."""


# The members as module constants: on Python 3.11 a member read through its class goes
# through EnumType's __getattr__ hook, and these are read for every recipient of every update.
ENTER, MOVE, LEAVE, NONE = Change.ENTER, Change.MOVE, Change.LEAVE, Change.NONE


def judge(visible: bool, distance_m: float, radius_m: float, margin_m: float) -> Change:
    """Decide a friend's visibility after a new distance.

    Args:
        visible: whether the friend is in view now.
        distance_m: the friend's distance, metres.
        radius_m: the user's radius, metres.
        margin_m: the hysteresis margin, metres.

    Returns:
        The change.
    """
    if visible:
        return MOVE if distance_m <= radius_m + margin_m else LEAVE
    return ENTER if distance_m <= radius_m else NONE


class View:
    """One user's friends and which of them are in view.

    The friend ids are a sorted ``array('q')``, and visibility and who watches the user (their
    pace, :mod:`friends_ws.pace`) are bit masks over it: about 0.2 KiB for 20 friends, where a
    dict of id -> bool takes 0.6 to 1.2 KiB and a set of 20 ids 2 KiB, and a server holds one
    view per connection. Lookups bisect (O(log n)); friendships change rarely.

    Args:
        radius_m: the radius, metres.
        margin_m: the hysteresis margin, metres.
    """

    __slots__ = ("radius_m", "margin_m", "_ids", "_shown", "watching", "on_watched")

    def __init__(self, radius_m: float, margin_m: float) -> None:
        self.radius_m = radius_m
        self.margin_m = margin_m
        self._ids = array("q")
        self._shown = 0
        #: Which friends watch the user: a bit mask over the ids (0: nobody).
        self.watching = 0
        #: Called when the user becomes watched (the mask turns non-zero) or stops being watched.
        self.on_watched: Callable[[], None] | None = None

    def _index(self, friend_id: int) -> int:
        ids = self._ids
        i = bisect_left(ids, friend_id)
        return i if i < len(ids) and ids[i] == friend_id else -1

    def __contains__(self, friend_id: object) -> bool:
        return isinstance(friend_id, int) and self._index(friend_id) >= 0

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def friends(self) -> list[int]:
        """The friend ids, ascending (a copy: safe to iterate while the view changes)."""
        return self._ids.tolist()

    @property
    def visible(self) -> set[int]:
        """The friends in view now."""
        return {f for i, f in enumerate(self._ids) if self._shown >> i & 1}

    def add(self, friend_id: int) -> bool:
        """A new friend (out of view until a distance says otherwise); False if known."""
        i = bisect_left(self._ids, friend_id)
        if i < len(self._ids) and self._ids[i] == friend_id:
            return False
        self._ids.insert(i, friend_id)
        self._shown = _open_bit(self._shown, i)
        self.watching = _open_bit(self.watching, i)
        return True

    def remove(self, friend_id: int) -> bool:
        """No longer a friend; True when the friend was in view."""
        i = self._index(friend_id)
        if i < 0:
            return False
        was = bool(self._shown >> i & 1)
        del self._ids[i]
        self._shown = _close_bit(self._shown, i)
        self._watch_mask(_close_bit(self.watching, i))
        return was

    @property
    def watchers(self) -> list[int]:
        """The friends who watch the user, ascending."""
        return [f for i, f in enumerate(self._ids) if self.watching >> i & 1]

    def set_watching(self, friend_id: int, watching: bool) -> None:
        """Record whether a friend watches the user (nothing for strangers)."""
        i = self._index(friend_id)
        if i >= 0:
            self._watch_mask(self.watching | (1 << i) if watching else self.watching & ~(1 << i))

    def _watch_mask(self, mask: int) -> None:
        flipped = (mask == 0) is not (self.watching == 0)
        self.watching = mask
        if flipped and self.on_watched is not None:
            self.on_watched()

    def update(self, friend_id: int, distance_m: float, watching: bool | None = None) -> Change:
        """Record a friend's new distance (metres), and whether they watch the user when given;
        say what changed in view (nothing for strangers)."""
        i = self._index(friend_id)
        if i < 0:
            return NONE
        if watching is not None:  # the common case, watched as before, writes nothing
            mask = self.watching
            if watching:
                if not mask >> i & 1:
                    self._watch_mask(mask | 1 << i)
            elif mask and mask >> i & 1:
                self._watch_mask(mask & ~(1 << i))
        change = judge(bool(self._shown >> i & 1), distance_m, self.radius_m, self.margin_m)
        if change is ENTER:
            self._shown |= 1 << i
        elif change is LEAVE:
            self._shown &= ~(1 << i)
        return change

    def show(self, friend_id: int) -> None:
        """Mark a followed friend in view (what a resuming client holds), whatever the distance:
        the next :meth:`update` keeps them with the margin, as for a friend seen all along."""
        i = self._index(friend_id)
        if i >= 0:
            self._shown |= 1 << i

    def drop(self, friend_id: int) -> bool:
        """Take a friend out of view (offline, expired, ...); True when it was in view."""
        i = self._index(friend_id)
        if i < 0 or not self._shown >> i & 1:
            return False
        self._shown &= ~(1 << i)
        return True


def _open_bit(mask: int, i: int) -> int:
    """``mask`` with a clear bit inserted at position ``i`` (the bits from ``i`` move up)."""
    return mask & ((1 << i) - 1) | (mask >> i << (i + 1))


def _close_bit(mask: int, i: int) -> int:
    """``mask`` without bit ``i`` (the bits above it move down)."""
    return mask & ((1 << i) - 1) | (mask >> (i + 1) << i)


def coarsen(latitude: float, longitude: float) -> tuple[float, float]:
    """The centre of the geohash-6 cell holding a point (about 1.2 km x 0.6 km), degrees."""
    lat, lon = geohash.decode(geohash.encode(latitude, longitude, 6))
    return float(lat), float(lon)
