"""A region quadtree over latitude/longitude, exact at the poles and across the antimeridian.

The root is the rectangle [-90, 90] x [-180, 180] degrees; a node splits at its centre into
four quadrants when it holds more than ``leaf_capacity`` points (down to ``max_depth``,
beyond which duplicates simply share a leaf). A point goes south if ``lat < mid_lat`` and
west if ``lon < mid_lon``, so lat 90 and lon 180 land on the north and east edges.

* ``within`` walks the nodes whose rectangle overlaps the query's padded bounding box
  (:func:`geo_index.distance.cap_bounds`: split at the antimeridian, all longitudes over a
  pole) and scans their leaves exactly (:mod:`geo_index._scan`).
* ``nearest`` is best-first: nodes come off a heap ordered by a spherical lower bound of
  the distance from the query to their rectangle
  (:func:`geo_index.distance.rect_lower_bound_m`); the search stops when the next node's
  bound exceeds the k-th best distance found so far.

The tree is bulk-built by recursive partition (``bulk_load`` on an empty tree) and updated
in place: inserts split full leaves, removals collapse a subtree back into one leaf once it
holds at most half a leaf's capacity.
"""

from __future__ import annotations

import heapq
import math
from bisect import insort
from collections.abc import Hashable
from itertools import compress, count, repeat
from operator import ge
from typing import Any, Generic, TypeVar

from geo_index._base import Entry, IndexBase, Page, Where
from geo_index._scan import (
    DEFAULT_DENSE_MIN,
    Record,
    Vec,
    chord_upper_bound,
    search,
    search_dense,
    search_native,
    unit_vector,
    vec_array,
)
from geo_index.distance import EARTH_RADIUS_M, PointTerms, RAD, cap_bounds, rect_lower_bound_m
from geo_index.errors import InvalidOption
from geo_index.geohash_codes import geohash_key
from geo_index.validate import DEFAULT_MAX_RADIUS_M, check_scan_options

K = TypeVar("K", bound=Hashable)

#: Default number of points a leaf holds before it splits.
DEFAULT_LEAF_CAPACITY = 100

#: Default depth limit: a depth-40 cell is about 1e-5 m across, so only exact duplicates
#: (or near-duplicates) ever share an over-full leaf.
DEFAULT_MAX_DEPTH = 40

_TWO_R = 2.0 * EARTH_RADIUS_M
_sin = math.sin
_cos = math.cos
_asin = math.asin
_sqrt = math.sqrt
_dist = math.dist


class _Node(Generic[K]):
    """A quadtree node: a leaf holds parallel lists of entries, vectors and records."""

    __slots__ = ("arr", "children", "count", "depth", "entries", "lat0", "lat1", "lon0", "lon1", "recs", "vecs")

    def __init__(self, lat0: float, lat1: float, lon0: float, lon1: float, depth: int) -> None:
        self.lat0 = lat0
        self.lat1 = lat1
        self.lon0 = lon0
        self.lon1 = lon1
        self.depth = depth
        self.count = 0
        self.children: list[_Node[K]] | None = None
        self.entries: list[Entry[K]] = []
        self.vecs: list[Vec] = []
        self.recs: list[Record[K]] = []
        self.arr: Any = None  # numpy array of ``vecs`` for dense queries; None when stale

    def child_for(self, lat: float, lon: float) -> _Node[K]:
        """The child quadrant a point (degrees) belongs to; only for internal nodes."""
        children = self.children
        assert children is not None
        i = 0
        if lat >= 0.5 * (self.lat0 + self.lat1):
            i = 2
        if lon >= 0.5 * (self.lon0 + self.lon1):
            i += 1
        return children[i]

    def make_children(self) -> list[_Node[K]]:
        mlat = 0.5 * (self.lat0 + self.lat1)
        mlon = 0.5 * (self.lon0 + self.lon1)
        d = self.depth + 1
        return [
            _Node(self.lat0, mlat, self.lon0, mlon, d),
            _Node(self.lat0, mlat, mlon, self.lon1, d),
            _Node(mlat, self.lat1, self.lon0, mlon, d),
            _Node(mlat, self.lat1, mlon, self.lon1, d),
        ]

    def set_leaf(self, entries: list[Entry[K]]) -> None:
        self.children = None
        self.entries = entries
        self.vecs = [e.vec for e in entries]
        self.recs = [e.record for e in entries]
        self.count = len(entries)
        self.arr = None


