"""The discovery cells (pure): precision, the cell a user speaks in, the cells a user hears,
and the news they carry; the cover is checked against random points at the hard places."""

from __future__ import annotations

import math
import random

import geohash
import pytest

from friends_ws.cells import (
    POLAR_LAT,
    POLAR_NORTH,
    POLAR_SOUTH,
    CellNews,
    CellNewsError,
    cell_point,
    cover,
    decode_news,
    encode_news,
    home_cell,
    precision_for,
)
from geo_index import EARTH_RADIUS_M, haversine_m


def _destination(lat: float, lon: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The point ``distance_m`` from (lat, lon) along a bearing, on the sphere, degrees."""
    d = distance_m / EARTH_RADIUS_M
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    lon2 = (math.degrees(l2) + 540.0) % 360.0 - 180.0
    return math.degrees(p2), lon2


def test_the_precision_is_the_finest_whose_cells_are_at_least_the_radius() -> None:
    assert precision_for(1000.0) == 5  # 4.9 km x 4.9 km; precision 6 is 0.61 km tall
    assert precision_for(610.0) == 6
    assert precision_for(2000.0) == 5
    assert precision_for(20_000.0) == 3  # precision 4 is 19.5 km tall
    with pytest.raises(ValueError):
        precision_for(0.0)
    with pytest.raises(ValueError):
        precision_for(6_000_000.0)


def test_mid_latitudes_take_at_most_the_cell_and_its_eight_neighbours() -> None:
    for lat, lon in [(52.52, 13.405), (37.7749, -122.4194), (-33.87, 151.21), (0.0, 0.0)]:
        cells = cover(lat, lon, 2000.0, 5)
        own = geohash.encode(lat, lon, 5)
        assert own in cells
        assert cells <= {own, *geohash.neighbors(own)}


# The hard places: the 180th meridian (Fiji, Chukotka), near the poles (Svalbard, Alert, the
# polar border itself), the equator and prime meridian, and ordinary ones.
PLACES = [
    (-17.8, 179.999),
    (-17.8, -179.999),
    (66.0, -179.99),
    (78.22, 15.65),
    (79.99, 20.0),
    (82.5, -62.35),
    (89.9, 0.0),
    (-79.995, 166.67),
    (0.0001, -0.0001),
    (48.85, 2.35),
]


@pytest.mark.parametrize("radius_m", [1000.0, 2000.0, 20_000.0])
@pytest.mark.parametrize(("lat", "lon"), PLACES)
def test_every_point_within_the_radius_speaks_in_a_cell_heard(lat: float, lon: float, radius_m: float) -> None:
    precision = precision_for(radius_m)
    heard = cover(lat, lon, radius_m, precision)
    rng = random.Random(f"{lat},{lon},{radius_m}")
    for _ in range(400):
        point = _destination(lat, lon, rng.uniform(0, 360), radius_m * math.sqrt(rng.random()))
        assert haversine_m(lat, lon, *point) <= radius_m + 1e-6
        assert home_cell(*point, precision) in heard, (point, heard)
    # And the rim itself.
    for bearing in range(0, 360, 5):
        point = _destination(lat, lon, bearing, radius_m * 0.999999)
        assert home_cell(*point, precision) in heard


def test_beyond_the_polar_latitude_a_pole_has_one_channel() -> None:
    assert home_cell(82.5, -62.35, 5) == POLAR_NORTH
    assert home_cell(-85.0, 10.0, 5) == POLAR_SOUTH
    assert home_cell(POLAR_LAT - 0.01, 10.0, 5) != POLAR_NORTH
    assert cover(82.5, -62.35, 2000.0, 5) == {POLAR_NORTH}
    near = cover(POLAR_LAT - 0.005, 10.0, 2000.0, 5)
    assert POLAR_NORTH in near and len(near) > 1
    assert cell_point(POLAR_NORTH) == (90.0, 0.0) and cell_point(POLAR_SOUTH) == (-90.0, 0.0)


def test_the_cover_wraps_the_180th_meridian() -> None:
    cells = cover(-17.8, 179.999, 2000.0, 5)
    west = {c for c in cells if geohash.decode(c)[1] > 0}
    east = {c for c in cells if geohash.decode(c)[1] < 0}
    assert west and east


def test_news_round_trips_and_malformed_news_is_refused() -> None:
    here = CellNews(42, "9q8yy", 1_763_890_000_000, 37.77, -122.41, "ana_surfs")
    gone = CellNews(42, "9q8yy", 1_763_890_000_001, gone="moved")
    assert decode_news(encode_news(here)) == here
    assert decode_news(encode_news(gone)) == gone
    for bad in [b"", b"[]", b'{"u": 1}', b'{"u": 1, "c": "x", "at": 1, "g": "teleported"}',
                b'{"u": 1, "c": "x", "at": 1, "la": 91, "lo": 0, "h": null}', b"\xff"]:  # fmt: skip
        with pytest.raises(CellNewsError):
            decode_news(bad)
