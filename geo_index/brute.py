"""A plain scan: the reference every other index is tested against.

It calls :func:`geo_index.haversine_m` itself for every point, keeps those within the
radius and sorts by (distance, id), with no precomputation and no pruning. That is the
definition of a correct answer. O(n) per query. Ids may be any hashable values that order
against each other.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

from geo_index._base import Page, Where, page_of
from geo_index.distance import haversine_m, in_box
from geo_index.errors import DuplicateId, UnknownId
from geo_index.validate import (
    DEFAULT_MAX_RADIUS_M,
    check_after,
    check_count,
    check_max_radius_option,
    check_point,
    check_radius,
    check_box,
    check_where,
)

K = TypeVar("K", bound=Hashable)

_MISSING = object()


def _passes(where: Where, id: Any) -> bool:
    if callable(where):
        return bool(where(id))
    assert where is not None
    table, value = where
    if isinstance(table, list):
        got = table[id] if type(id) is int and 0 <= id < len(table) else _MISSING
    else:
        got = table.get(id, _MISSING)
    return got is not _MISSING and (got is value or bool(got == value))


class BruteForceIndex(Generic[K]):
    """A :class:`geo_index.SpatialIndex` that scans every point on every query.

    Args:
        max_radius_m: the largest radius ``within``/``nearest`` accept, metres.
    """

    def __init__(self, *, max_radius_m: float = DEFAULT_MAX_RADIUS_M) -> None:
        self._max_radius_m = check_max_radius_option(max_radius_m)
        self._points: dict[K, tuple[float, float]] = {}

    @property
    def max_radius_m(self) -> float:
        """The largest radius ``within`` and ``nearest`` accept, metres."""
        return self._max_radius_m

    def __len__(self) -> int:
        return len(self._points)

    def __contains__(self, id: object) -> bool:
        return id in self._points

    def position(self, id: K) -> tuple[float, float]:
        """The coordinates of a point as given (``UnknownId`` if absent)."""
        if id not in self._points:
            raise UnknownId(f"id {id!r} is not in the index")
        return self._points[id]

    def insert(self, id: K, lat: float, lon: float) -> None:
        """Add a point (``DuplicateId`` if present)."""
        check_point(lat, lon)
        if id in self._points:
            raise DuplicateId(f"id {id!r} is already in the index; use move() to change its position")
        self._points[id] = (lat, lon)

    def remove(self, id: K) -> None:
        """Delete a point (``UnknownId`` if absent)."""
        if self._points.pop(id, None) is None:
            raise UnknownId(f"id {id!r} is not in the index")

    def move(self, id: K, lat: float, lon: float) -> None:
        """Change a point's coordinates (``UnknownId`` if absent)."""
        check_point(lat, lon)
        if id not in self._points:
            raise UnknownId(f"id {id!r} is not in the index")
        self._points[id] = (lat, lon)

    def bulk_load(self, items: Iterable[tuple[K, float, float]]) -> None:
        """Add many points; all-or-nothing on errors."""
        staged: dict[K, tuple[float, float]] = {}
        for id, lat, lon in items:
            check_point(lat, lon)
            if id in self._points or id in staged:
                raise DuplicateId(f"id {id!r} is already in the index or repeated in items")
            staged[id] = (lat, lon)
        self._points.update(staged)

    def within(self, lat: float, lon: float, radius_m: float, limit: int | None = None) -> list[tuple[K, float]]:
        """Every point within ``radius_m``, nearest first (ties by id), at most ``limit``."""
        check_point(lat, lon)
        check_radius(radius_m, self._max_radius_m)
        if limit is not None:
            check_count(limit, "limit")
        return self._scan(lat, lon, radius_m, limit)

    def _scan(self, lat: float, lon: float, radius_m: float, limit: int | None) -> list[tuple[K, float]]:
        out: list[tuple[float, K]] = []
        for id, (p_lat, p_lon) in self._points.items():
            d = haversine_m(lat, lon, p_lat, p_lon)
            if d <= radius_m:
                out.append((d, id))
        out.sort()
        if limit is not None:
            del out[limit:]
        return [(id, d) for d, id in out]

    def page(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        limit: int | None,
        after: tuple[float, K] | None = None,
        *,
        where: Where = None,
        box: tuple[float, float, float, float] | None = None,
    ) -> Page:
        """:func:`geo_index.page_of` of :meth:`within`, counting only points in ``box`` and
        passing ``where``."""
        check_point(lat, lon)
        check_radius(radius_m, self._max_radius_m)
        if limit is not None:
            check_count(limit, "limit")
        if after is not None and not (type(after) is tuple and len(after) == 2):
            check_after(after)
        check_where(where)
        check_box(box)
        hits = self._scan(lat, lon, radius_m, None)
        if box is not None:
            hits = [hit for hit in hits if in_box(*self._points[hit[0]], box)]
        if where is not None:
            hits = [hit for hit in hits if _passes(where, hit[0])]
        return page_of(hits, limit, after)

    def nearest(self, lat: float, lon: float, k: int, max_radius_m: float | None = None) -> list[tuple[K, float]]:
        """The ``k`` nearest points (ties by id), optionally only within ``max_radius_m``."""
        check_point(lat, lon)
        check_count(k, "k")
        if max_radius_m is not None:
            check_radius(max_radius_m, self._max_radius_m, "max_radius_m")
        return self._scan(lat, lon, math.inf if max_radius_m is None else max_radius_m, k)


__all__ = ["BruteForceIndex"]
