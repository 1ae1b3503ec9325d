"""Search this area: a box of latitudes and longitudes as the circle the indexes search, and
the box's own test of a point.

A box is ``west, south, east, north`` in degrees. ``west`` greater than ``east`` crosses the
180th meridian (Fiji: ``177,-19,-179,-16``); ``-180`` to ``180`` spans every longitude, and
such a box reaching a pole (``north`` 90) is a polar cap, centred on the pole. Any other box
is centred at its middle latitude and longitude.

The circle around the centre that holds the whole box has the radius of the box's farthest
point, which lies on its edge: on an edge of constant latitude the distance grows with the
longitude difference, so the farthest is a corner; on an edge of constant longitude the
distance has one extreme, found in closed form. The indexes search that circle and the box
test keeps the points inside, so a box is as exact as a radius.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from geo_index import haversine_m, in_box


class Box(NamedTuple):
    """A box of latitudes and longitudes, degrees (``west > east``: across the 180th meridian)."""

    west: float
    south: float
    east: float
    north: float

    @property
    def width(self) -> float:
        """Its span of longitude, degrees (0 to 360)."""
        span = self.east - self.west
        return span if span >= 0.0 else span + 360.0

    def contains(self, latitude: float, longitude: float) -> bool:
        """Whether a point is inside the box or on its edge (:func:`geo_index.in_box`: a pole
        is at every longitude)."""
        return in_box(latitude, longitude, self)

    def centre(self) -> tuple[float, float]:
        """Where the box's results are ranked from: its middle, or the pole of a polar cap."""
        if self.width == 360.0 and self.north == 90.0:
            return 90.0, 0.0
        if self.width == 360.0 and self.south == -90.0:
            return -90.0, 0.0
        longitude = self.west + self.width / 2.0
        if longitude > 180.0:
            longitude -= 360.0
        return (self.south + self.north) / 2.0, longitude

    def reach_m(self) -> float:
        """The distance from :meth:`centre` to the box's farthest point, metres."""
        lat, lon = self.centre()
        farthest = 0.0
        for edge in (self.west, self.east):
            for corner in (self.south, self.north):
                farthest = max(farthest, haversine_m(lat, lon, corner, edge))
            inner = _farthest_latitude(lat, lon, edge, self.south, self.north)
            if inner is not None:
                farthest = max(farthest, haversine_m(lat, lon, inner, edge))
        return farthest


def _farthest_latitude(lat: float, lon: float, meridian: float, south: float, north: float) -> float | None:
    """The latitude strictly between ``south`` and ``north`` where the meridian is farthest
    from ``(lat, lon)``, if that is not at an end; else ``None``.

    Along a meridian ``cos(distance) = a sin(phi) + b cos(phi)``, one extreme in (-90, 90): at
    ``tan(phi) = a / b``, a farthest point when ``b < 0``.
    """
    a = math.sin(math.radians(lat))
    b = math.cos(math.radians(lat)) * math.cos(math.radians(meridian - lon))
    if b >= 0.0:
        return None
    phi = math.degrees(math.atan(a / b))
    return phi if south < phi < north else None
