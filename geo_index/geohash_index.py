"""Proximity index on geohash cells, exact at any latitude and across the antimeridian.

Each point's 64-bit geohash comes from python-geohash. The index keeps a hash map from
cell to points at several *levels* (geohash lengths in bits; 5 bits = 1 character), and
answers a query at one level chosen from the query's bounding box:

1. the spherical cap of the radius (padded by a safety margin) is bounded by a
   latitude/longitude box (:func:`geo_index.distance.cap_bounds`): latitude
   ``lat +- r/R``; longitude ``lon +- asin(sin(r/R) / cos(lat))``, split in two at the
   antimeridian, or all longitudes when the cap contains a pole;
2. the finest level at which that box spans at most ``max_cells`` cells is chosen (so the
   choice depends on the radius *and* the latitude: cells of a fixed geohash length get
   narrower in metres as ``cos(lat)``);
3. every cell of that level overlapping the box is enumerated directly as a row and column
   range of the geohash grid and looked up; there is no neighbour walk, so no cell can be
   missed however small the cells are relative to the circle;
4. each candidate's distance is computed exactly (:mod:`geo_index._scan`).

The geohash grid at ``b`` bits has ``2**(b//2)`` rows of ``180 / 2**(b//2)`` degrees and
``2**(b - b//2)`` columns of ``360 / 2**(b - b//2)`` degrees; the cell code interleaves
the column and row bits (longitude first), exactly as geohash does.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

from geo_index._base import Entry, IndexBase, Page, Where
from geo_index._scan import DEFAULT_DENSE_MIN, CellMap, Record, Vec, group_arrays, scan_levels, search_cells, vec_array
from geo_index.distance import CapBounds, cap_bounds
from geo_index.errors import InvalidOption
from geo_index.geohash_codes import MAX_LEVEL_BITS, SPREAD, geohash_key
from geo_index.validate import DEFAULT_MAX_RADIUS_M, check_scan_options

K = TypeVar("K", bound=Hashable)

#: Default levels, in geohash bits: every odd length from 13 (2.8 degree cells) to 27
#: (0.022 degree cells, 2.4 km at the equator). Odd lengths give cells square in degrees;
#: one level every 2 bits (a factor of 2 in cell size) lets the query size pick a close
#: fit. Finer levels were measured to make no difference even for 500 m queries (the chord
#: filter makes a few extra candidates cheaper than extra cell lookups) while costing
#: about 200 bytes per point each.
DEFAULT_LEVELS: tuple[int, ...] = (13, 15, 17, 19, 21, 23, 25, 27)

#: Default cap on the number of cells one query looks up (when a coarser level exists).
DEFAULT_MAX_CELLS = 12

# A point in a packed cell (the compiled scan's layout): x, y, z, phi, lam, cos_phi.
_PACK = struct.Struct("6d").pack
_PACKED_BYTES = struct.calcsize("6d")


def packed_row(entry: Entry[Any]) -> bytes:
    """A point's row in a packed cell: its unit vector, then its phi, lam and cos_phi."""
    rec = entry.record
    return _PACK(*entry.vec, rec[0], rec[1], rec[2])


