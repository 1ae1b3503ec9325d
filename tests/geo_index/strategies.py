"""Hypothesis strategies for geo_index tests, weighted towards the cases that break indexes.

Hard cases get extra weight: latitudes beyond 85 degrees (cells collapse towards the pole,
Redis GEO refuses them), longitudes within a degree of the antimeridian, exact zeros,
exact +-90 / +-180, radii from 1 m to 50 km, duplicate coordinates, and points placed at
almost exactly the query radius (the inclusive ``<=`` boundary).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hypothesis import strategies as st

from geo_common.places import offset_point
from geo_index import BruteForceIndex, GeohashIndex, QuadTree, S2Index
from geo_index._base import IndexBase

#: Every index under test, by a short name (the brute-force oracle is not in the list).
#: The plain names use the defaults, i.e. the compiled scan (geo_index._cscan); the
#: ``*_python`` variants use the Python scan with its defaults (numpy from 64 candidates),
#: the ``*_numpy`` variants send every query through the numpy filter (dense_min=1) and
#: ``*_no_numpy`` never use it.
INDEXES: dict[str, Callable[[], IndexBase[int]]] = {
    "geohash": GeohashIndex,
    "geohash_python": lambda: GeohashIndex(native=False),
    "geohash_numpy": lambda: GeohashIndex(dense_min=1, native=False),
    "geohash_coarse_no_numpy": lambda: GeohashIndex(levels=(5, 9), max_cells=4, dense_min=None, native=False),
    "geohash_coarse_native": lambda: GeohashIndex(levels=(5, 9), max_cells=4, native=True),
    "quadtree": QuadTree,
    "quadtree_python": lambda: QuadTree(native=False),
    "quadtree_small_leaves_numpy": lambda: QuadTree(leaf_capacity=3, dense_min=1, native=False),
    "quadtree_small_leaves_native": lambda: QuadTree(leaf_capacity=3, native=True),
    "s2": S2Index,
    "s2_numpy": lambda: S2Index(dense_min=1, native=False),
}

RADII_M = (1.0, 500.0, 2_000.0, 5_000.0, 20_000.0, 50_000.0)

# Magnitudes python-geohash's C encoder gets wrong (below ~1e-17), and the float extremes.
tiny = st.one_of(st.floats(-1e-12, 1e-12), st.sampled_from([5e-324, -5e-324, 3.8e-233, -1e-300, 1e-17, -1e-16]))

latitudes = st.one_of(
    st.floats(-90.0, 90.0),
    tiny,
    st.floats(85.0, 90.0),
    st.floats(-90.0, -85.0),
    st.sampled_from([90.0, -90.0, 0.0, -0.0, 89.9999999, -89.9999999, 85.05112878, 60.0, -60.0]),
)

longitudes = st.one_of(
    st.floats(-180.0, 180.0),
    tiny,
    st.floats(179.0, 180.0),
    st.floats(-180.0, -179.0),
    st.sampled_from([180.0, -180.0, 0.0, -0.0, 179.9999999, -179.9999999]),
)

radii = st.one_of(st.floats(1.0, 50_000.0), st.sampled_from(RADII_M))


@st.composite
def scenes(draw: st.DrawFn, max_points: int = 40) -> tuple[tuple[float, float], float, list[tuple[float, float]]]:
    """A query point, a radius, and points around it (degrees, metres).

    Points are a mix of: offsets from the query at distances up to twice the radius, points
    at the radius itself (+-1e-9 relative), exact duplicates of earlier points or of the
    query, the query's antimeridian twin, and uniform points anywhere.
    """
    q = (draw(latitudes), draw(longitudes))
    radius = draw(radii)
    n = draw(st.integers(0, max_points))
    points: list[tuple[float, float]] = []
    for _ in range(n):
        kind = draw(st.integers(0, 9))
        if kind <= 4:
            d = draw(st.floats(0.0, 2.0 * radius))
            points.append(offset_point(q[0], q[1], d, draw(st.floats(0.0, 2 * math.pi))))
        elif kind <= 6:
            d = radius * (1.0 + draw(st.sampled_from([-1e-9, 0.0, 1e-9])))
            points.append(offset_point(q[0], q[1], d, draw(st.floats(0.0, 2 * math.pi))))
        elif kind == 7 and points:
            points.append(draw(st.sampled_from(points)))
        elif kind == 8:
            twin = q[1] - 360.0 if q[1] == 180.0 else q[1] + 360.0 if q[1] == -180.0 else q[1]
            points.append((q[0], twin))
        else:
            points.append((draw(latitudes), draw(longitudes)))
    return q, radius, [(clamp_lat(la), lo) for la, lo in points]


def clamp_lat(lat: float) -> float:
    """``offset_point`` can round a hair past a pole; keep latitudes valid."""
    return max(-90.0, min(90.0, lat))


def oracle(points: list[tuple[float, float]]) -> BruteForceIndex[int]:
    """The reference: a plain haversine scan over ``points`` with ids 0..n-1."""
    ref: BruteForceIndex[int] = BruteForceIndex()
    ref.bulk_load((i, la, lo) for i, (la, lo) in enumerate(points))
    return ref
