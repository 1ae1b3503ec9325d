"""Who sees what, at which precision, and what the history keeps (pure).

A connection's user (the *viewer*) stands in one of four relations to each other user, as
far as locations go (:data:`Seen`): ``none`` (not a friend), ``hidden`` (a friend who hides
from the viewer: not followed, never shown), ``coarse`` (shown only as the centre of the
friend's geohash-6 cell, distances included) or ``exact`` (shown as the friend publishes it:
the friend's own global precision still applies, so a friend sharing coarsely publishes
coarse points already).

A change that lets the viewer see more (:func:`grants`) is applied only after the PostgreSQL
primary confirms it: the message says when to look, the database what is true. Every other
change restricts, and is applied at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from friends_ws.nearby import coarsen
from friends_ws.protocol import Sharing
from geo_common.friends_db import User
from geo_common.presence import Location

#: What a viewer sees of one user.
Seen = Literal["none", "hidden", "coarse", "exact"]
_RANK: dict[str, int] = {"none": 0, "hidden": 0, "coarse": 1, "exact": 2}


def seen_for(level: str | None) -> Seen:
    """What a grant level (``exact``, ``coarse``, ``hidden``, ``removed``, or None for "no
    friendship") lets the viewer see.

    Raises:
        ValueError: an unknown level.
    """
    if level is None or level == "removed":
        return "none"
    if level in ("hidden", "coarse", "exact"):
        return level  # type: ignore[return-value]
    raise ValueError(f"unknown sharing level {level!r}")


def grants(current: Seen, target: Seen) -> bool:
    """Whether going from ``current`` to ``target`` shows the viewer more (then the primary
    must confirm it first); ``none`` to ``hidden`` shows nothing, so it is no grant."""
    return _RANK[target] > _RANK[current]


def shown(location: Location, *, coarse: bool) -> Location:
    """A friend's location as one viewer may see it (degrees): the centre of its geohash-6
    cell for a coarse viewer, so that the distance computed from it reveals no more."""
    if not coarse:
        return location
    latitude, longitude = coarsen(location.latitude, location.longitude)
    if (latitude, longitude) == (location.latitude, location.longitude):
        return location  # published coarse already
    return replace(location, latitude=latitude, longitude=longitude)


def kept_point(latitude: float, longitude: float, sharing: Sharing) -> tuple[float, float] | None:
    """The point the history keeps of a location the user sent, degrees, or None for nothing.

    The history obeys the user: with a private history, the exact point whatever friends
    see; otherwise nothing while sharing is off, and the point friends see (coarse when the
    user shares coarsely) while it is on.
    """
    if sharing.private_history:
        return latitude, longitude
    if not sharing.enabled:
        return None
    if sharing.precision == "coarse":
        return coarsen(latitude, longitude)
    return latitude, longitude


def sharing_of(user: User | None) -> Sharing:
    """What a user's row says they share (the defaults for a user never seen)."""
    if user is None:
        return Sharing()
    return Sharing(user.sharing_enabled, user.sharing_precision, user.private_history)
