"""Where simulated users stand: GeoNames places, uniform on the sphere, or a file of points."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

from geo_common.places import load_places, scatter


class PointsError(ValueError):
    """The points source is unknown or its file cannot be read; the message says which."""


def query_points(source: str, n: int, *, seed: int = 0, flag: str = "--points") -> list[tuple[float, float]]:
    """``n`` (latitude, longitude) points in degrees.

    Args:
        source: ``geonames`` (scattered around real places, real-world density), ``uniform``
            (uniform on the sphere's surface), or a path to a CSV of ``lat,lon`` rows (header optional).
        n: how many points; a file's points are cycled to reach it.
        seed: random seed.
        flag: the option or key that named ``source``, for the error message.

    Raises:
        PointsError: unknown source, or an unreadable / empty / malformed file.
    """
    if source == "geonames":
        return list(scatter(n, seed=seed, spread_m=2_000.0))
    if source == "uniform":
        rng = random.Random(seed)
        # Uniform on the sphere: latitude from the arcsine of a uniform variate.
        return [(math.degrees(math.asin(rng.uniform(-1.0, 1.0))), rng.uniform(-180.0, 180.0)) for _ in range(n)]
    rows = _read_points_file(source, flag)
    return [rows[i % len(rows)] for i in range(n)]


def truth_points(source: str, flag: str = "--verify-against") -> list[tuple[float, float]]:
    """Every place an API is expected to hold: ``geonames`` (the demo set) or a CSV of ``lat,lon``.

    ``flag`` is the option or key that named ``source``, for the error message.
    """
    if source == "geonames":
        return [(p.latitude, p.longitude) for p in load_places()]
    if source == "uniform":
        raise PointsError(f"{flag}: uniform is random points, not a data set; use geonames or a CSV file")
    return _read_points_file(source, flag)


def _read_points_file(source: str, flag: str) -> list[tuple[float, float]]:
    path = Path(source)
    if not path.is_file():
        raise PointsError(f"{flag}: {source!r} is not geonames, uniform, or a readable file")
    rows: list[tuple[float, float]] = []
    with path.open(newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), 1):
            if not row or row[0].strip().lower() in ("lat", "latitude"):
                continue
            try:
                lat, lon = float(row[0]), float(row[1])
            except (ValueError, IndexError):
                raise PointsError(f"{flag}: {source}:{lineno}: expected 'lat,lon', got {','.join(row)!r}") from None
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise PointsError(f"{flag}: {source}:{lineno}: coordinates out of range")
            rows.append((lat, lon))
    if not rows:
        raise PointsError(f"{flag}: {source} holds no points")
    return rows
