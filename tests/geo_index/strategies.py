"""Hypothesis strategies for geo_index tests, weighted towards the cases that break indexes.

Hard cases get extra weight: latitudes beyond 85 degrees (cells collapse towards the pole,
Redis GEO refuses them), longitudes within a degree of the antimeridian, exact zeros,
exact +-90 / +-180, radii from 1 m to 50 km, duplicate coordinates, and points placed at
almost exactly the query radius (the inclusive ``<=`` boundary).

Every index is also filled in several ways (:data:`FILLS`), so that the points a query reads
sit in the bulk, in the delta of changes, or behind tombstones of removed and moved points.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

from geo_common.places import offset_point
from geo_index import BruteForceIndex, GeohashIndex, QuadTree, S2Index
from geo_index._base import IndexBase

#: Every index under test, by a short name (the brute-force oracle is not in the list): the
#: defaults, a coarse geohash (few, large cells), a quadtree that splits at 3 points, an S2
#: covering of 4 cells, and variants whose changes stay in the delta (``merge_every=None``:
#: nothing is merged unless a test calls ``merge()``) or are merged every 3 changes.
INDEXES: dict[str, Callable[[], IndexBase]] = {
    "geohash": GeohashIndex,
    "geohash_coarse": lambda: GeohashIndex(levels=(5, 9), max_cells=4),
    "quadtree": QuadTree,
    "quadtree_small_leaves": lambda: QuadTree(leaf_capacity=3),
    "s2": S2Index,
    "s2_few_cells": lambda: S2Index(max_cells=4),
    "geohash_delta": lambda: GeohashIndex(merge_every=None),
    "quadtree_delta": lambda: QuadTree(leaf_capacity=3, merge_every=None),
    "s2_delta": lambda: S2Index(merge_every=None),
    "geohash_merge_3": lambda: GeohashIndex(merge_every=3),
    "quadtree_merge_3": lambda: QuadTree(leaf_capacity=3, merge_every=3),
    "s2_merge_3": lambda: S2Index(max_cells=4, merge_every=3),
}

#: How a test puts its points into an index (see :func:`fill`).
FILLS = ("bulk_load", "arrays", "insert", "split", "moved")

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

Scene = tuple[tuple[float, float], float, list[tuple[float, float]]]


@st.composite
def scenes(draw: st.DrawFn, max_points: int = 40) -> Scene:
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


def antipode(lat: float, lon: float) -> tuple[float, float]:
    """The point opposite ``(lat, lon)`` on the sphere (degrees)."""
    return -lat, lon - 180.0 if lon > 0.0 else lon + 180.0


def fill(idx: IndexBase, points: list[tuple[float, float]], how: str) -> None:
    """Put ``points`` into ``idx`` with ids 0..n-1, in one of the ways of :data:`FILLS`.

    * ``bulk_load`` / ``arrays``: one ``bulk_load`` / ``bulk_load_arrays`` (into the bulk);
    * ``insert``: one ``insert`` each (into the delta, until a merge);
    * ``split``: the first half bulk-loaded, the rest inserted;
    * ``moved``: every point bulk-loaded at its antipode, with decoys at the true places
      (ids n..2n-1); then each point is moved to its place and each decoy removed, so the
      bulk holds only tombstones where the points now are.
    """
    items = [(i, la, lo) for i, (la, lo) in enumerate(points)]
    n = len(items)
    if how == "bulk_load":
        idx.bulk_load(items)
    elif how == "arrays":
        ids = np.arange(n, dtype=np.int64)
        idx.bulk_load_arrays(ids, np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    elif how == "insert":
        for item in items:
            idx.insert(*item)
    elif how == "split":
        idx.bulk_load(items[: n // 2])
        for item in items[n // 2 :]:
            idx.insert(*item)
    elif how == "moved":
        idx.bulk_load([(i, *antipode(la, lo)) for i, la, lo in items] + [(n + i, la, lo) for i, la, lo in items])
        for i, la, lo in items:
            idx.move(i, la, lo)
            idx.remove(n + i)
    else:
        raise AssertionError(f"unknown fill {how!r}")
    assert len(idx) == n


def oracle(points: list[tuple[float, float]]) -> BruteForceIndex[int]:
    """The reference: a plain haversine scan over ``points`` with ids 0..n-1."""
    ref: BruteForceIndex[int] = BruteForceIndex()
    ref.bulk_load((i, la, lo) for i, (la, lo) in enumerate(points))
    return ref
