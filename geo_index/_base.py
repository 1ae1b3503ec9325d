"""What every index shares: id bookkeeping, argument checks and the public method shapes.

Subclasses implement the storage (``_add``, ``_discard``, ``_add_many``) and the search
(``_within``, optionally ``_nearest``). The public methods here validate every argument
*before* touching any state, so a failed call leaves the index unchanged.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Hashable, Iterable
from typing import Any, Generic, NamedTuple, TypeVar

from geo_index._scan import Record, Vec, make_record, unit_vector
from geo_index.distance import HALF_CIRCUMFERENCE_M, point_terms
from geo_index.errors import DuplicateId, UnknownId
from geo_index.validate import (
    DEFAULT_MAX_RADIUS_M,
    check_after,
    check_count,
    check_max_radius_option,
    check_point,
    check_radius,
    check_where,
)

K = TypeVar("K", bound=Hashable)

#: A page's filter: ``(table, value)``, only points whose ``table[id] == value`` (``table`` a
#: list indexed by int id, or a dict), or ``None`` for every point.
Where = tuple[list[Any] | dict[Any, Any], Any] | None

_MISSING = object()


def passes(where: tuple[list[Any] | dict[Any, Any], Any], id: object) -> bool:
    """Whether a point passes a page's filter; an id not in the table does not (the compiled scan's rule)."""
    table, value = where
    if isinstance(table, list):
        got = table[id] if type(id) is int and 0 <= id < len(table) else _MISSING
    else:
        got = table.get(id, _MISSING)
    return got is not _MISSING and (got is value or bool(got == value))


# First radius tried by the expanding k-nearest search, metres, and its growth factor.
# Each round costs roughly growth**2 times the previous one, so the rounds before the
# last add about 1/(growth**2 - 1) of extra work.
_NEAREST_START_M = 1_000.0
_NEAREST_GROWTH = 4.0


def _first(item: tuple[int, K, float, float]) -> int:
    return item[0]


def _order(hit: tuple[Any, float]) -> tuple[float, Any]:
    return hit[1], hit[0]


class Page(NamedTuple):
    """One page of a radius search (:meth:`IndexBase.page`).

    Attributes:
        total: points within the radius.
        following: those of them ordered after the page's start (``total`` for a first page).
        hits: the first ``limit`` of those, ``(id, distance_m)`` sorted by distance, then id;
            more follow when ``following > len(hits)``.
    """

    total: int
    following: int
    hits: list[tuple[Any, float]]


def page_of(hits: list[tuple[K, float]], limit: int, after: tuple[float, K] | None) -> Page:
    """Cut a page from every match.

    Args:
        hits: ``(id, distance_m)`` sorted by distance, then id (what ``within`` returns).
        limit: the page size.
        after: ``None``, or ``(distance_m, id)``: the page starts after it.

    Returns:
        The :class:`Page` of ``hits`` after ``after``.
    """
    start = 0 if after is None else bisect_right(hits, after, key=_order)
    return Page(len(hits), len(hits) - start, hits[start : start + limit])


class Entry(Generic[K]):
    """What an index remembers about one point.

    Attributes:
        lat: latitude as given, degrees.
        lon: longitude as given, degrees.
        record: the scan record ``(phi, lam, cos_phi, id)``.
        vec: the unit vector ``(x, y, z)`` the scan filters on.
        key: index-specific location key (a geohash, an S2 cell id).
    """

    __slots__ = ("key", "lat", "lon", "record", "vec")

    def __init__(self, id: K, lat: float, lon: float, key: int) -> None:
        terms = point_terms(lat, lon)
        self.lat = lat
        self.lon = lon
        self.record: Record[K] = make_record(terms, id)
        self.vec: Vec = unit_vector(terms)
        self.key = key


class IndexBase(Generic[K]):
    """Shared implementation of :class:`geo_index.SpatialIndex`."""

    def __init__(self, *, max_radius_m: float = DEFAULT_MAX_RADIUS_M) -> None:
        self._max_radius_m = check_max_radius_option(max_radius_m)
        self._points: dict[K, Entry[K]] = {}

    # ----------------------------------------------------------------- storage hooks
    def _key(self, lat: float, lon: float) -> int:
        """Location key of a point (degrees); stored in its :class:`Entry`."""
        return 0

    def _add(self, entry: Entry[K]) -> None:
        raise NotImplementedError

    def _discard(self, entry: Entry[K]) -> None:
        raise NotImplementedError

    def _add_many(self, entries: list[Entry[K]]) -> None:
        for entry in entries:
            self._add(entry)

    def _within(self, lat: float, lon: float, radius_m: float, limit: int | None) -> list[tuple[K, float]]:
        raise NotImplementedError

    def _page(
        self, lat: float, lon: float, radius_m: float, limit: int, after: tuple[float, K] | None, where: Where
    ) -> Page:
        """:meth:`page` from :meth:`_within`; indexes with a compiled scan count instead."""
        hits = self._within(lat, lon, radius_m, None)
        if where is not None:
            hits = [hit for hit in hits if passes(where, hit[0])]
        return page_of(hits, limit, after)

    # ----------------------------------------------------------------- public API
    @property
    def max_radius_m(self) -> float:
        """The largest radius ``within`` and ``nearest`` accept, metres."""
        return self._max_radius_m

    def __len__(self) -> int:
        return len(self._points)

    def __contains__(self, id: object) -> bool:
        return id in self._points

    def position(self, id: K) -> tuple[float, float]:
        """Return the coordinates of a point exactly as they were given.

        Args:
            id: the point's id.

        Returns:
            (latitude, longitude), degrees.

        Raises:
            UnknownId: the index does not hold ``id``.
        """
        entry = self._points.get(id)
        if entry is None:
            raise UnknownId(f"id {id!r} is not in the index")
        return entry.lat, entry.lon

    def _entry(self, id: K, lat: float, lon: float) -> Entry[K]:
        return Entry(id, lat, lon, self._key(lat, lon))

    def insert(self, id: K, lat: float, lon: float) -> None:
        """Add a point.

        Args:
            id: a hashable id, orderable against the other ids of this index.
            lat: latitude, degrees in [-90, 90].
            lon: longitude, degrees in [-180, 180].

        Raises:
            InvalidCoordinate: ``lat`` or ``lon`` is out of range or not finite.
            DuplicateId: ``id`` is already present (use :meth:`move`).
        """
        check_point(lat, lon)
        if id in self._points:
            raise DuplicateId(f"id {id!r} is already in the index; use move() to change its position")
        entry = self._entry(id, lat, lon)
        self._add(entry)
        self._points[id] = entry

    def remove(self, id: K) -> None:
        """Delete a point.

        Args:
            id: the point's id.

        Raises:
            UnknownId: the index does not hold ``id``.
        """
        entry = self._points.get(id)
        if entry is None:
            raise UnknownId(f"id {id!r} is not in the index")
        self._discard(entry)
        del self._points[id]

    def move(self, id: K, lat: float, lon: float) -> None:
        """Change a point's coordinates.

        Args:
            id: the point's id.
            lat: new latitude, degrees in [-90, 90].
            lon: new longitude, degrees in [-180, 180].

        Raises:
            InvalidCoordinate: ``lat`` or ``lon`` is out of range or not finite.
            UnknownId: the index does not hold ``id``.
        """
        check_point(lat, lon)
        old = self._points.get(id)
        if old is None:
            raise UnknownId(f"id {id!r} is not in the index")
        self._discard(old)
        entry = self._entry(id, lat, lon)
        self._add(entry)
        self._points[id] = entry

    def bulk_load(self, items: Iterable[tuple[K, float, float]]) -> None:
        """Add many points at once (into an empty or a non-empty index).

        All items are checked before any is added: on error nothing changes.

        Args:
            items: ``(id, lat, lon)`` triples, degrees.

        Raises:
            InvalidCoordinate: a coordinate is out of range or not finite.
            DuplicateId: an id is repeated in ``items`` or already present.
        """
        staged: list[tuple[int, K, float, float]] = []
        seen: set[K] = set()
        points = self._points
        key = self._key
        for id, lat, lon in items:
            check_point(lat, lon)
            if id in points or id in seen:
                raise DuplicateId(f"id {id!r} is already in the index or repeated in items")
            seen.add(id)
            staged.append((key(lat, lon), id, lat, lon))
        # Build the records in location order: objects allocated one after another sit
        # next to each other in memory, so a query's candidates share cache lines.
        staged.sort(key=_first)
        entries = [Entry(id, lat, lon, k) for k, id, lat, lon in staged]
        self._add_many(entries)
        for entry in entries:
            points[entry.record[3]] = entry

    def bulk_load_arrays(self, ids: Any, lats: Any, lons: Any) -> None:
        """:meth:`bulk_load` from three parallel arrays (numpy ``int64``, ``float64``, ``float64``,
        or any sequences of those): the catalog loader's form, with no tuple per point.

        Raises:
            InvalidCoordinate: a coordinate is out of range or not finite.
            DuplicateId: an id is repeated or already present.
        """
        self.bulk_load(zip(ids.tolist(), lats.tolist(), lons.tolist(), strict=True))

    def within(self, lat: float, lon: float, radius_m: float, limit: int | None = None) -> list[tuple[K, float]]:
        """Every point within ``radius_m`` of a location, nearest first.

        Args:
            lat: latitude, degrees in [-90, 90].
            lon: longitude, degrees in [-180, 180].
            radius_m: radius, metres, ``0 < radius_m <= max_radius_m``; a point at exactly
                this distance is included.
            limit: return at most this many (the nearest), or all when ``None``.

        Returns:
            ``(id, distance_m)`` pairs sorted by distance, then id.

        Raises:
            InvalidCoordinate: bad ``lat`` or ``lon``.
            InvalidRadius: bad ``radius_m``.
            InvalidCount: ``limit`` is not ``None`` or an integer >= 1.
        """
        self._check_query(lat, lon, radius_m)
        if limit is not None and not (type(limit) is int and limit >= 1):
            check_count(limit, "limit")
        return self._within(lat, lon, radius_m, limit)

    def page(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        limit: int,
        after: tuple[float, K] | None = None,
        *,
        where: Where = None,
    ) -> Page:
        """One page of :meth:`within`, with the number of matches, for paging through them.

        Equal to ``hits = within(lat, lon, radius_m)``, ``start`` = the first hit ordered
        after ``after`` by (distance, id), then ``Page(len(hits), len(hits) - start,
        hits[start : start + limit])``; but an index with the compiled scan counts the
        matches without building them: a page of a dense area costs a chord comparison per
        candidate and the exact distances of about ``limit`` of them, not an object per match.

        With ``where``, only the points that pass it are matches: counted, paged and returned
        as if no other point were held (a category search: ``where=(categories, "cafe")``).
        The compiled scan drops the others before anything is counted.

        Args:
            lat: latitude, degrees in [-90, 90].
            lon: longitude, degrees in [-180, 180].
            radius_m: radius, metres, ``0 < radius_m <= max_radius_m``.
            limit: the page size, an integer >= 1.
            after: ``None`` for the first page, else ``(distance_m, id)`` of the previous
                page's last hit; a hit equal to it is not repeated.
            where: ``None``, or ``(table, value)``: only points whose ``table[id] == value``;
                ``table`` is a list indexed by int id or a dict, and an id it does not hold
                does not pass.

        Returns:
            The :class:`Page`.

        Raises:
            InvalidCoordinate: bad ``lat`` or ``lon``.
            InvalidRadius: bad ``radius_m``.
            InvalidCount: ``limit`` is not an integer >= 1.
            InvalidPosition: ``after`` is not ``None`` or a ``(distance_m, id)`` pair.
            InvalidOption: ``where`` is not ``None`` or a ``(table, value)`` pair.
        """
        self._check_query(lat, lon, radius_m)
        if not (type(limit) is int and limit >= 1):
            check_count(limit, "limit")
        if after is not None:
            check_after(after)
        if where is not None:
            check_where(where)
        return self._page(lat, lon, radius_m, limit, after, where)

    def _check_query(self, lat: float, lon: float, radius_m: float) -> None:
        # Fast path inline (queries are the hot calls); the check_* functions build the errors.
        if not (type(lat) is float and type(lon) is float and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            check_point(lat, lon)
        if not (type(radius_m) is float and 0.0 < radius_m <= self._max_radius_m):
            check_radius(radius_m, self._max_radius_m)

    def nearest(self, lat: float, lon: float, k: int, max_radius_m: float | None = None) -> list[tuple[K, float]]:
        """The ``k`` points nearest to a location.

        Args:
            lat: latitude, degrees in [-90, 90].
            lon: longitude, degrees in [-180, 180].
            k: how many, an integer >= 1.
            max_radius_m: if given, only points within this many metres
                (``0 < max_radius_m <= max_radius_m`` of the index); if ``None`` the whole
                sphere is searched.

        Returns:
            Up to ``k`` ``(id, distance_m)`` pairs sorted by distance, then id; fewer when
            the index (or the radius) holds fewer points.

        Raises:
            InvalidCoordinate: bad ``lat`` or ``lon``.
            InvalidCount: bad ``k``.
            InvalidRadius: bad ``max_radius_m``.
        """
        check_point(lat, lon)
        check_count(k, "k")
        if max_radius_m is not None:
            check_radius(max_radius_m, self._max_radius_m, "max_radius_m")
        if not self._points:
            return []
        return self._nearest(lat, lon, k, math.inf if max_radius_m is None else max_radius_m)

    def _nearest(self, lat: float, lon: float, k: int, cap_m: float) -> list[tuple[K, float]]:
        """Expanding-radius k-nearest: exact because a round that finds ``k`` points within
        radius ``r`` has its ``k``-th at distance ``<= r``, and every point not yet seen is
        farther than ``r``. The last round uses ``cap_m`` itself (``inf``: whole sphere)."""
        if len(self._points) <= k and cap_m == math.inf:
            return self._within(lat, lon, cap_m, k)
        radius = min(_NEAREST_START_M, cap_m)
        while True:
            hits = self._within(lat, lon, radius, k)
            if len(hits) >= k or radius >= cap_m:
                return hits
            radius = min(radius * _NEAREST_GROWTH, cap_m)
            if radius >= HALF_CIRCUMFERENCE_M:
                # Every point of the sphere is within this radius: one last full round.
                radius = cap_m
