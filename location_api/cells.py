"""Geohash cells for the ``sql`` strategy: which cells cover a search, as text ranges.

The ``sql`` strategy is the classic geohash-column query: it looks up the businesses whose
stored 12-character geohash starts with one of a few cell prefixes, on an index of that
column, then computes exact distances. Which cells, and how big, comes from
:class:`geo_index.GeohashIndex` (its ``plan``): the finest geohash level, in bits, at which
at most 16 cells overlap the bounding box of the search circle. That choice depends on the
radius and on the latitude (cells narrow as ``cos(latitude)``), and the cells are enumerated
over the whole box, so the antimeridian and the poles need no special case.

A level of ``b`` bits is ``b // 5`` whole characters plus ``b % 5`` leading bits of the next
one. Because the geohash alphabet ``0-9b-hjkmnp-z`` is in ASCII order, every cell, and every
run of consecutive cells, is one contiguous range of strings ``[lo, hi)``, which the index
(``text_pattern_ops``, compared byte by byte) scans directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geohash

from geo_index import GeohashIndex
from geo_index.distance import cap_bounds

ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
#: Stored geohash length, characters (60 bits).
GEOHASH_CHARS = 12
_GEOHASH_BITS = 5 * GEOHASH_CHARS
# python-geohash refuses latitude 90 (and warns); the pole is filed in the top row, as
# geo_index does.
_BELOW_90 = math.nextafter(90.0, 0.0)
# python-geohash 0.9 misplaces coordinates of magnitude below about 1e-16 degrees (some land
# in a far cell, some on the wrong side of 0). Anything that small lies in the same 60-bit
# cell as this value of the same sign (a cell is 1.7e-7 degrees tall), so it is encoded as that.
_TINY = 1e-12
# Greater than every geohash character: the open upper end of the last cell.
_AFTER_ALL = "{"

# The planner: an empty index with the default levels; ``plan`` only looks at the levels.
_PLANNER: GeohashIndex = GeohashIndex()
#: The levels (geohash bits) a search may use, coarsest first. Cache keys exist at each.
LEVELS: tuple[int, ...] = _PLANNER.levels


def geohash12(latitude: float, longitude: float) -> str:
    """The 12-character geohash stored with a business.

    Args:
        latitude: degrees in [-90, 90]; 90 is filed in the top row.
        longitude: degrees in [-180, 180]; 180 wraps to -180 (python-geohash's convention).

    Returns:
        The geohash, as python-geohash's ``encode(latitude, longitude, 12)`` (with the two
        corrections above: the pole, and magnitudes below 1e-12 degrees).
    """
    if latitude >= 90.0:
        latitude = _BELOW_90
    elif 0.0 < abs(latitude) < _TINY:
        latitude = math.copysign(_TINY, latitude)
    if 0.0 < abs(longitude) < _TINY:
        longitude = math.copysign(_TINY, longitude)
    return str(geohash.encode(latitude, longitude, GEOHASH_CHARS))


@dataclass(frozen=True, slots=True)
class Cell:
    """One geohash cell of a level.

    Attributes:
        bits: the level, geohash bits (longitude bit first).
        code: the cell's first ``bits`` bits as an integer.
    """

    bits: int
    code: int


@dataclass(frozen=True, slots=True)
class Cover:
    """The cells one search looks up.

    Attributes:
        bits: the level chosen, geohash bits.
        cells: the cells overlapping the search's bounding box, in code order.
    """

    bits: int
    cells: tuple[Cell, ...]


def cover(latitude: float, longitude: float, radius_m: float) -> Cover:
    """The cells that contain every point within ``radius_m`` of a location.

    Args:
        latitude: degrees in [-90, 90].
        longitude: degrees in [-180, 180].
        radius_m: metres, > 0.

    Returns:
        The level and its cells overlapping the circle's bounding box.
    """
    if longitude == -180.0:
        longitude = 180.0  # one meridian, two spellings: use the one cap_bounds splits at
    bits, _count = _PLANNER.plan(latitude, longitude, radius_m)
    box = cap_bounds(latitude, longitude, radius_m)
    lat_bits = bits // 2
    lon_bits = bits - lat_bits
    nrows, ncols = 1 << lat_bits, 1 << lon_bits
    r0 = min(int((box.lat_lo + 90.0) * (nrows / 180.0)), nrows - 1)
    r1 = min(int((box.lat_hi + 90.0) * (nrows / 180.0)), nrows - 1)
    columns: set[int] = set()
    for lo, hi in box.lon_ranges:
        c0 = min(int((lo + 180.0) * (ncols / 360.0)), ncols - 1)
        c1 = min(int((hi + 180.0) * (ncols / 360.0)), ncols - 1)
        columns.update(range(c0, c1 + 1))
    codes = sorted(_interleave(col, row, bits) for row in range(r0, r1 + 1) for col in columns)
    return Cover(bits, tuple(Cell(bits, code) for code in codes))


def _interleave(col: int, row: int, bits: int) -> int:
    """A cell's code: column and row bits interleaved, longitude first, as geohash does."""
    code = 0
    lon_left = bits - bits // 2
    lat_left = bits // 2
    for i in range(bits):
        if i % 2 == 0:
            lon_left -= 1
            code = (code << 1) | ((col >> lon_left) & 1)
        else:
            lat_left -= 1
            code = (code << 1) | ((row >> lat_left) & 1)
    return code


def text_ranges(cells: tuple[Cell, ...]) -> list[tuple[str, str]]:
    """The geohash string ranges ``[lo, hi)`` holding exactly the given cells' points.

    Consecutive codes are merged into one range, so the database scans fewer ranges.

    Args:
        cells: cells of one level, in code order.

    Returns:
        ``(lo, hi)`` pairs to compare a stored geohash with (``lo <= geohash < hi``, bytewise).
    """
    ranges: list[tuple[str, str]] = []
    if not cells:
        return ranges
    bits = cells[0].bits
    run_start = run_end = cells[0].code
    for cell in cells[1:]:
        if cell.code == run_end + 1:
            run_end = cell.code
            continue
        ranges.append(_code_range(run_start, run_end, bits))
        run_start = run_end = cell.code
    ranges.append(_code_range(run_start, run_end, bits))
    return ranges


def _code_range(first: int, last: int, bits: int) -> tuple[str, str]:
    chars = -(-bits // 5)  # whole characters needed to hold ``bits`` bits
    pad = 5 * chars - bits
    lo = _base32(first << pad, chars)
    end = (last + 1) << pad
    hi = _AFTER_ALL if end >> (5 * chars) else _base32(end, chars)
    return lo, hi


def _base32(value: int, chars: int) -> str:
    return "".join(ALPHABET[(value >> (5 * (chars - 1 - i))) & 31] for i in range(chars))


def cell_of(geohash_text: str, bits: int) -> Cell:
    """The cell of one level that contains a stored geohash.

    Args:
        geohash_text: a 12-character geohash.
        bits: the level, geohash bits (at most 60).

    Returns:
        The cell.
    """
    value = 0
    for c in geohash_text[:GEOHASH_CHARS]:
        value = (value << 5) | _VALUE[c]
    return Cell(bits, value >> (_GEOHASH_BITS - bits))


def cells_containing(geohash_text: str) -> list[Cell]:
    """Every cell, one per level in :data:`LEVELS`, that holds a point with this geohash.

    A write invalidates these cache entries for the old and the new position of a business.
    """
    return [cell_of(geohash_text, bits) for bits in LEVELS]
