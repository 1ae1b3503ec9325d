"""How often a user should send their location (pure): often while a friend can see it.

A friend *watches* the user when the friend is connected and looking (their latest location
came from an open socket that has not closed since, :attr:`Location.live`) and the user is
within the friend's radius. Only friends who share their location with the user count: the
user's pace tells them nothing they could not see. A watcher's socket that died without a
word (its instance crashed) stops counting once it has been silent for longer than the slow
pace allows, :func:`still_live`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from geo_index import haversine_m
from geo_common.presence import Location

#: A watcher silent for this many slow intervals is not connected any more (a live client
#: sends at least once per slow interval).
SILENT_INTERVALS = 1.5


@dataclass(frozen=True, slots=True)
class Pace:
    """The two paces, seconds: ``fast`` while watched, ``slow`` otherwise."""

    fast_s: int
    slow_s: int

    def interval_s(self, watched: bool) -> int:
        return self.fast_s if watched else self.slow_s

    def still_live(self, location: Location, now_ms: int) -> bool:
        """The friend of ``location`` may still be connected (heard from recently enough)."""
        return location.live and now_ms - location.updated_at <= SILENT_INTERVALS * self.slow_s * 1000


def watches(location: Location, distance_m: float) -> bool:
    """A friend at ``location``, ``distance_m`` from the user, watches them (liveness aside)."""
    return location.live and distance_m <= location.radius_m


def watched(pace: Pace, latitude: float, longitude: float, friends: Iterable[Location], now_ms: int) -> bool:
    """Whether any of ``friends`` (as the user sees them) watches a user at this point."""
    return any(
        pace.still_live(f, now_ms) and watches(f, haversine_m(latitude, longitude, f.latitude, f.longitude))
        for f in friends
    )