class _Level:
    """One geohash length and its cell map."""

    __slots__ = (
        "arrays",
        "bits",
        "cells",
        "col_shift",
        "cols_per_deg",
        "ncols",
        "nrows",
        "row_shift",
        "rows_per_deg",
        "shift",
    )

    def __init__(self, bits: int, native: bool) -> None:
        lat_bits = bits // 2
        lon_bits = bits - lat_bits
        self.bits = bits
        self.shift = 64 - bits
        self.nrows = 1 << lat_bits
        self.ncols = 1 << lon_bits
        self.rows_per_deg = self.nrows / 180.0
        self.cols_per_deg = self.ncols / 360.0
        # Geohash interleaves longitude first, so the last (lowest) bit is a longitude bit
        # when ``bits`` is odd and a latitude bit when it is even.
        self.col_shift = 0 if bits % 2 else 1
        self.row_shift = 1 - self.col_shift
        # cell code -> (unit vectors, records), two parallel lists; with the compiled scan
        # (packed, ids) instead: a bytearray of each point's vector and terms, six doubles
        # (_PACK), and the list of their ids, in a CellMap (geo_index/_ccells.c: a dict's
        # lookups cost scan_levels a chain of cache misses per cell, one cell after the other)
        self.cells: Any = CellMap() if native else {}
        # cell code -> numpy array of its unit vectors, built when a dense query first
        # needs it and dropped whenever the cell changes
        self.arrays: dict[int, Any] = {}

    def span(self, box: CapBounds) -> tuple[int, int, list[tuple[int, int]]]:
        """Rows ``r0..r1`` and column ranges of the cells overlapping ``box`` (degrees)."""
        r0 = int((box.lat_lo + 90.0) * self.rows_per_deg)
        r1 = int((box.lat_hi + 90.0) * self.rows_per_deg)
        last = self.nrows - 1
        if r1 > last:
            r1 = last
        if r0 > last:
            r0 = last
        cpd = self.cols_per_deg
        lastc = self.ncols - 1
        cols = []
        for lo, hi in box.lon_ranges:
            c0 = int((lo + 180.0) * cpd)
            c1 = int((hi + 180.0) * cpd)
            cols.append((c0 if c0 < lastc else lastc, c1 if c1 < lastc else lastc))
        return r0, r1, cols


