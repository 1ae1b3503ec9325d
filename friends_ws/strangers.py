"""What one connection shows of the strangers nearby (pure).

A :class:`StrangerView` is fed the news heard in the cells around the user
(:class:`~friends_ws.cells.CellNews`) and the user's own moves, and answers what the client
must be told: a stranger to show (new, or at a new coarse position) or one to take away,
and why. It decides, and sends nothing.

- **Who**: never the user, never a user in :attr:`StrangerView.excluded` (friends and
  blocks either way, :func:`geo_common.friends_db.never_strangers`).
- **Where**: within the discovery radius of the user's position (to the stranger's coarse
  point); one beyond it is taken away (``out_of_range``).
- **How many**: at most ``cap`` at once. A stranger in range heard while the view is full
  waits (up to ``4 x cap`` of them, the oldest dropped first) and is shown, most recently
  heard first, when a place frees. So a crowded cell (a stadium) shows the first ``cap``
  people heard and then only their moves, never a stream of arrivals and departures.
- **How long**: news older than ``ttl_ms`` expires (``expired``); newer news of a user
  replaces older, and news older than what is held is ignored (messages of two cells may
  arrive in either order when a stranger crosses from one to the other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from friends_ws.cells import CellNews
from geo_index import haversine_m

#: Why a stranger left the view, as the client is told.
StrangerLeftReason = Literal["out_of_range", "offline", "expired", "hidden"]
#: A stranger's own reasons for leaving a cell, as the view reports them.
_REASONS: dict[str, StrangerLeftReason] = {"moved": "out_of_range", "offline": "offline", "hidden": "hidden"}


@dataclass(frozen=True, slots=True)
class Shown:
    """Show (or move) a stranger: their coarse point, degrees, and the distance to it, metres."""

    user_id: int
    latitude: float
    longitude: float
    handle: str | None
    distance_m: float
    at: int


@dataclass(frozen=True, slots=True)
class Hidden:
    """Take a shown stranger away."""

    user_id: int
    reason: StrangerLeftReason


Change = Shown | Hidden


class StrangerView:
    """The strangers one connection shows.

    Args:
        user_id: the viewer.
        radius_m: the discovery radius, metres.
        cap: the most strangers shown at once.
        ttl_ms: how long news lives after its ``at``, milliseconds.
    """

    __slots__ = ("user_id", "radius_m", "cap", "ttl_ms", "position", "excluded", "shown", "_waiting")

    def __init__(self, user_id: int, *, radius_m: float, cap: int, ttl_ms: int) -> None:
        self.user_id = user_id
        self.radius_m = radius_m
        self.cap = cap
        self.ttl_ms = ttl_ms
        #: The viewer's last position, degrees (None before the first).
        self.position: tuple[float, float] | None = None
        #: Users never shown here.
        self.excluded: set[int] = set()
        #: The strangers shown: user id -> the news shown of them.
        self.shown: dict[int, CellNews] = {}
        # In range but not shown (the view was full), oldest heard first.
        self._waiting: dict[int, CellNews] = {}

    def heard(self, news: CellNews) -> list[Change]:
        """News from a cell the viewer listens to."""
        uid = news.user_id
        if uid == self.user_id or uid in self.excluded or self.position is None:
            return []
        held = self.shown.get(uid) or self._waiting.get(uid)
        if held is not None and news.at < held.at:
            return []  # older than what is held
        if news.gone is not None:
            if held is None or (news.gone == "moved" and held.cell != news.cell):
                return []  # left a cell after being heard in the next one
            return self._drop(uid, _REASONS[news.gone])
        assert news.latitude is not None and news.longitude is not None
        distance = haversine_m(self.position[0], self.position[1], news.latitude, news.longitude)
        if distance > self.radius_m:
            return self._drop(uid, "out_of_range") if held is not None else []
        if uid in self.shown:
            self.shown[uid] = news
            if (held.latitude, held.longitude, held.handle) == (news.latitude, news.longitude, news.handle):  # type: ignore[union-attr]
                return []  # only heard again: the client knows
            return [self._show(news, distance)]
        if len(self.shown) < self.cap:
            self.shown[uid] = news
            return [self._show(news, distance)]
        self._waiting.pop(uid, None)
        self._waiting[uid] = news
        if len(self._waiting) > 4 * self.cap:
            del self._waiting[next(iter(self._waiting))]
        return []

    def moved_to(self, latitude: float, longitude: float) -> list[Change]:
        """The viewer moved: strangers leave or enter the radius."""
        self.position = latitude, longitude
        changes: list[Change] = []
        for uid, news in list(self.shown.items()):
            if self._distance(news) > self.radius_m:
                del self.shown[uid]
                changes.append(Hidden(uid, "out_of_range"))
        for uid, news in list(self._waiting.items()):
            if self._distance(news) > self.radius_m:
                del self._waiting[uid]
        return changes + self._promote()

    def expire(self, now_ms: int) -> list[Change]:
        """Take away the strangers not heard for ``ttl_ms``."""
        oldest = now_ms - self.ttl_ms
        changes: list[Change] = []
        for uid, news in list(self.shown.items()):
            if news.at < oldest:
                del self.shown[uid]
                changes.append(Hidden(uid, "expired"))
        for uid, news in list(self._waiting.items()):
            if news.at < oldest:
                del self._waiting[uid]
        return changes + (self._promote() if changes else [])

    def exclude(self, user_id: int) -> list[Change]:
        """Never show this user again (they became a friend, or one of the two blocked the other)."""
        self.excluded.add(user_id)
        self._waiting.pop(user_id, None)
        return self._drop(user_id, "hidden") if user_id in self.shown else []

    def clear(self) -> None:
        """Forget every stranger (discovery turned off: the client drops them itself)."""
        self.shown.clear()
        self._waiting.clear()

    def _drop(self, user_id: int, reason: StrangerLeftReason) -> list[Change]:
        self._waiting.pop(user_id, None)
        if self.shown.pop(user_id, None) is None:
            return []
        return [Hidden(user_id, reason), *self._promote()]

    def _promote(self) -> list[Change]:
        """Show waiting strangers, most recently heard first, while there is room."""
        changes: list[Change] = []
        while len(self.shown) < self.cap and self._waiting:
            uid = next(reversed(self._waiting))
            news = self._waiting.pop(uid)
            self.shown[uid] = news
            changes.append(self._show(news, self._distance(news)))
        return changes

    def _distance(self, news: CellNews) -> float:
        assert self.position is not None and news.latitude is not None and news.longitude is not None
        return haversine_m(self.position[0], self.position[1], news.latitude, news.longitude)

    def _show(self, news: CellNews, distance_m: float) -> Shown:
        assert news.latitude is not None and news.longitude is not None
        return Shown(news.user_id, news.latitude, news.longitude, news.handle, distance_m, news.at)
