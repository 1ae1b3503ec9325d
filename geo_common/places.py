"""The GeoNames places this package ships, and synthetic points around them.

``data/cities1000.csv.gz`` holds 144,563 real places (every place with 1,000+ people) from
GeoNames' cities1000 (CC BY 4.0, https://www.geonames.org; see NOTICE), as latitude,
longitude, name, first- and second-level administrative names and country code. The demo
business set, the test oracles and the benchmarks all read it through this module, so each
place keeps its exact published coordinates (degrees, WGS84).
"""

from __future__ import annotations

import csv
import gzip
import math
import random
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

#: Mean Earth radius in metres, the same sphere :func:`geo_index.haversine_m` uses.
_EARTH_RADIUS_M = 6_371_008.8

#: The shipped places: a gzip-compressed CSV with the header ``lat,lon,name,admin1,admin2,cc``.
GEONAMES_PATH = Path(__file__).with_name("data") / "cities1000.csv.gz"


class Place(NamedTuple):
    """One GeoNames place: coordinates in degrees, names as published."""

    latitude: float
    longitude: float
    name: str
    admin1: str
    admin2: str
    country: str


@lru_cache(maxsize=1)
def load_places() -> tuple[Place, ...]:
    """Read every GeoNames place once (about 0.4 s) and keep them for the process.

    Returns:
        The 144,563 places in file order.
    """
    with gzip.open(GEONAMES_PATH, "rt", newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)  # header: lat,lon,name,admin1,admin2,cc
        return tuple(
            Place(float(lat), float(lon), name, admin1, admin2, cc) for lat, lon, name, admin1, admin2, cc in reader
        )


def offset_point(lat: float, lon: float, distance_m: float, bearing_rad: float) -> tuple[float, float]:
    """Move from a point along a great circle.

    Args:
        lat: start latitude in degrees.
        lon: start longitude in degrees.
        distance_m: how far to go, metres.
        bearing_rad: initial bearing, radians clockwise from north.

    Returns:
        (latitude, longitude) in degrees, longitude normalised to [-180, 180).
    """
    phi1 = math.radians(lat)
    lam1 = math.radians(lon)
    delta = distance_m / _EARTH_RADIUS_M
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(bearing_rad)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lam2 = lam1 + math.atan2(
        math.sin(bearing_rad) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * sin_phi2,
    )
    lon2 = (math.degrees(lam2) + 180.0) % 360.0 - 180.0
    return math.degrees(phi2), lon2


def scatter(
    n: int,
    *,
    seed: int = 0,
    spread_m: float = 5_000.0,
    places: Sequence[Place] | None = None,
) -> Iterator[tuple[float, float]]:
    """Yield ``n`` synthetic points scattered around random GeoNames places.

    Density follows the real world: a place is picked uniformly (so dense regions get more
    points), then the point lands at a random bearing and a distance drawn from an
    exponential distribution with mean ``spread_m`` metres (capped at 10x that).

    Args:
        n: how many points.
        seed: the random seed; the same seed gives the same points.
        spread_m: mean distance from the chosen place, metres.
        places: the places to scatter around (default: all GeoNames places).

    Yields:
        (latitude, longitude) in degrees.
    """
    pool = places if places is not None else load_places()
    rng = random.Random(seed)
    for _ in range(n):
        p = pool[rng.randrange(len(pool))]
        dist = min(rng.expovariate(1.0 / spread_m), 10.0 * spread_m)
        yield offset_point(p.latitude, p.longitude, dist, rng.uniform(0.0, 2.0 * math.pi))
