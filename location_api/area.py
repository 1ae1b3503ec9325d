"""Search this area: a box of latitudes and longitudes as the circle the indexes search, and
the box's own test of a point.

A box is ``west, south, east, north`` in degrees. ``west`` greater than ``east`` crosses the
180th meridian (Fiji: ``177,-19,-179,-16``); ``-180`` to ``180`` spans every longitude, and
such a box reaching a pole (``north`` 90) is a polar cap, centred on the pole. Any other box
is centred at its middle latitude and longitude.

The circle around the centre that holds the whole box (:func:`geo_index.box_circle`, which
the compiled area search calls too) has the radius of the box's farthest point. The indexes
search that circle and the box test keeps the points inside, so a box is as exact as a
radius.
"""

from __future__ import annotations

from typing import NamedTuple

from geo_index import box_circle, in_box


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

    def circle(self) -> tuple[float, float, float]:
        """``(latitude, longitude, reach_m)``: where the box's results are ranked from (its
        middle, or the pole of a polar cap) and the distance from there to its farthest
        point, metres."""
        return box_circle(self.west, self.south, self.east, self.north)

    def centre(self) -> tuple[float, float]:
        """Where the box's results are ranked from: its middle, or the pole of a polar cap."""
        lat, lon, _ = self.circle()
        return lat, lon

    def reach_m(self) -> float:
        """The distance from :meth:`centre` to the box's farthest point, metres."""
        return self.circle()[2]
