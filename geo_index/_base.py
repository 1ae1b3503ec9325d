"""What every index shares: the compact store, argument checks and the public method shapes.

Each index holds one :class:`geo_index.native.Index` (``geo_index/native.c``): its points in
flat arrays sorted by a 64-bit key (about 31 bytes a point), a planner that turns a query into
a few key ranges, and the exact scan. The subclasses only choose the decomposition. The
public methods here validate every argument *before* touching any state, so a failed call
leaves the index unchanged.

Changes (insert, move, remove) go to a small sorted delta beside the bulk of the points and are
visible to the next query. The delta is folded into the bulk by :meth:`IndexBase.merge`: on the
calling thread once it reaches ``merge_every`` points, or, with ``merge_every=None``, whenever
the owner calls it, typically from a worker thread (the merge runs without the interpreter's
lock; queries and changes go on meanwhile and are never lost).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np

from geo_index.distance import HALF_CIRCUMFERENCE_M
from geo_index.errors import DuplicateId, InvalidCoordinate, InvalidId, UnknownId
from geo_index.native import Index
from geo_index.validate import (
    MAX_ID,
    MIN_ID,
    check_after,
    check_count,
    check_id,
    check_int_option,
    check_max_radius_option,
    check_point,
    check_radius,
    check_box,
    check_where,
)

#: A page's filter: ``(table, value)``, only points whose ``table[id] == value`` (``table`` a
#: list indexed by id, or a dict); a callable, only points whose id it says true of; or
#: ``None`` for every point.
Where = tuple[list[Any] | dict[Any, Any], Any] | Callable[[int], object] | None

#: Default number of changed points at which an index merges them into its bulk by itself.
DEFAULT_MERGE_EVERY = 4096

# First radius tried by the expanding k-nearest search, metres, and its growth factor.
# Each round costs roughly growth**2 times the previous one, so the rounds before the
# last add about 1/(growth**2 - 1) of extra work.
_NEAREST_START_M = 1_000.0
_NEAREST_GROWTH = 4.0


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


def page_of(hits: list[tuple[Any, float]], limit: int | None, after: tuple[float, Any] | None) -> Page:
    """Cut a page from every match (the reference :meth:`IndexBase.page` is checked against).

    Args:
        hits: ``(id, distance_m)`` sorted by distance, then id (what ``within`` returns).
        limit: the page size (``None``: every hit after ``after``).
        after: ``None``, or ``(distance_m, id)``: the page starts after it.

    Returns:
        The :class:`Page` of ``hits`` after ``after``.
    """
    start = 0 if after is None else bisect_right(hits, after, key=_order)
    return Page(len(hits), len(hits) - start, hits[start : None if limit is None else start + limit])


def _id_array(ids: Any) -> Any:
    """Ids as a one-dimensional int64 array: integers only (no bools, floats or strings), in range."""
    array = np.asarray(ids)
    if array.ndim == 1 and array.size == 0:
        return np.empty(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        bad = next((i for i in array.reshape(-1).tolist() if not (type(i) is int and MIN_ID <= i <= MAX_ID)), array)
        raise InvalidId(f"ids are integers in {MIN_ID}..{MAX_ID} in a one-dimensional array, got {bad!r}")
    if array.dtype.kind == "u" and len(array) and int(array.max()) > MAX_ID:
        raise InvalidId(f"ids are integers in {MIN_ID}..{MAX_ID}, got {int(array.max())!r}")
    return np.ascontiguousarray(array, dtype=np.int64)


def _coordinate_array(values: Any, name: str) -> Any:
    """Coordinates as a one-dimensional float64 array (real numbers only, no bools or strings)."""
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "iuf":
        raise InvalidCoordinate(f"{name} must be a one-dimensional array of real numbers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64)


class IndexBase:
    """Shared implementation of :class:`geo_index.SpatialIndex` over a :class:`geo_index.native.Index`.

    Args:
        native: the empty store and planner the subclass configured.
        max_radius_m: the largest radius ``within``/``nearest`` accept, metres.
        merge_every: merge the changes into the bulk once this many are pending (an integer
            >= 1), or ``None``: only when :meth:`merge` is called.
    """

    def __init__(self, native: Index, *, max_radius_m: float, merge_every: int | None) -> None:
        self._max_radius_m = check_max_radius_option(max_radius_m)
        if merge_every is not None:
            check_int_option(merge_every, "merge_every", 1, 1 << 30)
        self._merge_every = merge_every
        self._native = native

    @property
    def native(self) -> Index:
        """The compiled index, for extensions that query it from C (``geo_index/native.h``)."""
        return self._native

    @property
    def max_radius_m(self) -> float:
        """The largest radius ``within`` and ``nearest`` accept, metres."""
        return self._max_radius_m

    @property
    def pending(self) -> int:
        """Points changed since the last merge (held in the delta)."""
        return self._native.delta()

    @property
    def nbytes(self) -> int:
        """Bytes the index's arrays hold (its points, their directory and the id table)."""
        return self._native.nbytes()

    def merge(self) -> bool:
        """Fold the pending changes into the bulk of the points.

        Safe from any thread: it runs without the interpreter's lock, and queries and changes
        made meanwhile (from other threads) are kept. Returns ``False`` when another merge was
        already running (nothing to do then).
        """
        return self._native.merge()

    def __len__(self) -> int:
        return len(self._native)

    def __contains__(self, id: object) -> bool:
        return type(id) is int and MIN_ID <= id <= MAX_ID and self._native.position(id) is not None

    def position(self, id: int) -> tuple[float, float]:
        """The coordinates of a point exactly as they were given.

        Raises:
            UnknownId: the index does not hold ``id``.
        """
        check_id(id)
        found = self._native.position(id)
        if found is None:
            raise UnknownId(f"id {id!r} is not in the index")
        return found

    def insert(self, id: int, lat: float, lon: float) -> None:
        """Add a point.

        Args:
            id: an integer in the signed 64-bit range.
            lat: latitude, degrees in [-90, 90].
            lon: longitude, degrees in [-180, 180].

        Raises:
            InvalidId: ``id`` is not such an integer.
            InvalidCoordinate: ``lat`` or ``lon`` is out of range or not finite.
            DuplicateId: ``id`` is already present (use :meth:`move`).
        """
        check_id(id)
        check_point(lat, lon)
        if self._native.position(id) is not None:
            raise DuplicateId(f"id {id!r} is already in the index; use move() to change its position")
        self._native.insert(id, lat, lon)
        self._changed()

    def remove(self, id: int) -> None:
        """Delete a point.

        Raises:
            UnknownId: the index does not hold ``id``.
        """
        if not (type(id) is int and MIN_ID <= id <= MAX_ID and self._native.remove(id)):
            raise UnknownId(f"id {id!r} is not in the index")

    def move(self, id: int, lat: float, lon: float) -> None:
        """Change a point's coordinates.

        Raises:
            InvalidCoordinate: ``lat`` or ``lon`` is out of range or not finite.
            UnknownId: the index does not hold ``id``.
        """
        check_point(lat, lon)
        self.remove(id)
        self._native.insert(id, lat, lon)
        self._changed()

    def _changed(self) -> None:
        if self._merge_every is not None and self._native.delta() >= self._merge_every:
            self._native.merge()

    def bulk_load(self, items: Iterable[tuple[int, float, float]]) -> None:
        """Add many ``(id, lat, lon)`` points at once (into an empty or a non-empty index).

        All items are checked before any is added: on error nothing changes.

        Raises:
            InvalidId: an id is not an integer in the signed 64-bit range.
            InvalidCoordinate: a coordinate is out of range or not finite.
            DuplicateId: an id is repeated in ``items`` or already present.
        """
        ids: list[int] = []
        lats: list[float] = []
        lons: list[float] = []
        for id, lat, lon in items:
            check_id(id)
            check_point(lat, lon)
            ids.append(id)
            lats.append(lat)
            lons.append(lon)
        self._load(np.array(ids, dtype=np.int64), np.array(lats, dtype=np.float64), np.array(lons, dtype=np.float64))

    def bulk_load_arrays(self, ids: Any, lats: Any, lons: Any) -> None:
        """:meth:`bulk_load` from three parallel arrays (``int64``, ``float64``, ``float64``, or
        anything numpy converts to them): the catalog loader's form, checked without a Python
        object per point.

        Raises:
            InvalidId: an id does not fit the signed 64-bit range.
            InvalidCoordinate: a coordinate is out of range or not finite.
            DuplicateId: an id is repeated or already present.
        """
        id_array = _id_array(ids)
        lat_array = _coordinate_array(lats, "lats")
        lon_array = _coordinate_array(lons, "lons")
        if not (len(id_array) == len(lat_array) == len(lon_array)):
            raise InvalidCoordinate("ids, lats and lons must be of one length")
        bad = ~((lat_array >= -90.0) & (lat_array <= 90.0) & (lon_array >= -180.0) & (lon_array <= 180.0))
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            check_point(float(lat_array[at]), float(lon_array[at]))
        self._load(id_array, lat_array, lon_array)

    def _load(self, ids: Any, lats: Any, lons: Any) -> None:
        repeated = self._native.load(ids, lats, lons)
        if repeated is not None:
            raise DuplicateId(f"id {repeated!r} is already in the index or repeated in items")

    def within(self, lat: float, lon: float, radius_m: float, limit: int | None = None) -> list[tuple[int, float]]:
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
        return self._native.within(lat, lon, radius_m, -1 if limit is None else limit)

    def page(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        limit: int | None,
        after: tuple[float, int] | None = None,
        *,
        where: Where = None,
        box: tuple[float, float, float, float] | None = None,
    ) -> Page:
        """One page of :meth:`within`, with the number of matches, for paging through them.

        Equal to ``page_of(within(lat, lon, radius_m), limit, after)``, but the matches are
        counted without being built: a page of a dense area costs a few multiplications per
        candidate and the exact distances of about ``limit`` of them.

        With ``where``, only the points that pass it are matches: counted, paged and returned
        as if no other point were held (a category search: ``where=(categories, "cafe")``).
        A callable ``where`` is asked of each point within the radius, nearest or not. With
        ``box``, only the points in it are matches (:func:`geo_index.in_box`), tested in the
        compiled scan before ``where`` is asked.

        Args:
            lat: latitude, degrees in [-90, 90].
            lon: longitude, degrees in [-180, 180].
            radius_m: radius, metres, ``0 < radius_m <= max_radius_m``.
            limit: the page size, an integer >= 1; ``None``: every match after ``after``.
            after: ``None`` for the first page, else ``(distance_m, id)`` of the previous
                page's last hit; a hit equal to it is not repeated.
            where: ``None``; ``(table, value)``: only points whose ``table[id] == value``,
                ``table`` a list indexed by id or a dict (an id it does not hold does not
                pass); or a callable: only points ``where(id)`` is true of. An exception it
                raises ends the query and is raised here.
            box: ``None``, or ``(west, south, east, north)`` in degrees (floats; ``west >
                east`` across the 180th meridian).

        Raises:
            InvalidCoordinate: bad ``lat`` or ``lon``.
            InvalidRadius: bad ``radius_m``.
            InvalidCount: ``limit`` is not ``None`` or an integer >= 1.
            InvalidPosition: ``after`` is not ``None`` or a ``(distance_m, id)`` pair.
            InvalidOption: ``where`` is not ``None``, a ``(table, value)`` pair or a callable,
                or ``box`` is not ``None`` or a box.
        """
        self._check_query(lat, lon, radius_m)
        if limit is None:
            limit = -1
        elif not (type(limit) is int and limit >= 1):
            check_count(limit, "limit")
        if after is not None:
            check_after(after)
        if box is not None:
            check_box(box)
        if where is None:
            return Page._make(self._native.page(lat, lon, radius_m, limit, after, box))
        check_where(where)
        if callable(where):
            return Page._make(self._native.page(lat, lon, radius_m, limit, after, box, where))
        return Page._make(self._native.page(lat, lon, radius_m, limit, after, box, where[0], where[1]))

    def ranges(self, lat: float, lon: float, radius_m: float) -> list[tuple[int, int]]:
        """The key ranges (inclusive, sorted) a query reads: its plan, for tools and tests."""
        self._check_query(lat, lon, radius_m)
        return self._native.ranges(lat, lon, radius_m)

    def _check_query(self, lat: float, lon: float, radius_m: float) -> None:
        # Fast path inline (queries are the hot calls); the check_* functions build the errors.
        if not (type(lat) is float and type(lon) is float and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            check_point(lat, lon)
        if not (type(radius_m) is float and 0.0 < radius_m <= self._max_radius_m):
            check_radius(radius_m, self._max_radius_m)

    def nearest(self, lat: float, lon: float, k: int, max_radius_m: float | None = None) -> list[tuple[int, float]]:
        """The ``k`` points nearest to a location.

        Expanding radius: a round that finds ``k`` points within radius ``r`` has its ``k``-th
        at distance ``<= r``, and every point not yet seen is farther than ``r``, so the answer
        is exact. The last round uses ``max_radius_m`` itself (``None``: the whole sphere).

        Returns:
            Up to ``k`` ``(id, distance_m)`` pairs sorted by distance, then id.

        Raises:
            InvalidCoordinate: bad ``lat`` or ``lon``.
            InvalidCount: bad ``k``.
            InvalidRadius: bad ``max_radius_m``.
        """
        check_point(lat, lon)
        check_count(k, "k")
        if max_radius_m is not None:
            check_radius(max_radius_m, self._max_radius_m, "max_radius_m")
        cap_m = math.inf if max_radius_m is None else float(max_radius_m)
        lat, lon = float(lat), float(lon)
        if len(self) <= k and cap_m == math.inf:
            return self._native.within(lat, lon, cap_m, k)
        radius = min(_NEAREST_START_M, cap_m)
        while True:
            hits = self._native.within(lat, lon, radius, k)
            if len(hits) >= k or radius >= cap_m:
                return hits
            radius = min(radius * _NEAREST_GROWTH, cap_m)
            if radius >= HALF_CIRCUMFERENCE_M:
                # Every point of the sphere is within this radius: one last full round.
                radius = cap_m
