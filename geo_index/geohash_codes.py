"""Geohash codes: of a point, and of a row or column of the geohash grid.

A point's code comes from python-geohash; a cell's code at ``b`` bits is the top ``b`` bits
of the codes of the points it holds. The query side does not encode points: it enumerates
rows and columns of the grid and interleaves their bits with :data:`SPREAD`, so both sides
must agree on where a point on the grid's edges (latitude 90, longitude 180) is filed.
:class:`geo_index.GeohashIndex` files points by these codes and :class:`geo_index.QuadTree`
lays its points out in memory in their order; this module keeps the one definition both use.
"""

from __future__ import annotations

import math

import geohash

#: The longest level, in geohash bits: it keeps rows and columns within 16 bits, so that
#: :data:`SPREAD` takes each in one table lookup.
MAX_LEVEL_BITS = 32

# _SPREAD8[x] puts bit i of x (8 bits) at bit 2i; SPREAD is built from two lookups in it.
_SPREAD8 = [sum(((x >> i) & 1) << (2 * i) for i in range(8)) for x in range(256)]

#: ``SPREAD[x]`` puts bit i of x (16 bits) at bit 2i: one half of a geohash interleave.
SPREAD = [_SPREAD8[x & 0xFF] | (_SPREAD8[x >> 8] << 16) for x in range(1 << 16)]

# The largest double below 90: python-geohash refuses 90 itself (and warns), and a point
# at the pole belongs to the top row anyway.
_BELOW_90 = math.nextafter(90.0, 0.0)


def geohash_key(lat: float, lon: float) -> int:
    """The 64-bit geohash of a point (python-geohash's ``encode_uint64``).

    Latitude 90 is filed in the top row and longitude 180 wraps to -180 (column 0), the
    same convention the query side uses. Coordinates within 1e-12 degrees of 0 are encoded
    as 0: python-geohash's C encoder returns wrong high bits for magnitudes below about
    1e-17 (found by the property tests). Moving a point by at most 1e-12 degrees (0.1
    micrometre) before filing it is safe because every query box is padded by at least
    1 mm (9e-9 degrees).

    Args:
        lat: latitude, degrees in [-90, 90].
        lon: longitude, degrees in [-180, 180].

    Returns:
        The geohash as an unsigned 64-bit integer (longitude bit first).
    """
    lat = float(lat)
    lon = float(lon)
    if -1e-12 < lat < 1e-12:
        lat = 0.0
    elif lat >= 90.0:
        lat = _BELOW_90
    if -1e-12 < lon < 1e-12:
        lon = 0.0
    return int(geohash.encode_uint64(lat, lon))
