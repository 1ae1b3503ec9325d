"""Millions of benchmark points at once: :func:`geo_common.places.scatter`'s distribution in numpy.

``scatter`` yields one point at a time (fine for tests, minutes for 50 million points); this
draws the same distribution in bulk: a GeoNames place picked uniformly, a random bearing and
an exponential distance (mean ``spread_m``, capped at ten times that). The points are moved
along the great circle with unit vectors (the start's, and the north and east directions
there), so no pole or antimeridian case arises. Benchmark tooling only: a different random
stream from ``scatter``'s for the same seed.
"""

from __future__ import annotations

import numpy as np

from geo_common.places import load_places

EARTH_RADIUS_M = 6_371_008.8


def scatter_arrays(n: int, *, seed: int = 0, spread_m: float = 5_000.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points scattered around GeoNames places, as (latitudes, longitudes) in degrees."""
    places = np.array([(p.latitude, p.longitude) for p in load_places()], dtype=np.float64)
    rng = np.random.default_rng(seed)
    lats = np.empty(n)
    lons = np.empty(n)
    for start in range(0, n, _CHUNK):  # bounded temporaries at 50 million points
        end = min(n, start + _CHUNK)
        lats[start:end], lons[start:end] = _scatter(places, rng, end - start, spread_m)
    return lats, lons


_CHUNK = 2_000_000


def _scatter(places: np.ndarray, rng: np.random.Generator, n: int, spread_m: float) -> tuple[np.ndarray, np.ndarray]:
    pick = places[rng.integers(0, len(places), n)]
    delta = np.minimum(rng.exponential(spread_m, n), 10.0 * spread_m) / EARTH_RADIUS_M
    bearing = rng.uniform(0.0, 2.0 * np.pi, n)
    phi = np.radians(pick[:, 0])
    lam = np.radians(pick[:, 1])
    start = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    north = np.stack([-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)])
    east = np.stack([-np.sin(lam), np.cos(lam), np.zeros(n)])
    way = np.cos(bearing) * north + np.sin(bearing) * east
    end = np.cos(delta) * start + np.sin(delta) * way
    lats = np.degrees(np.arcsin(np.clip(end[2], -1.0, 1.0)))
    lons = np.degrees(np.arctan2(end[1], end[0]))
    return np.clip(lats, -90.0, 90.0), np.clip(lons, -180.0, 180.0)
