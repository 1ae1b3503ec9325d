"""The geohash cells of nearby-stranger discovery, and the news carried in them (pure).

Every opted-in user publishes their coarse position into the channel of the cell they are in
(:func:`home_cell`) and listens to the cells that cover the disc of the discovery radius
around them (:func:`cover`). Publisher and listener compute the same names from the same
rules, so nobody needs to know where anybody else is subscribed.

**Precision** (:func:`precision_for`): the finest geohash precision whose cells are at least
the radius tall and, at the equator, at least the radius wide. A disc of that radius then
touches at most the user's own cell and its 8 neighbours wherever cells are at least the
radius wide (everywhere the cells are not squeezed by latitude): with the default 1,000 m,
precision 5, cells of 4.9 km x 4.9 km at the equator. A finer precision would need more
than 9 channels per listener; a coarser one would send each listener more strangers it must
then discard as out of range.

**Towards the poles** cells narrow east-west (4.9 km x cos(latitude)), so the cover takes
as many columns as the disc spans: the longitude extent of the disc is computed exactly
(``asin(sin(r) / cos(latitude))``), across the 180th meridian too. Above :data:`POLAR_LAT`
degrees (north or south) that would take tens of columns, so everyone there shares one
channel per pole instead (:data:`POLAR_NORTH`, :data:`POLAR_SOUTH`): the few people there
are all heard, and kept or discarded by distance like any other stranger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geohash
import orjson

from geo_index import EARTH_RADIUS_M

#: Beyond this latitude (north or south), degrees, a pole's single channel replaces the cells.
POLAR_LAT = 80.0
#: The cell names of the two polar channels (no geohash has these letters).
POLAR_NORTH = "pole-n"
POLAR_SOUTH = "pole-s"
#: The finest precision considered (cells of a few metres: radii below are refused anyway).
MAX_PRECISION = 9


def _steps(precision: int) -> tuple[float, float]:
    """A cell's height and width at ``precision``, degrees."""
    bits = 5 * precision
    return 180.0 / 2 ** (bits // 2), 360.0 / 2 ** (bits - bits // 2)


def precision_for(radius_m: float) -> int:
    """The finest precision whose cells are at least ``radius_m`` tall and (at the equator) wide.

    Raises:
        ValueError: the radius is not positive, or larger than a precision-1 cell.
    """
    if not radius_m > 0:
        raise ValueError("the discovery radius must be positive")
    best = 0
    for precision in range(1, MAX_PRECISION + 1):
        height, width = _steps(precision)
        if math.radians(min(height, width)) * EARTH_RADIUS_M >= radius_m:
            best = precision
    if best == 0:
        raise ValueError(f"a discovery radius of {radius_m:g} m is larger than any cell")
    return best


def home_cell(latitude: float, longitude: float, precision: int) -> str:
    """The cell a user at this point publishes into (a pole's channel beyond :data:`POLAR_LAT`)."""
    if latitude >= POLAR_LAT:
        return POLAR_NORTH
    if latitude <= -POLAR_LAT:
        return POLAR_SOUTH
    return str(geohash.encode(latitude, longitude, precision))


def cover(latitude: float, longitude: float, radius_m: float, precision: int) -> frozenset[str]:
    """The cells whose publishers may be within ``radius_m`` of this point.

    Every point of the disc lies in one of them (or beyond :data:`POLAR_LAT`, in a pole's
    channel, which is included when the disc reaches that far).
    """
    angle = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(angle)
    south, north = latitude - dlat, latitude + dlat
    cells: set[str] = set()
    if north >= POLAR_LAT:
        cells.add(POLAR_NORTH)
    if south <= -POLAR_LAT:
        cells.add(POLAR_SOUTH)
    south, north = max(south, -POLAR_LAT), min(north, POLAR_LAT)
    if south >= north:
        return frozenset(cells)
    height, width = _steps(precision)
    # The disc's longitude extent (exact on the sphere; its centre is below POLAR_LAT + dlat,
    # far from the pole, so the ratio stays below 1).
    dlon = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(math.radians(latitude)))))
    columns = round(360.0 / width)
    first_col = math.floor((longitude - dlon + 180.0) / width)
    last_col = math.floor((longitude + dlon + 180.0) / width)
    first_row = math.floor((south + 90.0) / height)
    last_row = min(math.floor((north + 90.0) / height), round(180.0 / height) - 1)
    for row in range(first_row, last_row + 1):
        centre_lat = -90.0 + (row + 0.5) * height
        for col in range(first_col, min(last_col, first_col + columns - 1) + 1):
            centre_lon = -180.0 + ((col % columns) + 0.5) * width
            cells.add(str(geohash.encode(centre_lat, centre_lon, precision)))
    return frozenset(cells)


def cell_point(cell: str) -> tuple[float, float]:
    """A point inside the cell (its centre; a pole for a pole's channel), degrees: the region
    a cell's channel lives in is the region of this point."""
    if cell == POLAR_NORTH:
        return 90.0, 0.0
    if cell == POLAR_SOUTH:
        return -90.0, 0.0
    latitude, longitude = geohash.decode(cell)
    return float(latitude), float(longitude)


def cell_channel(namespace: str, region: str, cell: str) -> str:
    """The pub/sub channel of a cell."""
    return f"{namespace}:{region}:cell:{cell}"


def cell_members_key(namespace: str, region: str, cell: str) -> str:
    """The Redis hash of who was last heard in a cell (user id -> their latest :class:`CellNews`)."""
    return f"{namespace}:{region}:cell-members:{cell}"


# --- what travels in a cell's channel -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CellNews:
    """One user's news in a cell: where they are (coarse), or that they left it.

    Attributes:
        user_id: the user (never sent to a client).
        cell: the cell the news is about.
        at: when the user's server heard it, Unix ms (newer news replaces older).
        latitude: the centre of the user's geohash-6 cell, degrees (None when ``gone``).
        longitude: as ``latitude``.
        handle: the public handle the user chose, or None.
        gone: why the user left the cell: ``moved``, ``offline`` or ``hidden`` (None: here).
    """

    user_id: int
    cell: str
    at: int
    latitude: float | None = None
    longitude: float | None = None
    handle: str | None = None
    gone: str | None = None


GONE_REASONS = ("moved", "offline", "hidden")


class CellNewsError(ValueError):
    """Not a cell message."""


def encode_news(news: CellNews) -> bytes:
    """A cell-channel message (and the member record kept in the cell's hash)."""
    if news.gone is not None:
        return orjson.dumps({"u": news.user_id, "c": news.cell, "at": news.at, "g": news.gone})
    return orjson.dumps(
        {"u": news.user_id, "c": news.cell, "at": news.at, "la": news.latitude, "lo": news.longitude, "h": news.handle}
    )


def decode_news(data: bytes | str) -> CellNews:
    """Read a cell-channel message.

    Raises:
        CellNewsError: not one.
    """
    try:
        msg = orjson.loads(data)
        user_id, cell, at = int(msg["u"]), str(msg["c"]), int(msg["at"])
        gone = msg.get("g")
        if gone is not None:
            if gone not in GONE_REASONS:
                raise CellNewsError(f"unknown reason {gone!r}")
            return CellNews(user_id, cell, at, gone=gone)
        handle = msg.get("h")
        latitude, longitude = float(msg["la"]), float(msg["lo"])
        if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
            raise CellNewsError("a position off the globe")
        return CellNews(user_id, cell, at, latitude, longitude, None if handle is None else str(handle))
    except CellNewsError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise CellNewsError(f"not a cell message: {str(data)[:80]!r}") from None
