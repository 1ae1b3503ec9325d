"""A plain scan: the reference every other index is tested against.

It calls :func:`geo_index.haversine_m` itself for every point, keeps those within the
radius and sorts by (distance, id), with no precomputation and no pruning. That is the
definition of a correct answer. O(n) per query.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

from geo_index._base import Entry, IndexBase
from geo_index.distance import haversine_m

K = TypeVar("K", bound=Hashable)


class BruteForceIndex(IndexBase[K]):
    """A :class:`geo_index.SpatialIndex` that scans every point on every query.

    Args:
        max_radius_m: the largest radius ``within``/``nearest`` accept, metres.
    """

    def _add(self, entry: Entry[K]) -> None:
        pass  # the id -> entry map kept by IndexBase is the whole store

    def _discard(self, entry: Entry[K]) -> None:
        pass

    def _within(self, lat: float, lon: float, radius_m: float, limit: int | None) -> list[tuple[K, float]]:
        out: list[tuple[float, K]] = []
        for id, entry in self._points.items():
            d = haversine_m(lat, lon, entry.lat, entry.lon)
            if d <= radius_m:
                out.append((d, id))
        out.sort()
        if limit is not None:
            del out[limit:]
        return [(id, d) for d, id in out]

    def _nearest(self, lat: float, lon: float, k: int, cap_m: float) -> list[tuple[K, float]]:
        return self._within(lat, lon, cap_m, k)


__all__ = ["BruteForceIndex"]
