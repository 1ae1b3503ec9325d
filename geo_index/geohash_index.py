"""Proximity index on geohash cells, exact at any latitude and across the antimeridian.

Points are kept sorted by their 64-bit geohash (Z-order) key (``geo_index/_keys.h``): the
points of any geohash cell are then one slice of the store. A query reads the cells of one
*level* (a geohash length in bits; 5 bits = 1 character) chosen from its bounding box:

1. the spherical cap of the radius (padded by a safety margin) is bounded by a
   latitude/longitude box (:func:`geo_index.distance.cap_bounds`): latitude
   ``lat +- r/R``; longitude ``lon +- asin(sin(r/R) / cos(lat))``, split in two at the
   antimeridian, or all longitudes when the cap contains a pole;
2. the finest level at which that box spans at most ``max_cells`` cells is chosen (so the
   choice depends on the radius *and* the latitude: cells of a fixed geohash length get
   narrower in metres as ``cos(lat)``);
3. every cell of that level overlapping the box is enumerated directly as a row and column
   range of the geohash grid; each is one key range (adjacent ones merge); there is no
   neighbour walk, so no cell can be missed however small the cells are relative to the circle;
4. each candidate is decided exactly (``geo_index/_query.c``).

Levels cost no memory: they are prefixes of the one key, so any set of them can be kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from geo_index._base import DEFAULT_MERGE_EVERY, IndexBase
from geo_index.errors import InvalidOption
from geo_index.native import Index
from geo_index.validate import DEFAULT_MAX_RADIUS_M, check_int_option

#: Default levels, in geohash bits: every odd length from 13 (2.8 degree cells) to 27
#: (0.022 degree cells, 2.4 km at the equator). Odd lengths give cells square in degrees;
#: one level every 2 bits (a factor of 2 in cell size) lets the query size pick a close fit.
DEFAULT_LEVELS: tuple[int, ...] = (13, 15, 17, 19, 21, 23, 25, 27)

#: Default target for the number of cells one query reads (see ``GeohashIndex``).
DEFAULT_MAX_CELLS = 12

#: The longest level, in geohash bits.
MAX_LEVEL_BITS = 32


class GeohashIndex(IndexBase):
    """A :class:`geo_index.SpatialIndex` on multi-level geohash cells.

    Args:
        levels: geohash lengths in bits (2..32) a query may read cells of.
        max_cells: a query uses the finest level at which the cells overlapping the query's
            bounding box number about this many or fewer on average over the box's positions
            (the coarsest level otherwise); a given query may read a few more.
        max_radius_m: the largest radius ``within``/``nearest`` accept, metres.
        merge_every: see :class:`geo_index._base.IndexBase`.

    Raises:
        InvalidOption: ``levels`` is empty or has a value outside 2..32, or
            ``max_cells < 1``, or ``max_radius_m`` is not a positive finite number.
    """

    def __init__(
        self,
        *,
        levels: Sequence[int] = DEFAULT_LEVELS,
        max_cells: int = DEFAULT_MAX_CELLS,
        max_radius_m: float = DEFAULT_MAX_RADIUS_M,
        merge_every: int | None = DEFAULT_MERGE_EVERY,
    ) -> None:
        bits = sorted(set(levels)) if isinstance(levels, (list, tuple)) else []
        if not bits or any(type(b) is not int or not 2 <= b <= MAX_LEVEL_BITS for b in bits):
            raise InvalidOption(f"levels must be integers in 2..{MAX_LEVEL_BITS}, got {levels!r}")
        check_int_option(max_cells, "max_cells", 1, 1 << 20)
        self._levels = tuple(bits)
        # Finest first: that is the order in which a query tries them.
        native = Index("geohash", levels=tuple(reversed(bits)), max_cells=max_cells)
        super().__init__(native, max_radius_m=max_radius_m, merge_every=merge_every)

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels kept, in geohash bits, coarsest first."""
        return self._levels

    def plan(self, lat: float, lon: float, radius_m: float) -> tuple[int, int]:
        """Which level a query would use and how many cells it would read.

        Returns:
            (level in geohash bits, number of cells).
        """
        self._check_query(lat, lon, radius_m)
        return self._native.geohash_choice(lat, lon, radius_m)
