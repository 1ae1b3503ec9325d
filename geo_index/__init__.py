"""Exact proximity search on the sphere: radius and k-nearest queries over three indexes.

>>> from geo_index import GeohashIndex
>>> idx = GeohashIndex()
>>> idx.insert(1, 51.5007, -0.1246)
>>> idx.within(51.5033, -0.1196, radius_m=1_000)
[(1, 450.95...)]
"""

from __future__ import annotations

from geo_index._base import IndexBase, Page, page_of
from geo_index.brute import BruteForceIndex
from geo_index.distance import EARTH_RADIUS_M, HALF_CIRCUMFERENCE_M, box_circle, haversine_m, in_box
from geo_index.errors import (
    DuplicateId,
    GeoIndexError,
    InvalidCoordinate,
    InvalidCount,
    InvalidId,
    InvalidOption,
    InvalidPosition,
    InvalidRadius,
    UnknownId,
)
from geo_index.geohash_index import GeohashIndex
from geo_index.protocol import SpatialIndex
from geo_index.quadtree import QuadTree
from geo_index.s2_index import S2Index
from geo_index.validate import DEFAULT_MAX_RADIUS_M

__all__ = [
    "DEFAULT_MAX_RADIUS_M",
    "EARTH_RADIUS_M",
    "HALF_CIRCUMFERENCE_M",
    "BruteForceIndex",
    "DuplicateId",
    "GeoIndexError",
    "GeohashIndex",
    "IndexBase",
    "InvalidCoordinate",
    "InvalidCount",
    "InvalidId",
    "InvalidOption",
    "InvalidPosition",
    "InvalidRadius",
    "Page",
    "QuadTree",
    "S2Index",
    "SpatialIndex",
    "UnknownId",
    "box_circle",
    "haversine_m",
    "in_box",
    "page_of",
]
