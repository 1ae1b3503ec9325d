"""Where simulated users stand: GeoNames places, uniform on the sphere, or a file of points."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

from geo_common.places import scatter


class PointsError(ValueError):
    """The points source is unknown or its file cannot be read; the message says which."""


def query_points(source: str, n: int, *, seed: int = 0) -> list[tuple[float, float]]:
    """``n`` (latitude, longitude) points in degrees.

    Args:
        source: ``geonames`` (scattered around real places, real-world density), ``uniform``
            (uniform on the sphere's surface), or a path to a CSV of ``lat,lon`` rows (header optional).
        n: how many points; a file's points are cycled to reach it.
        seed: random seed.

    Raises:
        PointsError: unknown source, or an unreadable / empty / malformed file.
    """
    if source == "geonames":
        return list(scatter(n, seed=seed, spread_m=2_000.0))
    if source == "uniform":
        rng = random.Random(seed)
        # Uniform on the sphere: latitude from the arcsine of a uniform variate.
        return [(math.degrees(math.asin(rng.uniform(-1.0, 1.0))), rng.uniform(-180.0, 180.0)) for _ in range(n)]
    path = Path(source)
    if not path.is_file():
        raise PointsError(f"--points: {source!r} is not geonames, uniform, or a readable file")
    rows: list[tuple[float, float]] = []
    with path.open(newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), 1):
            if not row or row[0].strip().lower() in ("lat", "latitude"):
                continue
            try:
                lat, lon = float(row[0]), float(row[1])
            except (ValueError, IndexError):
                raise PointsError(f"--points: {source}:{lineno}: expected 'lat,lon', got {','.join(row)!r}") from None
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise PointsError(f"--points: {source}:{lineno}: coordinates out of range")
            rows.append((lat, lon))
    if not rows:
        raise PointsError(f"--points: {source} holds no points")
    return [rows[i % len(rows)] for i in range(n)]