class GeohashIndex(IndexBase[K]):
    """A :class:`geo_index.SpatialIndex` on multi-level geohash cells.

    Args:
        levels: geohash lengths in bits (2..32) to keep cell maps for; more levels fit
            query sizes better, and each costs from ~20 bytes per point (coarse levels,
            many points per cell) to ~200 (fine levels, mostly one point per cell).
        max_cells: a query uses the finest level whose cells overlapping the query's
            bounding box number at most this many (the coarsest level otherwise).
        dense_min: queries with at least this many candidates filter them with numpy
            (when installed; Python scan only); ``None`` never does.
        native: use the compiled scan (``geo_index._cscan``): ``None`` (default) when it is
            built, ``True`` always (error if it is not built), ``False`` never.
        max_radius_m: the largest radius ``within``/``nearest`` accept, metres.

    Raises:
        InvalidOption: ``levels`` is empty or has a value outside 2..32, or
            ``max_cells < 1``, or ``max_radius_m`` is not a positive finite number.
    """

    def __init__(
        self,
        *,
        levels: Sequence[int] = DEFAULT_LEVELS,
        max_cells: int = DEFAULT_MAX_CELLS,
        dense_min: int | None = DEFAULT_DENSE_MIN,
        native: bool | None = None,
        max_radius_m: float = DEFAULT_MAX_RADIUS_M,
    ) -> None:
        super().__init__(max_radius_m=max_radius_m)
        bits = sorted(set(levels))
        if not bits or any(type(b) is not int or not 2 <= b <= MAX_LEVEL_BITS for b in bits):
            raise InvalidOption(f"levels must be integers in 2..{MAX_LEVEL_BITS}, got {levels!r}")
        if type(max_cells) is not int or max_cells < 1:
            raise InvalidOption(f"max_cells must be an integer >= 1, got {max_cells!r}")
        self._max_cells = max_cells
        self._dense_min, self._native = check_scan_options(dense_min, native)
        # Finest first: that is the order in which a query tries them.
        self._levels = [_Level(b, self._native) for b in reversed(bits)]
        # The same, as the compiled scan takes them (the cell maps are shared, not copied).
        self._specs = tuple(
            (lv.rows_per_deg, lv.cols_per_deg, lv.nrows, lv.ncols, lv.row_shift, lv.col_shift, lv.cells)
            for lv in self._levels
        )

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels kept, in geohash bits, coarsest first."""
        return tuple(lv.bits for lv in reversed(self._levels))

    def compiled_levels(self) -> tuple[tuple[tuple[Any, ...], ...], int] | None:
        """What the compiled scan takes for this index's queries, or ``None`` without it.

        ``(levels, max_cells)``: the first two arguments of ``geo_index._cscan.scan_levels``
        and of the ``page_levels`` of its C interface (``geo_index/_cscan_api.h``), for an
        extension that answers a query without calling :meth:`page`. The levels share the
        index's cell maps, so they follow every later insert, move and removal; a query through
        them skips :meth:`page`'s argument checks, which are the caller's to make.
        """
        return (self._specs, self._max_cells) if self._native else None

    # ----------------------------------------------------------------- storage
    def _key(self, lat: float, lon: float) -> int:
        return geohash_key(lat, lon)

    def _add(self, entry: Entry[K]) -> None:
        key = entry.key
        vec = entry.vec
        rec = entry.record
        if self._native:
            data = packed_row(entry)
            bid = rec[3]
            for lv in self._levels:
                code = key >> lv.shift
                cell = lv.cells.get(code)
                if cell is None:
                    lv.cells[code] = (bytearray(data), [bid])
                else:
                    cell[0].extend(data)
                    cell[1].append(bid)
            return
        for lv in self._levels:
            code = key >> lv.shift
            cell = lv.cells.get(code)
            if cell is None:
                lv.cells[code] = ([vec], [rec])
            else:
                cell[0].append(vec)
                cell[1].append(rec)
                if lv.arrays:
                    lv.arrays.pop(code, None)

    def _add_many(self, entries: list[Entry[K]]) -> None:
        fresh = not self._points
        if fresh and self._native and entries:
            self._pack_runs(entries)
            return
        for entry in entries:
            self._add(entry)
        if fresh and self._dense_min is not None and entries:
            # Entries arrive in geohash order (IndexBase.bulk_load sorts them), so every
            # cell is a run of them: give each multi-point cell a view of one array now
            # instead of building arrays one cell at a time during queries.
            big = vec_array([e.vec for e in entries])
            keys = [e.key for e in entries]
            for lv in self._levels:
                lv.arrays = group_arrays(big, keys, lv.shift)

    def _pack_runs(self, entries: list[Entry[K]]) -> None:
        """Fill the empty packed cells from entries in geohash order (as ``bulk_load`` sorts
        them): every cell of every level is then one run of them, copied in one slice."""
        packed = b"".join([packed_row(e) for e in entries])
        ids = [e.record[3] for e in entries]
        keys = [e.key for e in entries]
        n = len(keys)
        size = _PACKED_BYTES
        for lv in self._levels:
            shift = lv.shift
            cells = lv.cells
            start = 0
            while start < n:
                code = keys[start] >> shift
                end = bisect_right(keys, ((code + 1) << shift) - 1, start + 1)
                cells[code] = (bytearray(packed[start * size : end * size]), ids[start:end])
                start = end

    def _discard(self, entry: Entry[K]) -> None:
        key = entry.key
        rec = entry.record
        if self._native:
            bid = rec[3]
            size = _PACKED_BYTES
            for lv in self._levels:
                code = key >> lv.shift
                packed, ids = lv.cells[code]
                if len(ids) == 1:
                    del lv.cells[code]
                else:
                    i = ids.index(bid)  # ids are unique
                    del ids[i]
                    del packed[i * size : (i + 1) * size]
            return
        for lv in self._levels:
            code = key >> lv.shift
            vecs, recs = lv.cells[code]
            if lv.arrays:
                lv.arrays.pop(code, None)
            if len(recs) == 1:
                del lv.cells[code]
            else:
                # Ids are unique, so list.index finds this very record (by identity first).
                i = recs.index(rec)
                del recs[i]
                del vecs[i]

    # ----------------------------------------------------------------- queries
    def plan(self, lat: float, lon: float, radius_m: float) -> tuple[int, int]:
        """Which level a query would use and how many cells it would look up.

        Args:
            lat: latitude, degrees.
            lon: longitude, degrees.
            radius_m: radius, metres.

        Returns:
            (level in geohash bits, number of cells).
        """
        box = cap_bounds(lat, lon, radius_m)
        lv = self._choose(box)
        r0, r1, cols = lv.span(box)
        return lv.bits, (r1 - r0 + 1) * sum(c1 - c0 + 1 for c0, c1 in cols)

    def _choose(self, box: CapBounds) -> _Level:
        """The finest level at which the box overlaps about ``max_cells`` cells or fewer.

        The estimate ``(height/cell_height + 1) * (width/cell_width + 1)`` is the mean
        number of cells a box of that size overlaps over all its positions; it depends only
        on the box's size, i.e. on the radius and the latitude.
        """
        height = box.lat_hi - box.lat_lo
        width = 0.0
        for lo, hi in box.lon_ranges:
            width += hi - lo
        max_cells = self._max_cells
        for lv in self._levels:
            if (height * lv.rows_per_deg + 1.0) * (width * lv.cols_per_deg + 1.0) <= max_cells:
                return lv
        return lv

    def _grid(self, lat: float, lon: float, radius_m: float) -> tuple[_Level, range, list[int]]:
        """The level a query uses, its rows, and its columns spread into cell-code bits."""
        box = cap_bounds(lat, lon, radius_m)
        # self._choose(box), inlined
        height = box[1] - box[0]
        width = 0.0
        for lo, hi in box[2]:
            width += hi - lo
        max_cells = self._max_cells
        for lv in self._levels:
            if (height * lv.rows_per_deg + 1.0) * (width * lv.cols_per_deg + 1.0) <= max_cells:
                break
        # Rows r0..r1 and the column codes of the cells overlapping the box (as _Level.span,
        # inlined: this is the hot path).
        rpd = lv.rows_per_deg
        last = lv.nrows - 1
        r0 = int((box[0] + 90.0) * rpd)
        r1 = int((box[1] + 90.0) * rpd)
        if r1 > last:
            r1 = last
        if r0 > last:
            r0 = last
        cpd = lv.cols_per_deg
        lastc = lv.ncols - 1
        spread = SPREAD
        cshift = lv.col_shift
        scols = []
        for lo, hi in box[2]:
            c0 = int((lo + 180.0) * cpd)
            c1 = int((hi + 180.0) * cpd)
            for c in range(c0 if c0 < lastc else lastc, (c1 if c1 < lastc else lastc) + 1):
                scols.append(spread[c] << cshift)
        return lv, range(r0, r1 + 1), scols

    def _within(self, lat: float, lon: float, radius_m: float, limit: int | None) -> list[tuple[K, float]]:
        if self._native:  # the box, level, rows and columns as _grid finds them, and the scan, in C
            return scan_levels(self._specs, self._max_cells, lat, lon, radius_m, limit)  # type: ignore[no-any-return]
        if lon == -180.0:
            lon = 180.0
        lv, rows, scols = self._grid(lat, lon, radius_m)
        rshift = lv.row_shift
        cells = lv.cells
        vec_groups: list[list[Vec]] = []
        rec_groups: list[list[Record[Any]]] = []
        codes: list[int] = []
        for row in rows:
            srow = SPREAD[row] << rshift
            for scol in scols:
                code = srow | scol
                cell = cells.get(code)
                if cell is not None:
                    vec_groups.append(cell[0])
                    rec_groups.append(cell[1])
                    codes.append(code)
        return search_cells(
            vec_groups, rec_groups, codes, lv.arrays, self._dense_min, self._native, lat, lon, radius_m, limit
        )

    def _page(
        self, lat: float, lon: float, radius_m: float, limit: int, after: tuple[float, K] | None, where: Where
    ) -> Page:
        if not self._native:
            return super()._page(lat, lon, radius_m, limit, after, where)
        if where is None:
            return Page._make(scan_levels(self._specs, self._max_cells, lat, lon, radius_m, limit, after))
        return Page._make(scan_levels(self._specs, self._max_cells, lat, lon, radius_m, limit, after, *where))
