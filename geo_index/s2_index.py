"""Proximity index on S2 cells: points on the Hilbert curve, queries as cap coverings.

Points are kept sorted by their S2 leaf cell id (``geo_index/_s2geom.c``: bit for bit what
s2sphere's ``CellId.from_lat_lng`` gives), so the points of any S2 cell are one slice of the
store (a cell's descendants have contiguous ids). A query covers the spherical cap of its
radius, padded by the safety margin, with about ``max_cells`` cells, computed in C in
microseconds, and reads each cell's slice; candidates are decided exactly
(``geo_index/_query.c``). S2 cells are projected from a cube, not from latitude/longitude, so
neither the poles nor the antimeridian are special.
"""

from __future__ import annotations

from geo_index._base import DEFAULT_MERGE_EVERY, IndexBase
from geo_index.native import Index
from geo_index.validate import DEFAULT_MAX_RADIUS_M, check_int_option

#: Default size of a query's covering, in cells: a few more cells cost a binary search each,
#: fewer ones more candidates.
DEFAULT_COVER_CELLS = 8


class S2Index(IndexBase):
    """A :class:`geo_index.SpatialIndex` on S2 cells.

    Args:
        max_cells: about how many cells a query's covering holds (4..64).
        max_radius_m: the largest radius ``within``/``nearest`` accept, metres.
        merge_every: see :class:`geo_index._base.IndexBase`.

    Raises:
        InvalidOption: an option is out of range.
    """

    def __init__(
        self,
        *,
        max_cells: int = DEFAULT_COVER_CELLS,
        max_radius_m: float = DEFAULT_MAX_RADIUS_M,
        merge_every: int | None = DEFAULT_MERGE_EVERY,
    ) -> None:
        check_int_option(max_cells, "max_cells", 4, 64)
        super().__init__(Index("s2", max_cells=max_cells), max_radius_m=max_radius_m, merge_every=merge_every)


__all__ = ["DEFAULT_COVER_CELLS", "S2Index"]