class QuadTree(IndexBase[K]):
    """A :class:`geo_index.SpatialIndex` on a region quadtree.

    Args:
        leaf_capacity: points a leaf holds before it splits (>= 1).
        max_depth: no node is split below this depth (>= 1).
        dense_min: queries with at least this many candidates filter them with numpy
            (when installed; Python scan only); ``None`` never does.
        native: use the compiled scan (``geo_index._cscan``): ``None`` (default) when it is
            built, ``True`` always (error if it is not built), ``False`` never.
        max_radius_m: the largest radius ``within``/``nearest`` accept, metres.

    Raises:
        InvalidOption: an option is out of range.
    """

    def __init__(
        self,
        *,
        leaf_capacity: int = DEFAULT_LEAF_CAPACITY,
        max_depth: int = DEFAULT_MAX_DEPTH,
        dense_min: int | None = DEFAULT_DENSE_MIN,
        native: bool | None = None,
        max_radius_m: float = DEFAULT_MAX_RADIUS_M,
    ) -> None:
        super().__init__(max_radius_m=max_radius_m)
        self._dense_min, self._native = check_scan_options(dense_min, native)
        if type(leaf_capacity) is not int or leaf_capacity < 1:
            raise InvalidOption(f"leaf_capacity must be an integer >= 1, got {leaf_capacity!r}")
        if type(max_depth) is not int or max_depth < 1:
            raise InvalidOption(f"max_depth must be an integer >= 1, got {max_depth!r}")
        self._capacity = leaf_capacity
        self._max_depth = max_depth
        self._root: _Node[K] = _Node(-90.0, 90.0, -180.0, 180.0, 0)

    def depth(self) -> int:
        """Depth of the deepest leaf (0 for a tree that is a single leaf)."""
        deepest = 0
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.children is None:
                deepest = max(deepest, node.depth)
            else:
                stack.extend(node.children)
        return deepest

    # ----------------------------------------------------------------- storage
    def _key(self, lat: float, lon: float) -> int:
        # Not used for lookups; bulk_load allocates records in key order, and geohash order
        # puts the points of one leaf next to each other in memory.
        return geohash_key(lat, lon)

    def _build(self, node: _Node[K], entries: list[Entry[K]]) -> None:
        """Make ``node`` the root of a subtree holding exactly ``entries``."""
        if len(entries) <= self._capacity or node.depth >= self._max_depth:
            node.set_leaf(entries)
            if self._dense_min is not None and len(entries) > 1:
                node.arr = vec_array(node.vecs)
            return
        children = node.make_children()
        mlat = children[0].lat1
        mlon = children[0].lon1
        parts: list[list[Entry[K]]] = [[], [], [], []]
        for e in entries:
            i = 2 if e.lat >= mlat else 0
            if e.lon >= mlon:
                i += 1
            parts[i].append(e)
        node.children = children
        node.entries = []
        node.vecs = []
        node.recs = []
        node.count = len(entries)
        for child, part in zip(children, parts):
            self._build(child, part)

    def _collect(self, node: _Node[K]) -> list[Entry[K]]:
        out: list[Entry[K]] = []
        stack = [node]
        while stack:
            n = stack.pop()
            if n.children is None:
                out.extend(n.entries)
            else:
                stack.extend(n.children)
        return out

    def _add_many(self, entries: list[Entry[K]]) -> None:
        if self._root.count == 0:
            self._build(self._root, entries)
        elif len(entries) > self._root.count:
            # Cheaper to rebuild the whole tree than to insert one by one.
            self._build(self._root, self._collect(self._root) + entries)
        else:
            for entry in entries:
                self._add(entry)

    def _add(self, entry: Entry[K]) -> None:
        node = self._root
        lat = entry.lat
        lon = entry.lon
        while node.children is not None:
            node.count += 1
            node = node.child_for(lat, lon)
        node.count += 1
        node.entries.append(entry)
        node.vecs.append(entry.vec)
        node.recs.append(entry.record)
        node.arr = None
        if node.count > self._capacity and node.depth < self._max_depth:
            self._build(node, node.entries)

    def _discard(self, entry: Entry[K]) -> None:
        node = self._root
        lat = entry.lat
        lon = entry.lon
        collapse: _Node[K] | None = None
        while node.children is not None:
            node.count -= 1
            if collapse is None and node.count <= self._capacity // 2:
                collapse = node  # the highest node that is now small enough to be a leaf
            node = node.child_for(lat, lon)
        node.count -= 1
        i = node.entries.index(entry)
        del node.entries[i]
        del node.vecs[i]
        del node.recs[i]
        node.arr = None
        if collapse is not None:
            collapse.set_leaf(self._collect(collapse))

    # ----------------------------------------------------------------- queries
    def _leaves(self, lat: float, lon: float, radius_m: float) -> list[_Node[K]]:
        """The non-empty leaves overlapping the query's bounding box (``lon`` not -180)."""
        lat_lo, lat_hi, lon_ranges, _, _ = cap_bounds(lat, lon, radius_m)
        leaves: list[_Node[K]] = []
        found = leaves.append
        # Children are tested before they are pushed, so only overlapping nodes are visited.
        if len(lon_ranges) == 1:
            ((lon_lo, lon_hi),) = lon_ranges
            stack = [self._root]
            pop = stack.pop
            push = stack.append
            while stack:
                node = pop()
                children = node.children
                if children is None:
                    found(node)
                    continue
                for c in children:
                    if c.lat0 <= lat_hi and c.lat1 >= lat_lo and c.lon0 <= lon_hi and c.lon1 >= lon_lo and c.count:
                        push(c)
        else:
            stack = [self._root]
            while stack:
                node = stack.pop()
                if node.lat0 > lat_hi or node.lat1 < lat_lo or not node.count:
                    continue
                if not any(node.lon0 <= hi and node.lon1 >= lo for lo, hi in lon_ranges):
                    continue
                if node.children is None:
                    found(node)
                else:
                    stack.extend(node.children)
        return leaves

    def _within(self, lat: float, lon: float, radius_m: float, limit: int | None) -> list[tuple[K, float]]:
        if lon == -180.0:
            lon = 180.0
        leaves = self._leaves(lat, lon, radius_m)
        rec_groups = [leaf.recs for leaf in leaves]
        if self._native:
            return search_native([leaf.vecs for leaf in leaves], rec_groups, lat, lon, radius_m, limit)  # type: ignore[no-any-return]
        dense_min = self._dense_min
        if dense_min is not None and sum(map(len, rec_groups)) >= dense_min:
            arrs = []
            for leaf in leaves:
                if leaf.arr is None:
                    leaf.arr = vec_array(leaf.vecs)
                arrs.append(leaf.arr)
            return search_dense(arrs, rec_groups, lat, lon, radius_m, limit)
        vec_groups = [leaf.vecs for leaf in leaves]
        return search(vec_groups, rec_groups, lat, lon, radius_m, limit)

    def _page(
        self, lat: float, lon: float, radius_m: float, limit: int, after: tuple[float, K] | None, where: Where
    ) -> Page:
        if not self._native:
            return super()._page(lat, lon, radius_m, limit, after, where)
        if lon == -180.0:
            lon = 180.0
        leaves = self._leaves(lat, lon, radius_m)
        found = search_native(
            [leaf.vecs for leaf in leaves],
            [leaf.recs for leaf in leaves],
            lat,
            lon,
            radius_m,
            limit,
            after,
            *(() if where is None else where),
        )
        return Page._make(found)

    def _nearest(self, lat: float, lon: float, k: int, cap_m: float) -> list[tuple[K, float]]:
        if lon == -180.0:
            lon = 180.0
        q = PointTerms(lat * RAD, lon * RAD, _cos(lat * RAD))
        qphi, qlam, qcos = q
        qv = unit_vector(q)
        # The k best (distance, id) pairs so far, kept sorted.
        best: list[tuple[float, Any]] = []
        bound = cap_m  # a node or point farther than this cannot enter the result
        tie = count()
        heap: list[tuple[float, int, _Node[K]]] = [(0.0, next(tie), self._root)]
        sin = _sin
        while heap:
            lb, _, node = heapq.heappop(heap)
            if lb > bound:
                break
            children = node.children
            if children is not None:
                for child in children:
                    if child.count:
                        clb = rect_lower_bound_m(lat, lon, child.lat0, child.lat1, child.lon0, child.lon1)
                        if clb <= bound:
                            heapq.heappush(heap, (clb, next(tie), child))
                continue
            cmax = chord_upper_bound(bound)
            chords = map(_dist, repeat(qv), node.vecs)
            for phi, lam, cos_phi, pid in compress(node.recs, map(ge, repeat(cmax), chords)):
                s1 = sin((phi - qphi) * 0.5)
                s2 = sin((lam - qlam) * 0.5)
                a = s1 * s1 + qcos * cos_phi * s2 * s2
                d = _TWO_R * _asin(_sqrt(a if a < 1.0 else 1.0))
                if d <= bound:
                    item = (d, pid)
                    if len(best) == k:
                        if not item < best[-1]:
                            continue
                        best.pop()
                    insort(best, item)
                    if len(best) == k:
                        # A point at exactly the k-th distance may still win on id, so
                        # nodes whose bound equals it are still explored ("lb > bound").
                        bound = best[-1][0]
        return [(pid, d) for d, pid in best]
