"""A linear region quadtree over latitude/longitude, exact at the poles and across the antimeridian.

The root is the rectangle [-90, 90] x [-180, 180] degrees; a node splits at its centre into
four quadrants. The tree is not stored: points are kept sorted by their Z-order key
(``geo_index/_keys.h``), in which the points of any node of depth ``d`` are one slice (the
keys' top ``2d`` bits name the node), and a node's point count is two binary searches away.

A query walks the nodes overlapping its padded bounding box
(:func:`geo_index.distance.cap_bounds`: split at the antimeridian, all longitudes over a
pole), starting at the finest depth where the box spans at most 16 nodes; a node holding more
than ``leaf_capacity`` points is split (down to ``max_depth``), a smaller one is read whole.
So the depth adapts to the density where the query is, and inserts and removals need no
rebalancing. Candidates are decided exactly (``geo_index/_query.c``).
"""

from __future__ import annotations

from geo_index._base import DEFAULT_MERGE_EVERY, IndexBase
from geo_index.native import Index
from geo_index.validate import DEFAULT_MAX_RADIUS_M, check_int_option

#: Default number of points a node may hold before a query splits it.
DEFAULT_LEAF_CAPACITY = 100

#: Default (and largest) depth: a depth-32 node is a single 64-bit key, about 5 mm across.
DEFAULT_MAX_DEPTH = 32


class QuadTree(IndexBase):
    """A :class:`geo_index.SpatialIndex` as a linear quadtree.

    Args:
        leaf_capacity: a node holding more points than this is split (>= 1).
        max_depth: the deepest split, 1..32.
        max_radius_m: the largest radius ``within``/``nearest`` accept, metres.
        merge_every: see :class:`geo_index._base.IndexBase`.

    Raises:
        InvalidOption: an option is out of range.
    """

    def __init__(
        self,
        *,
        leaf_capacity: int = DEFAULT_LEAF_CAPACITY,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_radius_m: float = DEFAULT_MAX_RADIUS_M,
        merge_every: int | None = DEFAULT_MERGE_EVERY,
    ) -> None:
        check_int_option(leaf_capacity, "leaf_capacity", 1, 1 << 30)
        check_int_option(max_depth, "max_depth", 1, DEFAULT_MAX_DEPTH)
        native = Index("quadtree", leaf_capacity=leaf_capacity, max_depth=max_depth)
        super().__init__(native, max_radius_m=max_radius_m, merge_every=merge_every)
