"""Proximity index on S2 cells (s2sphere) at one configured level.

Each point is filed under its S2 cell at ``level``. A query covers the spherical cap of its
radius, padded by the safety margin, with s2sphere's ``RegionCoverer`` (cells no finer than
``level``, at most ``max_cells`` of them); a covering cell at ``level`` is one map lookup, a
coarser one is a range of the sorted list of occupied cell ids (S2 ids of the descendants of
a cell are contiguous). Candidates are then scanned exactly (:mod:`geo_index._scan`).

S2 cells are projected from a cube, not from latitude/longitude, so neither the poles nor
the antimeridian are special. ``RegionCoverer`` is pure Python in s2sphere and dominates the
query time (about a millisecond); this index is here for comparison and for callers that
already speak S2 cell ids.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Hashable
from typing import Any, TypeVar

import s2sphere

from geo_index._base import Entry, IndexBase
from geo_index._scan import DEFAULT_DENSE_MIN, Record, Vec, group_arrays, search_cells, vec_array
from geo_index.distance import padded_angle_rad
from geo_index.errors import InvalidOption
from geo_index.validate import DEFAULT_MAX_RADIUS_M, check_scan_options

K = TypeVar("K", bound=Hashable)

#: Default S2 level: cells of about 1.3 km^2 (edges of 1.0 to 1.5 km).
DEFAULT_LEVEL = 13

#: Default ``max_cells`` handed to ``RegionCoverer``: 4 rather than 8 halves the covering
#: time (s2sphere's coverer is pure Python: ~0.5 ms instead of ~1 ms at 5 km) for a few more
#: candidates, which the compiled scan filters for a few microseconds.
DEFAULT_COVER_CELLS = 4


def s2_cell_id(lat: float, lon: float, level: int) -> int:
    """The id of the S2 cell at ``level`` that contains a point.

    Args:
        lat: latitude, degrees.
        lon: longitude, degrees.
        level: S2 level, 0..30.

    Returns:
        The 64-bit S2 cell id.
    """
    leaf = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(float(lat), float(lon)))
    return int(leaf.parent(level).id())


class S2Index(IndexBase[K]):
    """A :class:`geo_index.SpatialIndex` on S2 cells of one level.

    Args:
        level: S2 level the points are filed at (0..30).
        max_cells: ``RegionCoverer.max_cells`` for query coverings (>= 1).
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
        level: int = DEFAULT_LEVEL,
        max_cells: int = DEFAULT_COVER_CELLS,
        dense_min: int | None = DEFAULT_DENSE_MIN,
        native: bool | None = None,
        max_radius_m: float = DEFAULT_MAX_RADIUS_M,
    ) -> None:
        super().__init__(max_radius_m=max_radius_m)
        if type(level) is not int or not 0 <= level <= 30:
            raise InvalidOption(f"level must be an integer in 0..30, got {level!r}")
        if type(max_cells) is not int or max_cells < 1:
            raise InvalidOption(f"max_cells must be an integer >= 1, got {max_cells!r}")
        self._level = level
        self._coverer = s2sphere.RegionCoverer()
        self._coverer.min_level = 0
        self._coverer.max_level = level
        self._coverer.max_cells = max_cells
        # cell id -> (unit vectors, records), and the occupied ids in ascending order
        self._cells: dict[int, tuple[list[Vec], list[Record[Any]]]] = {}
        self._ids: list[int] = []
        # cell id -> numpy array of its unit vectors (dense queries), dropped on change
        self._arrays: dict[int, Any] = {}
        self._dense_min, self._native = check_scan_options(dense_min, native)

    @property
    def level(self) -> int:
        """The S2 level points are filed at."""
        return self._level

    # ----------------------------------------------------------------- storage
    def _key(self, lat: float, lon: float) -> int:
        return s2_cell_id(lat, lon, self._level)

    def _add(self, entry: Entry[K]) -> None:
        cell = self._cells.get(entry.key)
        if cell is None:
            self._cells[entry.key] = ([entry.vec], [entry.record])
            ids = self._ids
            ids.insert(bisect_left(ids, entry.key), entry.key)
        else:
            cell[0].append(entry.vec)
            cell[1].append(entry.record)
            self._arrays.pop(entry.key, None)

    def _add_many(self, entries: list[Entry[K]]) -> None:
        fresh = not self._cells
        cells = self._cells
        for entry in entries:
            cell = cells.get(entry.key)
            if cell is None:
                cells[entry.key] = ([entry.vec], [entry.record])
            else:
                cell[0].append(entry.vec)
                cell[1].append(entry.record)
        self._ids = sorted(cells)
        self._arrays.clear()
        if fresh and self._dense_min is not None and entries:
            # Entries arrive sorted by cell id (IndexBase.bulk_load): one array, one view
            # per multi-point cell.
            self._arrays = group_arrays(vec_array([e.vec for e in entries]), [e.key for e in entries], 0)

    def _discard(self, entry: Entry[K]) -> None:
        self._arrays.pop(entry.key, None)
        vecs, recs = self._cells[entry.key]
        if len(recs) == 1:
            del self._cells[entry.key]
            ids = self._ids
            del ids[bisect_left(ids, entry.key)]
        else:
            i = recs.index(entry.record)
            del recs[i]
            del vecs[i]

    # ----------------------------------------------------------------- queries
    def covering(self, lat: float, lon: float, radius_m: float) -> list[int]:
        """The S2 cell ids a query looks in.

        Args:
            lat: latitude, degrees.
            lon: longitude, degrees.
            radius_m: radius, metres.

        Returns:
            Cell ids at ``level`` or coarser whose union contains the padded cap.
        """
        delta = padded_angle_rad(radius_m)
        if delta >= math.pi:
            cap = s2sphere.Cap.full()
        else:
            axis = s2sphere.LatLng.from_degrees(float(lat), float(lon)).to_point()
            cap = s2sphere.Cap.from_axis_angle(axis, s2sphere.Angle.from_radians(delta))
        return [int(c.id()) for c in self._coverer.get_covering(cap)]

    def _within(self, lat: float, lon: float, radius_m: float, limit: int | None) -> list[tuple[K, float]]:
        if lon == -180.0:
            lon = 180.0
        cells = self._cells
        ids = self._ids
        level = self._level
        vec_groups: list[list[Vec]] = []
        rec_groups: list[list[Record[Any]]] = []
        keys: list[int] = []
        for cid in self.covering(lat, lon, radius_m):
            cell_id = s2sphere.CellId(cid)
            if cell_id.level() == level:
                found = cells.get(cid)
                if found is not None:
                    vec_groups.append(found[0])
                    rec_groups.append(found[1])
                    keys.append(cid)
                continue
            lo = bisect_left(ids, cell_id.range_min().id())
            hi = bisect_right(ids, cell_id.range_max().id())
            for i in range(lo, hi):
                found = cells[ids[i]]
                vec_groups.append(found[0])
                rec_groups.append(found[1])
                keys.append(ids[i])
        return search_cells(
            vec_groups, rec_groups, keys, self._arrays, self._dense_min, self._native, lat, lon, radius_m, limit
        )


__all__ = ["DEFAULT_COVER_CELLS", "DEFAULT_LEVEL", "S2Index", "s2_cell_id"]
