"""Great-circle distance on a sphere, and the conservative bounds the indexes prune with.

All angles given to or returned by public functions are in degrees, all distances in metres.

:func:`haversine_m` is *the* distance: every index computes the final distance of every
candidate with exactly its floating-point operations (``geo_index/_exact.h``), and the tests'
oracle calls it directly, so "exact" means bit-identical. :func:`cap_bounds` (a query's
bounding box, mirrored operation for operation by ``cap_box`` in ``geo_index/_plan.c``) is only
used to discard candidates and is padded by a safety margin so that it never discards a point
:func:`haversine_m` would accept.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from geo_index import native

#: Mean Earth radius (IUGG R1), metres. The one sphere used everywhere in the project.
EARTH_RADIUS_M = 6_371_008.8

#: Half the circumference of that sphere, metres: the largest possible distance.
HALF_CIRCUMFERENCE_M = math.pi * EARTH_RADIUS_M

#: Degrees to radians. ``x * RAD`` is what :func:`haversine_m` does, so index code that
#: precomputes per-point terms must use this same constant to stay bit-identical.
RAD = math.pi / 180.0

#: Safety margins of every pruning bound: a relative part (covers rounding in the
#: trigonometry, ~1e-15 relative) and an absolute part, metres (covers rounding of the
#: coordinates themselves, ~1e-9 m). Both are many orders of magnitude above the errors
#: they cover and far below anything that matters for pruning.
REL_MARGIN = 1e-9
ABS_MARGIN_M = 1e-3

# Above this angular radius (radians) the bounding box is the whole sphere. It keeps the
# ill-conditioned region of asin near 1 (distances close to half the circumference) out of
# the pruning logic entirely.
_WHOLE_SPHERE_RAD = 0.5 * math.pi

_sin = math.sin
_cos = math.cos
_asin = math.asin

#: Great-circle distance between two points on the sphere of radius :data:`EARTH_RADIUS_M`:
#: ``haversine_m(lat1, lon1, lat2, lon2)``, degrees in, metres out, in [0, pi * R]. Longitude
#: -180 is taken as +180 (the same meridian) first, so both spellings of the antimeridian give
#: bit-identical results. Written once, in C (``haversine`` in ``geo_index/_exact.c``), which
#: the indexes' scans call for every candidate and Python code calls through this name; the
#: formula in Python is the tests' reference (``tests/geo_index/reference.py``), held to it
#: bit for bit.
haversine_m = native.haversine

#: The circle a box of latitudes and longitudes is searched with: ``box_circle(west, south,
#: east, north)`` is ``(latitude, longitude, reach_m)``, the point the box's results are ranked
#: from (its middle, or the pole of a polar cap: every longitude and a pole) and the distance
#: from there to the box's farthest point (:func:`haversine_m`'s), so that the circle holds the
#: whole box. ``west > east`` crosses the 180th meridian. Written once, in C
#: (``geo_index/_box.c``), which the compiled area search calls too; the geometry in Python is
#: the tests' reference (``tests/geo_index/reference.py``), held to it bit for bit.
box_circle = native.box_circle


def padded_angle_rad(radius_m: float) -> float:
    """Angular radius of a search circle, padded by the pruning safety margin.

    Args:
        radius_m: the search radius, metres (may be ``inf``).

    Returns:
        An angle in radians strictly larger than ``radius_m / EARTH_RADIUS_M``.
    """
    return (radius_m * (1.0 + REL_MARGIN) + ABS_MARGIN_M) / EARTH_RADIUS_M


#: The whole longitude circle as one range, degrees.
FULL_LON: tuple[tuple[float, float], ...] = ((-180.0, 180.0),)


class CapBounds(NamedTuple):
    """A latitude/longitude box that contains a search circle with a safety margin.

    Attributes:
        lat_lo: southern edge, degrees, >= -90.
        lat_hi: northern edge, degrees, <= 90.
        lon_ranges: one or two disjoint closed longitude ranges in [-180, 180], degrees.
            Two ranges when the circle crosses the antimeridian; :data:`FULL_LON` when the
            circle contains a pole or is wider than the sphere's longitude span.
        dlat_rad: half-height of the box, radians: every point within the circle has
            ``|lat * RAD - centre_lat * RAD| <= dlat_rad``.
        dlon_rad: half-width of the box, radians, when ``lon_ranges`` is a single range
            that does not touch the antimeridian (then ``|lon * RAD - centre_lon * RAD| <=
            dlon_rad`` for every point within the circle); ``inf`` otherwise.
    """

    lat_lo: float
    lat_hi: float
    lon_ranges: tuple[tuple[float, float], ...]
    dlat_rad: float
    dlon_rad: float

    @property
    def full_lon(self) -> bool:
        """True when the box spans every longitude."""
        return self.lon_ranges is FULL_LON


_INF = math.inf


def cap_bounds(lat: float, lon: float, radius_m: float) -> CapBounds:
    """Bounding box of the spherical cap of ``radius_m`` around a point.

    The cap's latitude extent is ``lat +- radius / R``. If that reaches a pole the cap
    contains the pole and spans all longitudes. Otherwise its half-width in longitude is
    ``asin(sin(delta) / cos(lat))`` (the meridians tangent to the cap). The angular radius
    is padded first (:func:`padded_angle_rad`), so every point :func:`haversine_m` places
    within ``radius_m`` is strictly inside the box.

    Args:
        lat: centre latitude, degrees in [-90, 90].
        lon: centre longitude, degrees in [-180, 180].
        radius_m: radius, metres (``inf`` gives the whole sphere).

    Returns:
        The box, degrees (and its half-sizes in radians).
    """
    delta = padded_angle_rad(radius_m)
    if delta >= _WHOLE_SPHERE_RAD:
        return CapBounds(-90.0, 90.0, FULL_LON, _INF, _INF)
    d_deg = delta / RAD
    lat_lo = lat - d_deg
    lat_hi = lat + d_deg
    if lat_hi >= 90.0 or lat_lo <= -90.0:
        return CapBounds(max(lat_lo, -90.0), min(lat_hi, 90.0), FULL_LON, delta, _INF)
    x = _sin(delta) / _cos(lat * RAD)
    if x >= 1.0 - 1e-9:
        return CapBounds(lat_lo, lat_hi, FULL_LON, delta, _INF)
    dlon = _asin(x) / RAD * (1.0 + REL_MARGIN) + 1e-9
    if dlon >= 180.0:
        return CapBounds(lat_lo, lat_hi, FULL_LON, delta, _INF)
    if lon == -180.0:
        lon = 180.0
    lo = lon - dlon
    hi = lon + dlon
    # ">=" rather than ">": a range that reaches the antimeridian exactly must also cover
    # its other spelling, because indexes file lon 180 under -180 (and vice versa).
    if lo <= -180.0:
        return CapBounds(lat_lo, lat_hi, ((-180.0, hi), (lo + 360.0, 180.0)), delta, _INF)
    if hi >= 180.0:
        return CapBounds(lat_lo, lat_hi, ((-180.0, hi - 360.0), (lo, 180.0)), delta, _INF)
    return CapBounds(lat_lo, lat_hi, ((lo, hi),), delta, dlon * RAD)


def in_box(lat: float, lon: float, box: tuple[float, float, float, float]) -> bool:
    """Whether a point is inside a box of latitudes and longitudes or on its edge.

    Args:
        lat: latitude, degrees.
        lon: longitude, degrees.
        box: ``(west, south, east, north)``, degrees; ``west > east`` crosses the 180th
            meridian. A pole is at every longitude.
    """
    west, south, east, north = box
    if not south <= lat <= north:
        return False
    if lat in (90.0, -90.0):
        return True
    if west <= east:
        return west <= lon <= east
    return lon >= west or lon <= east
